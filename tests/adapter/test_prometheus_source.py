"""The Prometheus source against a real Prometheus scraping a real exporter.

One Prometheus and one exporter serve the whole module; each test reads its own metric names, and the
one test that changes a value owns that metric.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adapter.samples import Sample
from adapter.sources.prometheus import PrometheusSettings, PrometheusSource, samples_from_result
from core.catalog import DEFAULT_CATALOG, Catalog
from core.errors import SourceError
from tests.helpers.certs import CertFactory
from tests.helpers.exporter import Exporter, gauge
from tests.helpers.prometheus import (
    DEBIAN_PACKAGE,
    PrometheusServer,
    auth_proxy,
    prometheus_binary,
    running_prometheus,
    slow_server,
)
from tests.helpers.wait import eventually

pytestmark = pytest.mark.prometheus

APP1 = "app-20240101120000-0001"  # standalone id; the servlet writes it app_20240101120000_0001
APP2 = "local-1700000000000"  # local mode: the driver row is the only executor


def servlet(namespace: str, gauge: str) -> str:
    """A driver gauge as PrometheusServlet names it: the namespace is the app id with _ for -."""
    return f"metrics_{namespace}_driver_ExecutorAllocationManager_executors_{gauge}_Value"


EXPORTED: dict[str, list[dict[str, Any]]] = {
    # Custom queries.
    "qs_test_queue_depth": [
        gauge(3, cluster="a", queue="x", node="n1"),
        gauge(4, cluster="a", queue="x", node="n2"),
        gauge(5, cluster="a", queue="y", node="n1"),
        gauge(7, cluster="b", queue="x", node="n1"),
    ],
    "qs_test_bad_values": [
        gauge("NaN", k="nan"),
        gauge("+Inf", k="inf"),
        gauge(-3, k="neg"),
        gauge(2, k="ok"),
    ],
    "qs_test_changing": [gauge(1, cluster="a")],
    # Trino cluster "a": Trino's own /metrics (OpenMetrics), 477+ node manager.
    "trino_execution_name_QueryManager_QueuedQueries": [gauge(4, cluster="a"), gauge(5, cluster="c")],
    "trino_execution_name_QueryManager_RunningQueries": [gauge(10, cluster="a"), gauge(2, cluster="c")],
    "trino_execution_name_ClusterSizeMonitor_RequiredWorkers": [gauge(2, cluster="a")],
    "trino_memory_name_ClusterMemoryManager_ClusterMemoryBytes": [gauge(64e9, cluster="a")],
    "trino_node_name_CoordinatorNodeManager_ActiveNodeCount": [gauge(3, cluster="a"), gauge(4, cluster="c")],
    "trino_node_name_CoordinatorNodeManager_DrainingNodeCount": [gauge(1, cluster="a")],
    # Query counters: a CounterStat is one counter (no _total suffix) on Trino's /metrics...
    "trino_execution_name_QueryManager_StartedQueries": [gauge(120, cluster="a"), gauge(7, cluster="c")],
    "trino_execution_name_QueryManager_CompletedQueries": [gauge(118, cluster="a"), gauge(5, cluster="c")],
    "trino_execution_name_QueryManager_ConsumedCpuTimeSecs": [
        gauge(905, cluster="a"),
        gauge(12, cluster="c"),
    ],
    # Trino cluster "b": the chart's JMX-exporter sidecar, pre-477 node manager seen from two nodes.
    "trino_execution_QueryManager_QueuedQueries": [gauge(6, cluster="b"), gauge(5, cluster="c")],
    "trino_execution_QueryManager_RunningQueries": [gauge(1, cluster="b"), gauge(2, cluster="c")],
    "trino_execution_ClusterSizeMonitor_RequiredWorkers": [gauge(0, cluster="b")],
    "trino_memory_ClusterMemoryManager_ClusterMemoryBytes": [gauge(32e9, cluster="b")],
    "trino_metadata_DiscoveryNodeManager_ActiveNodeCount": [
        gauge(2, cluster="b", node="coordinator"),
        gauge(2, cluster="b", node="worker-1"),
    ],
    "trino_metadata_DiscoveryNodeManager_ShuttingDownNodeCount": [gauge(1, cluster="b", node="coordinator")],
    # ...and the JMX attribute StartedQueries.TotalCount (with OneMinute.Count etc. beside it) to the exporter.
    "trino_execution_QueryManager_StartedQueries_TotalCount": [gauge(40, cluster="b"), gauge(7, cluster="c")],
    "trino_execution_QueryManager_StartedQueries_OneMinute_Count": [gauge(3, cluster="b")],
    "trino_execution_QueryManager_CompletedQueries_TotalCount": [
        gauge(39, cluster="b"),
        gauge(5, cluster="c"),
    ],
    "trino_execution_QueryManager_ConsumedCpuTimeSecs_TotalCount": [
        gauge(310, cluster="b"),
        gauge(12, cluster="c"),
    ],
    # A decayed count beside it must not be taken for the total.
    "trino_execution_QueryManager_ConsumedCpuTimeSecs_OneMinute_Count": [gauge(4.5, cluster="b")],
    # Trino cluster "c" is scraped under both schemes at once (see above): it must count once.
    "trino_node_CoordinatorNodeManager_ActiveNodeCount": [gauge(4, cluster="c")],
    # Spark pool "batch": the driver executor endpoint...
    "metrics_executor_activeTasks_Count": [
        gauge(0, spark_pool="batch", application_id=APP1, application_name="etl", executor_id="driver"),
        gauge(4, spark_pool="batch", application_id=APP1, application_name="etl", executor_id="1"),
        gauge(1, spark_pool="batch", application_id=APP1, application_name="etl", executor_id="2"),
        gauge(1, spark_pool="batch", application_id=APP2, application_name="adhoc", executor_id="driver"),
    ],
    "metrics_executor_maxTasks_Count": [
        gauge(0, spark_pool="batch", application_id=APP1, application_name="etl", executor_id="driver"),
        gauge(4, spark_pool="batch", application_id=APP1, application_name="etl", executor_id="1"),
        gauge(4, spark_pool="batch", application_id=APP1, application_name="etl", executor_id="2"),
        gauge(2, spark_pool="batch", application_id=APP2, application_name="adhoc", executor_id="driver"),
    ],
    "metrics_executor_totalCores_Count": [
        gauge(0, spark_pool="batch", application_id=APP1, application_name="etl", executor_id="driver"),
        gauge(4, spark_pool="batch", application_id=APP1, application_name="etl", executor_id="1"),
        gauge(4, spark_pool="batch", application_id=APP1, application_name="etl", executor_id="2"),
        gauge(2, spark_pool="batch", application_id=APP2, application_name="adhoc", executor_id="driver"),
    ],
    # ...its PrometheusServlet (namespace = app id, or spark.metrics.namespace=nightly for the third app)...
    servlet("app_20240101120000_0001", "numberMaxNeededExecutors"): [
        gauge(5, spark_pool="batch", type="gauges")
    ],
    servlet("app_20240101120000_0001", "numberAllExecutors"): [gauge(3, spark_pool="batch", type="gauges")],
    servlet("nightly", "numberMaxNeededExecutors"): [gauge(6, spark_pool="batch", type="gauges")],
    servlet("nightly", "numberAllExecutors"): [gauge(4, spark_pool="batch", type="gauges")],
    # ...and the standalone master's and workers' servlets.
    "metrics_master_aliveWorkers_Value": [gauge(2, spark_pool="batch", type="gauges")],
    "metrics_master_deadWorkers_Value": [gauge(1, spark_pool="batch", type="gauges")],
    "metrics_master_waitingApps_Value": [gauge(1, spark_pool="batch", type="gauges")],
    "metrics_worker_coresUsed_Value": [
        gauge(3, spark_pool="batch", type="gauges", worker="w1"),
        gauge(2, spark_pool="batch", type="gauges", worker="w2"),
    ],
    "metrics_worker_coresFree_Value": [
        gauge(1, spark_pool="batch", type="gauges", worker="w1"),
        gauge(2, spark_pool="batch", type="gauges", worker="w2"),
    ],
}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, Exporter]]:
    if prometheus_binary() is None:
        pytest.fail(f"the prometheus binary is missing: apt-get install {DEBIAN_PACKAGE}")
    workdir = tmp_path_factory.mktemp("prometheus")
    with Exporter(workdir, EXPORTED) as exporter, running_prometheus(workdir, [exporter.target]) as server:
        # Every exported name must be queryable before the tests read them.
        server.wait_for(
            'count({__name__=~"qs_test_.*|trino_.*|metrics_.*"})',
            lambda r: bool(r) and int(r[0]["value"][1]) == sum(len(s) for s in EXPORTED.values()),
        )
        yield server, exporter


@pytest.fixture
def prom_url(prometheus: tuple[PrometheusServer, Exporter]) -> str:
    return prometheus[0].url


def settings(url: str, **fields: Any) -> PrometheusSettings:
    return PrometheusSettings.model_validate({"name": "prom", "endpoint": {"url": url}, **fields})


@asynccontextmanager
async def source(config: PrometheusSettings) -> AsyncIterator[PrometheusSource]:
    src = PrometheusSource(config)
    try:
        yield src
    finally:
        await src.close()


def by_labels(samples: list[Sample], metric: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in samples if s.metric == metric}


def key(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


async def test_custom_queries_keep_labels_and_sum_dropped(prom_url: str) -> None:
    config = settings(
        prom_url,
        queries=[
            {"metric": "queue_depth", "query": "qs_test_queue_depth", "labels": ["cluster", "queue"]},
            # A catalog metric takes the catalog's labels by default.
            {"metric": "trino_queued_queries", "query": "sum by (cluster) (qs_test_queue_depth)"},
            {"metric": "queue_depth_total", "query": "scalar(sum(qs_test_queue_depth))"},
        ],
    )
    async with source(config) as src:
        assert src.identity() == {}
        assert list(src.served_metrics()) == ["queue_depth", "queue_depth_total", "trino_queued_queries"]
        samples = await src.collect(0.0)
    # node n1 + n2 of (a, x) are added; job and instance never reach the served series.
    assert by_labels(samples, "queue_depth") == {
        key(cluster="a", queue="x"): 7,
        key(cluster="a", queue="y"): 5,
        key(cluster="b", queue="x"): 7,
    }
    assert by_labels(samples, "trino_queued_queries") == {key(cluster="a"): 12, key(cluster="b"): 7}
    assert by_labels(samples, "queue_depth_total") == {(): 19}


async def test_nan_inf_and_negative_values_never_reach_the_hpa(
    prom_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = settings(
        prom_url,
        queries=[
            {"metric": "bad_by_k", "query": "qs_test_bad_values", "labels": ["k"]},
            {"metric": "bad_summed", "query": "qs_test_bad_values"},
        ],
    )
    with caplog.at_level(logging.WARNING, logger="adapter.sources.prometheus"):
        async with source(config) as src:
            samples = await src.collect(0.0)
    assert by_labels(samples, "bad_by_k") == {key(k="ok"): 2}
    # Left out of the sum, not poisoning it.
    assert by_labels(samples, "bad_summed") == {(): 2}
    warned = [r.getMessage() for r in caplog.records if "bad_by_k" in r.getMessage()]
    assert len(warned) == 1
    assert "ignored 3" in warned[0]


async def test_trino_preset_reads_both_naming_schemes(prom_url: str) -> None:
    async with source(settings(prom_url, presets=["trino"])) as src:
        samples = await src.collect(0.0)
    assert by_labels(samples, "trino_queued_queries") == {
        key(cluster="a"): 4,  # trino_execution_name_QueryManager_QueuedQueries
        key(cluster="b"): 6,  # trino_execution_QueryManager_QueuedQueries (JMX exporter)
        key(cluster="c"): 5,  # scraped under both names: counted once
    }
    assert by_labels(samples, "trino_running_queries") == {
        key(cluster="a"): 10,
        key(cluster="b"): 1,
        key(cluster="c"): 2,
    }
    assert by_labels(samples, "trino_required_workers") == {key(cluster="a"): 2, key(cluster="b"): 0}
    assert by_labels(samples, "trino_cluster_memory_bytes") == {
        key(cluster="a"): 64e9,
        key(cluster="b"): 32e9,
    }
    assert by_labels(samples, "trino_nodes") == {
        key(cluster="a", state="active"): 3,
        key(cluster="a", state="draining"): 1,
        # Two nodes of b report the same cluster-wide count: not doubled.
        key(cluster="b", state="active"): 2,
        key(cluster="b", state="shutting_down"): 1,
        key(cluster="c", state="active"): 4,
    }
    assert by_labels(samples, "trino_started_queries_total") == {
        key(cluster="a"): 120,
        key(cluster="b"): 40,  # trino_execution_QueryManager_StartedQueries_TotalCount
        key(cluster="c"): 7,
    }
    assert by_labels(samples, "trino_completed_queries_total") == {
        key(cluster="a"): 118,
        key(cluster="b"): 39,
        key(cluster="c"): 5,
    }
    assert by_labels(samples, "trino_consumed_cpu_seconds_total") == {
        key(cluster="a"): 905,
        key(cluster="b"): 310,  # trino_execution_QueryManager_ConsumedCpuTimeSecs_TotalCount
        key(cluster="c"): 12,
    }
    names = {s.metric for s in samples}
    assert names <= set(src.served_metrics())
    for sample in samples:
        spec = DEFAULT_CATALOG.get(sample.metric)
        assert spec is not None
        assert sorted(sample.labels) == sorted(spec.labels)


async def test_spark_preset_reads_executor_endpoint_and_servlet(prom_url: str) -> None:
    config = settings(prom_url, presets=["spark"], cluster_label="spark_pool")
    async with source(config) as src:
        samples = await src.collect(0.0)

    def app(app_id: str, name: str) -> tuple[tuple[str, str], ...]:
        return key(pool="batch", app=app_id, app_name=name)

    assert by_labels(samples, "spark_running_tasks") == {app(APP1, "etl"): 5, app(APP2, "adhoc"): 1}
    assert by_labels(samples, "spark_task_slots") == {app(APP1, "etl"): 8, app(APP2, "adhoc"): 2}
    # APP1 from the executor endpoint (driver row excluded), "nightly" only through its servlet.
    assert by_labels(samples, "spark_executors") == {app(APP1, "etl"): 2, app("nightly", ""): 4}
    # The servlet's app_20240101120000_0001 is served as the real app id, named from the executor endpoint.
    assert by_labels(samples, "spark_executors_needed") == {app(APP1, "etl"): 5, app("nightly", ""): 6}
    assert by_labels(samples, "spark_pool_workers") == {
        key(pool="batch", state="alive"): 2,
        key(pool="batch", state="dead"): 1,
    }
    assert by_labels(samples, "spark_pool_cores") == {key(pool="batch"): 8}
    assert by_labels(samples, "spark_pool_cores_used") == {key(pool="batch"): 5}
    assert by_labels(samples, "spark_waiting_apps") == {key(pool="batch"): 1}


async def test_a_new_value_shows_up_after_the_next_scrape(
    prometheus: tuple[PrometheusServer, Exporter],
) -> None:
    server, exporter = prometheus
    config = settings(server.url, queries=[{"metric": "changing", "query": "qs_test_changing"}])
    async with source(config) as src:
        assert by_labels(await src.collect(0.0), "changing") == {(): 1}
        exporter.set({"qs_test_changing": [gauge(42, cluster="a")]})
        samples = await eventually(
            lambda: src.collect(0.0), check=lambda s: by_labels(s, "changing") == {(): 42}
        )
    assert by_labels(samples, "changing") == {(): 42}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Unparsable PromQL: Prometheus's 400 and its own error text.
        ("sum(qs_test_queue_depth", "HTTP 400: bad_data"),
        # A range vector is not one value per series.
        ("qs_test_queue_depth[1m]", "range vector"),
        # A string literal is no number.
        ('"hello"', "not a number"),
    ],
)
async def test_unusable_queries_fail_naming_the_metric(prom_url: str, query: str, expected: str) -> None:
    config = settings(prom_url, queries=[{"metric": "broken", "query": query}])
    async with source(config) as src:
        with pytest.raises(SourceError, match=expected) as info:
            await src.collect(0.0)
    assert "'broken'" in str(info.value)


async def test_one_failing_query_fails_the_whole_poll(prom_url: str) -> None:
    config = settings(
        prom_url,
        queries=[
            {"metric": "good", "query": "qs_test_queue_depth"},
            {"metric": "zzz_broken", "query": "sum("},
        ],
    )
    async with source(config) as src:
        with pytest.raises(SourceError, match="'zzz_broken'"):
            await src.collect(0.0)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_prometheus_is_a_source_error() -> None:
    config = settings(f"http://127.0.0.1:{_closed_port()}", presets=["trino"])
    async with source(config) as src:
        with pytest.raises(SourceError, match="cannot connect") as info:
            await src.collect(0.0)
    assert "trino_" in str(info.value)


async def test_a_stopped_prometheus_is_a_source_error(tmp_path: Path) -> None:
    with running_prometheus(tmp_path, []) as server:
        config = settings(server.url, queries=[{"metric": "one", "query": "vector(1)"}])
        async with source(config) as src:
            assert by_labels(await src.collect(0.0), "one") == {(): 1}
            server.stop()
            with pytest.raises(SourceError, match="'one' failed: cannot connect"):
                await src.collect(0.0)


async def test_a_slow_prometheus_times_out() -> None:
    async with slow_server(delay=10.0) as url:
        config = settings(url, timeout_seconds=0.5, queries=[{"metric": "slow", "query": "vector(1)"}])
        async with source(config) as src:
            with pytest.raises(SourceError, match=r"'slow'.*(timed out|no answer)"):
                await src.collect(0.0)


async def test_bearer_token_is_read_from_its_file_on_every_poll(prom_url: str, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first-secret-token\n")
    accepted = {"value": "Bearer first-secret-token"}
    async with auth_proxy(prom_url, lambda: accepted["value"]) as url:
        config = settings(
            url,
            endpoint={"url": url, "bearer_token_file": str(token_file)},
            queries=[{"metric": "queue_depth", "query": "qs_test_queue_depth"}],
        )
        async with source(config) as src:
            assert by_labels(await src.collect(0.0), "queue_depth") == {(): 19}
            # The proxy now wants a new token the source has not got yet.
            accepted["value"] = "Bearer second-secret-token"
            with pytest.raises(SourceError, match="HTTP 401") as info:
                await src.collect(0.0)
            message = str(info.value)
            assert "secret-token" not in message
            assert "login required" not in message
            # The Secret is rotated: the next poll reads the new file.
            token_file.write_text("second-secret-token\n")
            assert by_labels(await src.collect(0.0), "queue_depth") == {(): 19}


async def test_basic_auth_password_file(prom_url: str, tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text("pa55word")
    # base64("reader:pa55word")
    async with auth_proxy(prom_url, lambda: "Basic cmVhZGVyOnBhNTV3b3Jk") as url:
        config = settings(
            url,
            endpoint={"url": url, "username": "reader", "password_file": str(password_file)},
            queries=[{"metric": "queue_depth", "query": "qs_test_queue_depth", "labels": ["cluster"]}],
        )
        async with source(config) as src:
            assert by_labels(await src.collect(0.0), "queue_depth") == {
                key(cluster="a"): 12,
                key(cluster="b"): 7,
            }


async def test_tls_is_verified_against_the_configured_ca(prom_url: str, tmp_path: Path) -> None:
    certs = CertFactory(tmp_path / "pki")
    ca = certs.ca("prometheus-ca")
    serving = certs.serving(ca, "prometheus")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(serving.cert_file, serving.key_file)
    query = [{"metric": "queue_depth", "query": "qs_test_queue_depth"}]
    async with auth_proxy(prom_url, lambda: "Bearer t", context) as url:
        token = tmp_path / "token"
        token.write_text("t")
        endpoint: dict[str, Any] = {"url": url, "bearer_token_file": str(token)}
        with_ca = settings(url, endpoint={**endpoint, "ca_file": str(ca.cert_file)}, queries=query)
        async with source(with_ca) as src:
            assert by_labels(await src.collect(0.0), "queue_depth") == {(): 19}
        # Without the CA the system trust store does not know this server.
        async with source(settings(url, endpoint=endpoint, queries=query)) as src:
            with pytest.raises(SourceError, match="TLS failed: certificate verify failed"):
                await src.collect(0.0)


QUERY = {"metric": "queue_depth", "query": "qs_test_queue_depth"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        # Two queries may not serve the same metric.
        ({"queries": [QUERY, QUERY]}, "defined by more than one query"),
        # Names follow the catalog pattern.
        ({"queries": [{**QUERY, "metric": "Queue-Depth"}]}, "metric"),
        ({"queries": [{**QUERY, "metric": "9lives"}]}, "metric"),
        # Served label names must be real label names, and not Prometheus-internal ones.
        ({"queries": [{**QUERY, "labels": ["bad-label"]}]}, "not a label name"),
        ({"queries": [{**QUERY, "labels": ["__name__"]}]}, "not a label name"),
        ({"queries": [{**QUERY, "labels": ["queue", "queue"]}]}, "twice"),
        # A catalog metric keeps the catalog's labels: trino_queued_queries has only `cluster`.
        (
            {"queries": [{"metric": "trino_queued_queries", "query": "x", "labels": ["cluster", "queue"]}]},
            "catalog defines it with",
        ),
        ({"queries": [{"metric": "trino_queued_queries", "query": "x", "labels": []}]}, "catalog defines"),
        # spark_* metrics are keyed by `pool`: only the cluster_label is served as `pool`.
        (
            {"queries": [{"metric": "spark_pool_cores", "query": "x", "labels": ["spark_pool"]}]},
            r"would serve labels \['spark_pool'\].*'cluster' is served as 'pool'",
        ),
        # cluster_label "app" would collide with the spark metrics' own `app` label.
        ({"presets": ["spark"], "cluster_label": "app"}, "cluster_label 'app' is a label of its own"),
        # help and unit belong to new metrics only.
        ({"queries": [{"metric": "trino_queued_queries", "query": "x", "help": "mine"}]}, "help and unit"),
        # The same preset twice.
        ({"presets": ["trino", "trino"]}, "twice"),
        # An unknown preset.
        ({"presets": ["kafka"]}, "presets"),
        # Nothing to serve.
        ({}, "at least one query or preset"),
        # Unknown fields are refused.
        ({"queries": [{**QUERY, "lables": ["queue"]}]}, "lables"),
        ({"queries": [{"metric": "x_y", "query": ""}]}, "query"),
    ],
)
def test_settings_validation(fields: Mapping[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings("http://127.0.0.1:9090", **fields)


def test_operator_query_overrides_a_preset_and_custom_specs() -> None:
    config = settings(
        "http://127.0.0.1:9090",
        presets=["trino"],
        cluster_label="trino_cluster",
        queries=[
            {"metric": "trino_queued_queries", "query": "sum by (trino_cluster) (my_queue)"},
            {
                "metric": "queue_depth",
                "query": "sum by (q) (d)",
                "labels": ["q", "trino_cluster"],
                "help": "Depth.",
                "unit": "items",
            },
        ],
    )
    queries = {q.metric: q for q in config.effective_queries()}
    assert queries["trino_queued_queries"].query == "sum by (trino_cluster) (my_queue)"
    assert "trino_nodes" in queries
    assert config.label_map(queries["trino_queued_queries"]) == (("trino_cluster", "cluster"),)
    # A new metric is served with its labels as named: no cluster renaming outside the catalog families.
    specs = config.custom_specs()
    assert [(s.name, s.family, s.labels, s.unit, s.help) for s in specs] == [
        ("queue_depth", "custom", ("q", "trino_cluster"), "items", "Depth.")
    ]
    assert isinstance(DEFAULT_CATALOG.extended(specs), Catalog)
    assert PrometheusSettings.model_fields["poll_interval_seconds"].default == 15.0


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        # Scalar: one series with the kept labels empty.
        ([1700000000.1, "3.5"], [({"k": ""}, 3.5)]),
        # Missing kept label counts as empty, like Prometheus's own matching.
        ([{"metric": {"x": "1"}, "value": [0, "2"]}], [({"k": ""}, 2.0)]),
        # Empty vector: idle.
        ([], []),
    ],
)
def test_samples_from_result_shapes(result: Any, expected: list[tuple[dict[str, str], float]]) -> None:
    samples, refused = samples_from_result("m", result, (("k", "k"),))
    assert [(dict(s.labels), s.value) for s in samples] == expected
    assert refused == []
