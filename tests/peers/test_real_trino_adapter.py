"""Every Trino figure of the catalog, read by the adapter from a real Trino 476, against Trino's own
account of the same moment (``system.runtime.queries``, ``system.runtime.nodes``, the queries we ran).

The long queries scan a blackhole table whose pages each take a minute, so counts hold still while both
sides are read; the check queries on system tables are left out of Trino's side.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator, Sequence

import aiohttp
import pytest

from adapter.samples import Sample
from adapter.sources.http import HttpEndpoint
from adapter.sources.trino import TrinoSettings, TrinoSource
from core.quantity import parse_quantity
from tests.helpers.adapter import running_adapter
from tests.helpers.trino import sample_value as value
from tests.helpers.wait import eventually
from tests.peers.trino_cluster import (
    ADMIN,
    MONITOR,
    SERIAL_SOURCE,
    RunningQuery,
    TrinoCluster,
    start_trino_cluster,
)

pytestmark = [pytest.mark.real_trino, pytest.mark.timeout(900)]

CHECK = "/* queuescale check */"


def source_for(cluster: TrinoCluster, *, running_query_cpu: bool = False) -> TrinoSource:
    return TrinoSource(
        TrinoSettings(
            name="real",
            endpoint=HttpEndpoint(url=cluster.coordinator.http_url),
            user=MONITOR,
            resource_groups=["global"],
            timeout_seconds=20,
            running_query_cpu=running_query_cpu,
        )
    )


async def collect(cluster: TrinoCluster) -> list[Sample]:
    source = source_for(cluster)
    try:
        return await source.collect(0.0)
    finally:
        await source.close()


def by_label(samples: Sequence[Sample], metric: str, label: str) -> dict[str, float]:
    return {s.labels[label]: s.value for s in samples if s.metric == metric}


def trino_query_states(cluster: TrinoCluster) -> dict[str, int]:
    rows = cluster.query(
        f"{CHECK} SELECT state, count(*) FROM system.runtime.queries "
        f"WHERE state IN ('QUEUED', 'RUNNING', 'WAITING_FOR_RESOURCES') AND query NOT LIKE '%queuescale check%' "
        "GROUP BY state",
        user=ADMIN,
    )
    return {str(state): int(n) for state, n in rows}


def trino_group_states(cluster: TrinoCluster) -> dict[tuple[str, str], int]:
    rows = cluster.query(
        f"{CHECK} SELECT array_join(resource_group_id, '.'), state, count(*) FROM system.runtime.queries "
        f"WHERE state IN ('QUEUED', 'RUNNING') AND query NOT LIKE '%queuescale check%' GROUP BY 1, 2",
        user=ADMIN,
    )
    return {(str(group), str(state)): int(n) for group, state, n in rows}


def trino_node_states(cluster: TrinoCluster) -> dict[str, int]:
    rows = cluster.query(
        f"{CHECK} SELECT state, count(*) FROM system.runtime.nodes GROUP BY state", user=ADMIN
    )
    return {str(state): int(n) for state, n in rows}


@pytest.fixture
def long_queries(real_trino: TrinoCluster) -> Iterator[list[RunningQuery]]:
    """Three queries in ``global.serial`` (limit 1: one runs, two queue) and two in ``global.adhoc``."""
    table = real_trino.create_slow_table("adapter_slow", splits=2, delay="60s")
    queries = [real_trino.submit(f"SELECT count(*) FROM {table}", source=SERIAL_SOURCE) for _ in range(3)]
    queries += [real_trino.submit(f"SELECT count(*) FROM {table}") for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        while trino_query_states(real_trino) != {"QUEUED": 2, "RUNNING": 3}:
            assert time.monotonic() < deadline, trino_query_states(real_trino)
            time.sleep(0.5)
        yield queries
    finally:
        for q in queries:
            q.cancel()


async def test_queries_and_groups_match_trinos_own_account(
    real_trino: TrinoCluster, long_queries: list[RunningQuery]
) -> None:
    samples = await collect(real_trino)
    states = await asyncio.to_thread(trino_query_states, real_trino)
    groups = await asyncio.to_thread(trino_group_states, real_trino)
    assert value(samples, "trino_queued_queries") == states.get("QUEUED", 0) == 2
    assert value(samples, "trino_running_queries") == states.get("RUNNING", 0) == 3
    # Nothing is fully blocked: blackhole's page delay keeps a driver busy (TRINO_FACTS.md §4).
    assert value(samples, "trino_blocked_queries") == 0
    queued = by_label(samples, "trino_resource_group_queued_queries", "resource_group")
    running = by_label(samples, "trino_resource_group_running_queries", "resource_group")
    for (group, state), count in groups.items():
        assert (queued if state == "QUEUED" else running)[group] == count, (group, state)
    assert (queued["global.serial"], running["global.serial"]) == (2, 1)
    assert (queued["global"], running["global"]) == (2, 3)
    # The two queued queries wait for global.serial's hardConcurrencyLimit of 1, which more workers would
    # not lift: limit-bound, so nothing is queued for want of capacity.
    bound = by_label(samples, "trino_resource_group_limit_bound", "resource_group")
    assert bound["global.serial"] == 1
    limits = by_label(samples, "trino_resource_group_hard_concurrency_limit", "resource_group")
    assert limits["global.serial"] == 1
    assert value(samples, "trino_capacity_queued_queries") == 0


async def test_started_and_completed_counters_count_the_queries_run(real_trino: TrinoCluster) -> None:
    before = await collect(real_trino)
    for _ in range(3):
        await asyncio.to_thread(real_trino.query, "SELECT count(*) FROM tpch.tiny.nation")
    after = await collect(real_trino)
    for counter in ("trino_started_queries_total", "trino_completed_queries_total"):
        assert value(after, counter) - value(before, counter) == 3, counter


EXTERNAL_API = "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/{}?labelSelector=cluster%3Dreal"
RUNNING_CPU = "trino_running_queries_cpu_seconds"


async def served_value(adapter_url: str, metric: str = "trino_consumed_cpu_seconds_total") -> float | None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(adapter_url + EXTERNAL_API.format(metric)) as resp,
    ):
        if resp.status != 200:
            return None
        items = (await resp.json())["items"]
    assert len(items) == 1, items
    assert items[0]["metricLabels"] == {"cluster": "real"}
    return float(parse_quantity(items[0]["value"]))


def consumed_cpu_on_trino(cluster: TrinoCluster) -> float:
    name = "trino_execution_name_QueryManager_ConsumedCpuTimeSecs"
    return cluster.metric_values(cluster.coordinator, f"^{name}$")[name]


async def test_query_cpu_is_served_on_the_external_metrics_api(real_trino: TrinoCluster) -> None:
    source = source_for(real_trino, running_query_cpu=True)
    async with running_adapter([source]) as (server, _):
        before = await eventually(lambda: served_value(server.url), check=lambda v: v is not None)
        assert before == await asyncio.to_thread(consumed_cpu_on_trino, real_trino)
        assert await served_value(server.url, RUNNING_CPU) == 0
        running = await asyncio.to_thread(
            real_trino.submit,
            f"{CHECK} SELECT sum(extendedprice * discount), count(*) FROM tpch.sf1.lineitem",
        )
        # While it runs, its CPU so far shows once task statuses have reached the coordinator (in steps).
        during = await eventually(
            lambda: served_value(server.url, RUNNING_CPU), check=lambda v: bool(v), timeout=60.0
        )
        await asyncio.to_thread(running.result, 120.0)
        assert running.query_id is not None
        spent = running.last["stats"]["cpuTimeMillis"] / 1000
        after = await eventually(
            lambda: served_value(server.url), check=lambda v: v is not None and v > before, timeout=30.0
        )
        assert after == await asyncio.to_thread(consumed_cpu_on_trino, real_trino)
        # Whole seconds of the one query that ended meanwhile (the poller's own requests run no SQL), from the
        # stats it had when it ended, which can lag the client's final figure (TRINO_FACTS.md §11: 10 for 11.26 s).
        assert 0 < after - before <= math.floor(spent), (after, before, spent)
        assert during is not None
        assert 0 < during <= spent
        # Once it ended it is no longer running: its CPU is in the counter only.
        await eventually(lambda: served_value(server.url, RUNNING_CPU), check=lambda v: v == 0)


async def test_nodes_by_state_match_system_runtime_nodes_through_a_drain(real_trino: TrinoCluster) -> None:
    worker = real_trino.workers[-1]
    samples = await collect(real_trino)
    assert by_label(samples, "trino_nodes", "state")["active"] == trino_node_states(real_trino)["active"] == 3
    memory_before = value(samples, "trino_cluster_memory_bytes")
    assert real_trino.set_state(worker, "DRAINING").status == 200
    try:
        deadline = time.monotonic() + 60
        while trino_node_states(real_trino).get("drained") != 1:
            assert time.monotonic() < deadline, trino_node_states(real_trino)
            await asyncio.sleep(0.5)
        samples = await collect(real_trino)
        nodes = by_label(samples, "trino_nodes", "state")
        trino_side = trino_node_states(real_trino)
        for state in ("active", "draining", "drained", "shutting_down"):
            assert nodes.get(state, 0) == trino_side.get(state, 0), state
        # ClusterMemoryManager still counts the drained worker's memory (TRINO_FACTS.md §8).
        assert value(samples, "trino_cluster_memory_bytes") == memory_before
    finally:
        assert real_trino.set_state(worker, "ACTIVE").status == 200
        deadline = time.monotonic() + 60
        while trino_node_states(real_trino).get("active") != 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.5)


@pytest.fixture(scope="module")
def short_of_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrinoCluster]:
    """A coordinator that wants 2 workers and has 1: every query waits for resources."""
    cluster = start_trino_cluster(
        tmp_path_factory.mktemp("trino-required"),
        workers=1,
        required_workers=2,
        required_workers_max_wait="10m",
    )
    try:
        yield cluster
    finally:
        cluster.stop()


async def test_required_workers_while_a_query_waits_for_them(short_of_workers: TrinoCluster) -> None:
    cluster = short_of_workers
    idle = await collect(cluster)
    assert value(idle, "trino_required_workers") == 0
    waiting = cluster.submit("SELECT count(*) FROM tpch.tiny.nation")
    try:
        deadline = time.monotonic() + 60
        while True:
            info = cluster.query_info(waiting.query_id or "")
            if info.get("state") == "WAITING_FOR_RESOURCES":
                break
            assert time.monotonic() < deadline, info.get("state")
            await asyncio.sleep(0.5)
        samples = await collect(cluster)
        # The configured minimum while a query waits for it; such a query is neither queued nor running.
        assert value(samples, "trino_required_workers") == 2
        assert value(samples, "trino_queued_queries") == 0
        assert value(samples, "trino_running_queries") == 0
    finally:
        waiting.cancel()
