"""The Trino source against the emulated coordinator over HTTP: numbers, naming eras, groups, failures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from adapter.samples import Sample
from adapter.sources.trino import (
    TrinoSource,
    coordinator_metrics,
    duration_seconds,
    parse_exposition,
    running_cpu_seconds,
)
from core.catalog import DEFAULT_CATALOG
from core.errors import SourceError
from lab.sandbox.trino import (
    Fault,
    MetricFamily,
    NodeState,
    QueryState,
    ResourceGroupSpec,
    TrinoAuth,
    TrinoSandbox,
    node_metric_families,
    render_openmetrics,
)
from tests.helpers.trino import refused_url, trino_sandbox, trino_settings
from tests.helpers.trino import sample_value as _value

GIB = 1024**3


async def _collect(sandbox: TrinoSandbox | str, **settings: Any) -> list[Sample]:
    source = TrinoSource(trino_settings(sandbox, **settings))
    try:
        return await source.collect(0.0)
    finally:
        await source.close()


def _groups(samples: Sequence[Sample], metric: str) -> dict[str, float]:
    return {s.labels["resource_group"]: s.value for s in samples if s.metric == metric}


@pytest.mark.parametrize("version", [467, 476, 478])
async def test_reads_back_the_model(version: int) -> None:
    async with trino_sandbox(version, workers=3) as sb:
        cluster = sb.cluster
        cluster.submit_many("global.adhoc", 5, 500.0)
        etl = cluster.submit_many("global.etl", 2, 500.0)
        cluster.set_blocked(etl[0].query_id)
        if version >= 468:
            cluster.request_state("worker-3", "DRAINING")
        else:
            cluster.request_state("worker-3", "SHUTTING_DOWN")
        samples = await _collect(sb, name="prod")

        queries = cluster.queries()
        assert _value(samples, "trino_queued_queries") == sum(q.state is QueryState.QUEUED for q in queries)
        # Every version here is past 431: RunningQueries counts the blocked query too.
        assert _value(samples, "trino_running_queries") == sum(q.state is QueryState.RUNNING for q in queries)
        assert _value(samples, "trino_blocked_queries") == sum(
            q.state is QueryState.RUNNING and q.blocked for q in queries
        )
        assert _value(samples, "trino_required_workers") == 0
        active = [w for w in cluster.workers() if w.state is NodeState.ACTIVE]
        # ClusterMemoryManager: the coordinator and every worker still there, draining or shutting down
        # included (a real 476: tests/peers/TRINO_FACTS.md §8).
        assert _value(samples, "trino_cluster_memory_bytes") == cluster.coordinator.memory_bytes + sum(
            w.memory_bytes for w in cluster.workers()
        )
        expected_nodes = {"active": 1 + len(active), "inactive": 0, "shutting_down": 0}
        if version >= 468:
            expected_nodes |= {"draining": 1, "drained": 0}
        else:
            expected_nodes["shutting_down"] = 1
        nodes = {s.labels["state"]: s.value for s in samples if s.metric == "trino_nodes"}
        assert nodes == expected_nodes
        assert _value(samples, "trino_capacity_queued_queries") == _value(samples, "trino_queued_queries")
        assert all(s.labels["cluster"] == "prod" for s in samples)


async def test_required_workers_while_scaled_to_zero() -> None:
    async with trino_sandbox(478, workers=0, required_workers=3) as sb:
        sb.cluster.submit("global.adhoc", 10.0)
        samples = await _collect(sb)
        assert _value(samples, "trino_required_workers") == sb.cluster.required_workers
        assert _value(samples, "trino_queued_queries") == 0
        assert _value(samples, "trino_running_queries") == 0
        assert _value(samples, "trino_nodes", state="active") == 1  # the coordinator alone


async def test_samples_follow_the_catalog() -> None:
    async with trino_sandbox(478) as sb:
        sb.cluster.submit_many("global.adhoc", 3, 100.0)
        source = TrinoSource(trino_settings(sb, resource_groups=["global"]))
        try:
            samples = await source.collect(0.0)
        finally:
            await source.close()
        assert {s.metric for s in samples} == set(source.served_metrics())
        for sample in samples:
            spec = DEFAULT_CATALOG.get(sample.metric)
            assert spec is not None, sample.metric
            assert set(sample.labels) == set(spec.labels), sample
            assert sample.is_valid()
            assert dict(sample.labels).items() >= dict(source.identity()).items()


async def test_without_resource_groups_capacity_is_the_queue() -> None:
    async with trino_sandbox(478) as sb:
        sb.cluster.submit_many("global.adhoc", 6, 100.0)
        source = TrinoSource(trino_settings(sb))
        assert not any(m.startswith("trino_resource_group_") for m in source.served_metrics())
        try:
            samples = await source.collect(0.0)
        finally:
            await source.close()
        assert _value(samples, "trino_capacity_queued_queries") == sb.cluster.queued_queries() > 0
        assert not any(s.metric.startswith("trino_resource_group_") for s in samples)


async def test_limit_bound_groups_are_not_capacity() -> None:
    async with trino_sandbox(478, workers=2, worker_memory_bytes=16 * GIB) as sb:
        cluster = sb.cluster
        # adhoc (limit 2): five queries, three wait for a slot that no worker can add.
        cluster.submit_many("global.adhoc", 5, 1000.0)
        # etl (limit 3, memory 50% of 48 GiB, the coordinator's included): the third 13 GiB query waits for
        # memory, which workers add.
        cluster.submit_many("global.etl", 3, 1000.0, memory_bytes=13 * GIB)
        etl = cluster.group("global.etl")
        assert len(etl.queued) == 1
        assert etl.running_count() < etl.hard_concurrency_limit
        samples = await _collect(sb, resource_groups=["global"])

        assert _groups(samples, "trino_resource_group_limit_bound") == {
            "global": 0,
            "global.adhoc": 1,
            "global.etl": 0,
        }
        assert _value(samples, "trino_capacity_queued_queries") == len(etl.queued)
        assert _value(samples, "trino_queued_queries") == cluster.queued_queries()
        for group in cluster.groups():
            labels = {"resource_group": group.dotted}
            assert _value(samples, "trino_resource_group_queued_queries", **labels) == group.queued_count()
            assert _value(samples, "trino_resource_group_running_queries", **labels) == group.running_count()
            assert (
                _value(samples, "trino_resource_group_hard_concurrency_limit", **labels)
                == group.hard_concurrency_limit
            )


async def test_a_full_group_without_queue_is_not_limit_bound() -> None:
    async with trino_sandbox(478) as sb:
        adhoc = sb.cluster.group("global.adhoc")
        sb.cluster.submit_many("global.adhoc", adhoc.hard_concurrency_limit, 1000.0)
        assert adhoc.running_count() == adhoc.hard_concurrency_limit
        samples = await _collect(sb, resource_groups=["global.adhoc"])
        assert _groups(samples, "trino_resource_group_limit_bound") == {"global.adhoc": 0}


async def test_a_limit_bound_parent_holds_its_children() -> None:
    groups = [
        ResourceGroupSpec(
            "global",
            hard_concurrency_limit=3,
            sub_groups=(ResourceGroupSpec("adhoc", hard_concurrency_limit=10),),
        )
    ]
    async with trino_sandbox(478, groups=groups) as sb:
        sb.cluster.submit_many("global.adhoc", 5, 1000.0)
        samples = await _collect(sb, resource_groups=["global"])
        assert _groups(samples, "trino_resource_group_limit_bound") == {"global": 1, "global.adhoc": 0}
        assert _value(samples, "trino_resource_group_queued_queries", resource_group="global.adhoc") > 0
        assert _value(samples, "trino_capacity_queued_queries") == 0


async def test_idle_and_unknown_groups_have_no_series() -> None:
    async with trino_sandbox(478) as sb:
        sb.cluster.submit("global.adhoc", 1000.0)
        samples = await _collect(sb, resource_groups=["global", "global.etl", "reports"])
        queued = _groups(samples, "trino_resource_group_queued_queries")
        # etl was asked for by name but no query ever selected it, and "reports" does not exist: Trino
        # creates groups lazily and answers 404 for both (a real 476: tests/peers/TRINO_FACTS.md §5).
        assert set(queued) == {"global", "global.adhoc"}


async def test_group_names_are_escaped_in_the_path() -> None:
    groups = [ResourceGroupSpec("team a", sub_groups=(ResourceGroupSpec("bi/ops"),))]
    async with trino_sandbox(478, groups=groups) as sb:
        sb.cluster.submit(["team a", "bi/ops"], 1000.0)
        samples = await _collect(sb, resource_groups=["team a"])
        assert _groups(samples, "trino_resource_group_running_queries") == {"team a": 1, "team a.bi/ops": 1}


def _strict_openmetrics(families: Sequence[MetricFamily]) -> str:
    """What a spec-following writer would send: counter samples carry the ``_total`` suffix airlift omits."""
    lines = []
    for family in families:
        sample = family.name + ("_total" if family.type == "counter" else "")
        value = int(family.value) if family.type == "counter" else float(family.value)
        lines += [f"# TYPE {family.name} {family.type}", f"{sample} {value!r}"]
    return "\n".join([*lines, "# EOF"]) + "\n"


async def test_strict_openmetrics_and_plain_text_read_alike() -> None:
    async with trino_sandbox(478) as sb:
        sb.cluster.submit_many("global.adhoc", 4, 1.0)
        sb.cluster.advance(1.0)
        baseline = await _collect(sb)
        assert _value(baseline, "trino_completed_queries_total") > 0
        strict = _strict_openmetrics(node_metric_families(sb.cluster, sb.cluster.coordinator))
        sb.faults().set(
            "/metrics", Fault(status=200, body=strict, content_type="application/openmetrics-text")
        )
        assert sorted(map(repr, await _collect(sb))) == sorted(map(repr, baseline))
        plain = strict.replace("# EOF\n", "")
        sb.faults().set("/metrics", Fault(status=200, body=plain, content_type="text/plain; version=0.0.4"))
        assert sorted(map(repr, await _collect(sb))) == sorted(map(repr, baseline))


async def test_query_counters_are_the_coordinators_totals() -> None:
    async with trino_sandbox(478) as sb:
        cluster = sb.cluster
        # adhoc runs 2 and queues 10: 2 of these 14 are rejected, which Trino counts as completed.
        cluster.submit_many("global.adhoc", 14, 20.0)
        cluster.advance(15.0)
        assert 0 < cluster.completed_queries - cluster.rejected_queries < cluster.started_queries
        samples = await _collect(sb, name="prod")
        assert _value(samples, "trino_started_queries_total", cluster="prod") == cluster.started_queries
        assert _value(samples, "trino_completed_queries_total", cluster="prod") == cluster.completed_queries


async def test_a_coordinator_without_query_counters_serves_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    async with trino_sandbox(478) as sb:
        sb.cluster.submit_many("global.adhoc", 4, 100.0)
        baseline = await _collect(sb)
        gauges = [f for f in node_metric_families(sb.cluster, sb.cluster.coordinator) if f.type == "gauge"]
        sb.faults().set("/metrics", Fault(status=200, body=render_openmetrics(gauges)))
        source = TrinoSource(trino_settings(sb))
        try:
            first = await source.collect(0.0)
            second = await source.collect(1.0)
        finally:
            await source.close()
    counters = {
        "trino_started_queries_total",
        "trino_completed_queries_total",
        "trino_consumed_cpu_seconds_total",
    }
    assert counters <= {s.metric for s in baseline}
    expected = sorted(repr(s) for s in baseline if s.metric not in counters)
    assert sorted(map(repr, first)) == sorted(map(repr, second)) == expected
    # Said once per source, not on every poll.
    warned = [r.getMessage() for r in caplog.records if "StartedQueries" in r.getMessage()]
    assert len(warned) == 1
    assert "ConsumedCpuTimeSecs" in warned[0]


async def test_consumed_cpu_is_the_coordinators_whole_seconds_per_ended_query() -> None:
    async with trino_sandbox(476, workers=2) as sb:
        cluster = sb.cluster
        # 2 workers x 4 processors: each query runs at once and ends within the minute.
        for work in (7.5, 0.9, 3.0):
            cluster.submit("global.adhoc", work)
        running = cluster.submit("global.adhoc", 4000.0)
        cluster.advance(60.0)
        assert running.state is QueryState.RUNNING
        samples = await _collect(sb, name="prod")
        # 7 + 0 + 3: the running query's CPU is not in it until it ends.
        assert _value(samples, "trino_consumed_cpu_seconds_total", cluster="prod") == 10


def test_consumed_cpu_parses_either_counter_spelling() -> None:
    url = "http://coordinator/metrics"
    gauges = "\n".join(
        f"# TYPE {name} gauge\n{name} 1.0"
        for name in (
            "trino_execution_name_QueryManager_QueuedQueries",
            "trino_execution_name_QueryManager_RunningQueries",
            "trino_execution_name_ClusterSizeMonitor_RequiredWorkers",
            "trino_memory_name_ClusterMemoryManager_ClusterMemoryBytes",
            "trino_metadata_name_DiscoveryNodeManager_ActiveNodeCount",
        )
    )
    cpu = "trino_execution_name_QueryManager_ConsumedCpuTimeSecs"
    # What a real 476 writes: a counter without _total, printed as an integer.
    airlift = f"{gauges}\n# TYPE {cpu} counter\n{cpu} 11\n# EOF\n"
    assert coordinator_metrics(url, parse_exposition(url, airlift)).consumed_cpu_seconds_total == 11
    strict = f"{gauges}\n# TYPE {cpu} counter\n{cpu}_total 12\n# EOF\n"
    assert coordinator_metrics(url, parse_exposition(url, strict)).consumed_cpu_seconds_total == 12
    assert (
        coordinator_metrics(url, parse_exposition(url, gauges + "\n# EOF\n")).consumed_cpu_seconds_total
        is None
    )
    with pytest.raises(SourceError, match=r"ConsumedCpuTimeSecs = -1\.0, which is not a count"):
        coordinator_metrics(url, parse_exposition(url, f"{gauges}\n# TYPE {cpu} gauge\n{cpu} -1.0\n# EOF\n"))


async def test_basic_auth_from_a_secret_file(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    auth = TrinoAuth(mode="password", passwords={"queuescale": "s3cret"})
    async with trino_sandbox(478, auth=auth) as sb:
        samples = await _collect(sb, username="queuescale", password_file=password)
        assert _value(samples, "trino_nodes", state="active") == 3
        auth.passwords["queuescale"] = "rotated"
        with pytest.raises(SourceError, match="401"):
            await _collect(sb, username="queuescale", password_file=password)
        password.write_text("rotated")
        assert await _collect(sb, username="queuescale", password_file=password)


async def test_bearer_token_from_a_secret_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("eyJ.sandbox.token")
    async with trino_sandbox(
        478, auth=TrinoAuth(mode="jwt", tokens={"eyJ.sandbox.token": "queuescale"})
    ) as sb:
        assert await _collect(sb, bearer_token_file=token)
        token.write_text("expired")
        with pytest.raises(SourceError, match="401"):
            await _collect(sb, bearer_token_file=token)


async def test_user_without_read_permission_is_an_error() -> None:
    async with trino_sandbox(478, auth=TrinoAuth(read_users=frozenset({"monitor"}))) as sb:
        assert await _collect(sb, user="monitor")
        with pytest.raises(SourceError, match="403"):
            await _collect(sb, user="queuescale")


def _families(*dropped: str, nan: str | None = None) -> str:
    names = {
        "trino_execution_name_QueryManager_QueuedQueries": 1.0,
        "trino_execution_name_QueryManager_RunningQueries": 2.0,
        "trino_execution_name_ClusterSizeMonitor_RequiredWorkers": 0.0,
        "trino_memory_name_ClusterMemoryManager_ClusterMemoryBytes": 1e10,
        "trino_node_name_CoordinatorNodeManager_ActiveNodeCount": 3.0,
    }
    families = [
        MetricFamily(name, "gauge", float("nan") if name == nan else value)
        for name, value in names.items()
        if name not in dropped
    ]
    return render_openmetrics(families)


FAILURES = [
    # the coordinator fails
    pytest.param("/metrics", Fault(status=500, body="boom"), "HTTP 500", id="metrics-500"),
    # an HTML error page where metrics should be
    pytest.param("/metrics", Fault(status=200, body="<html><body>oops</body></html>"), "neither", id="html"),
    # JSON where metrics should be
    pytest.param("/metrics", Fault(status=200, body='{"queued": 1}'), "neither", id="json-metrics"),
    # an empty exposition has none of the needed gauges
    pytest.param("/metrics", Fault(status=200, body="# EOF\n"), "is this a Trino coordinator", id="empty"),
    # a worker's (or another program's) metrics: no node manager
    pytest.param(
        "/metrics",
        Fault(status=200, body=_families("trino_node_name_CoordinatorNodeManager_ActiveNodeCount")),
        "ActiveNodeCount",
        id="no-node-counts",
    ),
    # one needed gauge missing
    pytest.param(
        "/metrics",
        Fault(status=200, body=_families("trino_execution_name_ClusterSizeMonitor_RequiredWorkers")),
        "RequiredWorkers",
        id="no-required-workers",
    ),
    # NaN is not a count
    pytest.param(
        "/metrics",
        Fault(status=200, body=_families(nan="trino_execution_name_QueryManager_QueuedQueries")),
        "not a count",
        id="nan",
    ),
    # a counter that is there must be a count too
    pytest.param(
        "/metrics",
        Fault(
            status=200,
            body=_families().replace(
                "# EOF",
                "# TYPE trino_execution_name_QueryManager_StartedQueries counter\n"
                "trino_execution_name_QueryManager_StartedQueries -1\n# EOF",
            ),
        ),
        "StartedQueries_total = -1",
        id="negative-counter",
    ),
    # the query list fails
    pytest.param("/v1/query", Fault(status=500), "HTTP 500", id="query-500"),
    # the query list is not a list
    pytest.param(
        "/v1/query", Fault(status=200, body="{}", content_type="application/json"), "list", id="query-obj"
    ),
    # a query without stats
    pytest.param(
        "/v1/query",
        Fault(status=200, body='[{"state": "RUNNING"}]', content_type="application/json"),
        "fullyBlocked",
        id="query-no-stats",
    ),
    # a resource group answer that is not JSON
    pytest.param("/v1/resourceGroupState/*", Fault(status=200, body="<html>"), "not JSON", id="group-html"),
    # a resource group answer for another group
    pytest.param(
        "/v1/resourceGroupState/*",
        Fault(
            status=200,
            body='{"id":["other"],"numQueuedQueries":0,"numRunningQueries":0,"hardConcurrencyLimit":1}',
            content_type="application/json",
        ),
        "answered group other",
        id="group-wrong-id",
    ),
    # a resource group without counts
    pytest.param(
        "/v1/resourceGroupState/*",
        Fault(status=200, body='{"id":["global"]}', content_type="application/json"),
        "numQueuedQueries",
        id="group-no-counts",
    ),
    # the resource group endpoint fails
    pytest.param("/v1/resourceGroupState/*", Fault(status=503), "HTTP 503", id="group-503"),
    # a redirect (e.g. to a login page) is not an answer
    pytest.param("/metrics", Fault(status=302), "HTTP 302", id="redirect"),
]


@pytest.mark.parametrize(("path", "fault", "message"), FAILURES)
async def test_failures_raise_source_error(path: str, fault: Fault, message: str) -> None:
    async with trino_sandbox(478) as sb:
        sb.cluster.submit("global.adhoc", 100.0)
        sb.faults().set(path, fault)
        with pytest.raises(SourceError, match=message):
            await _collect(sb, resource_groups=["global"])


async def test_a_hanging_coordinator_times_out() -> None:
    async with trino_sandbox(478) as sb:
        sb.faults().set("/metrics", Fault(hang=True))
        with pytest.raises(SourceError, match="did not answer within"):
            await _collect(sb, timeout_seconds=0.3)


async def test_a_slow_group_times_out_the_whole_poll() -> None:
    async with trino_sandbox(478) as sb:
        sb.cluster.submit("global.adhoc", 100.0)
        sb.faults().set("/v1/resourceGroupState/global/adhoc", Fault(hang=True))
        with pytest.raises(SourceError, match="did not answer within"):
            await _collect(sb, timeout_seconds=0.3, resource_groups=["global"])


async def test_refused_connection() -> None:
    with pytest.raises(SourceError, match="failed"):
        await _collect(refused_url())


async def test_source_recovers_after_a_failure() -> None:
    async with trino_sandbox(478) as sb:
        source = TrinoSource(trino_settings(sb))
        try:
            sb.faults().set("/metrics", Fault(status=500))
            with pytest.raises(SourceError):
                await source.collect(0.0)
            sb.faults().clear()
            sb.cluster.submit_many("global.adhoc", 3, 100.0)
            samples = await source.collect(1.0)
            assert _value(samples, "trino_queued_queries") == sb.cluster.queued_queries()
        finally:
            await source.close()


@pytest.mark.parametrize(("version", "lists_queries"), [(470, False), (476, False), (469, True)])
async def test_fully_blocked_queries_from_the_gauge_where_trino_has_it(
    version: int, lists_queries: bool
) -> None:
    # FullyBlockedQueries since 470: the running-query list (every running query's stats) is then spared.
    async with trino_sandbox(version, workers=2) as sb:
        blocked = sb.cluster.submit("global.adhoc", 500.0)
        sb.cluster.set_blocked(blocked.query_id)
        sb.cluster.submit("global.adhoc", 500.0)
        source = TrinoSource(trino_settings(sb))
        try:
            assert _value(await source.collect(0.0), "trino_blocked_queries") == 1
            sb.faults().set("/v1/query", Fault(status=500))
            if lists_queries:
                with pytest.raises(SourceError, match="/v1/query"):
                    await source.collect(0.0)
            else:
                assert _value(await source.collect(0.0), "trino_blocked_queries") == 1
        finally:
            await source.close()


async def test_running_queries_cpu_only_when_asked_for() -> None:
    async with trino_sandbox(476, workers=2) as sb:
        cluster = sb.cluster
        finished = cluster.submit("global.adhoc", 3.0)
        first = cluster.submit("global.adhoc", 400.0)
        second = cluster.submit("global.adhoc", 400.0)
        cluster.advance(10.0)
        assert finished.state is QueryState.FINISHED
        assert first.state is second.state is QueryState.RUNNING
        source = TrinoSource(trino_settings(sb, name="prod", running_query_cpu=True))
        try:
            assert "trino_running_queries_cpu_seconds" in source.served_metrics()
            samples = await source.collect(0.0)
            # The ended query is in the counter, the running ones only here.
            running = first.cpu_seconds + second.cpu_seconds
            assert 0 < running < 80
            assert _value(samples, "trino_running_queries_cpu_seconds", cluster="prod") == pytest.approx(
                running, abs=0.01
            )
            assert _value(samples, "trino_consumed_cpu_seconds_total", cluster="prod") == 3
            # The list is read on every poll then, gauge of blocked queries or not.
            sb.faults().set("/v1/query", Fault(status=500))
            with pytest.raises(SourceError, match="/v1/query"):
                await source.collect(1.0)
        finally:
            await source.close()
        sb.faults().clear()
        plain = await _collect(sb)
        assert "trino_running_queries_cpu_seconds" not in {s.metric for s in plain}
        assert "trino_running_queries_cpu_seconds" not in TrinoSource(trino_settings(sb)).served_metrics()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("11.07s", 11.07),
        ("5.00ms", 0.005),
        ("0.00ns", 0.0),
        ("1.50m", 90.0),
        ("2.00h", 7200.0),
        ("3us", 3e-6),
    ],
)
def test_airlift_durations(text: str, seconds: float) -> None:
    assert duration_seconds("u", text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["11.07", "s", "1.0 s", "-1.00s", "1.00ks", 11.07, None])
def test_not_airlift_durations(text: object) -> None:
    with pytest.raises(SourceError, match="not an airlift Duration"):
        duration_seconds("u", text)


def test_running_cpu_sums_the_running_queries_of_the_list() -> None:
    listed = [
        {"state": "RUNNING", "queryStats": {"totalCpuTime": "4.56s", "fullyBlocked": False}},
        {"state": "RUNNING", "queryStats": {"totalCpuTime": "250.00ms", "fullyBlocked": False}},
        # /v1/query?state=RUNNING only lists running ones; anything else in it is not counted.
        {"state": "FINISHED", "queryStats": {"totalCpuTime": "11.07s", "fullyBlocked": False}},
    ]
    assert running_cpu_seconds("u", listed) == pytest.approx(4.81)
    assert running_cpu_seconds("u", []) == 0
    with pytest.raises(SourceError, match=r"without queryStats\.totalCpuTime"):
        running_cpu_seconds("u", [{"state": "RUNNING", "queryStats": {}}])
    with pytest.raises(SourceError, match="expected a list of queries"):
        running_cpu_seconds("u", {"queries": []})
