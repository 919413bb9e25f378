"""One contract, two peers: what queuescale relies on from a Trino 476 coordinator and its workers, asked
over HTTP of the emulator (``lab/sandbox/trino*``) and of a real Trino 476 alike.

Each case is the real server's answer (tests/peers/TRINO_FACTS.md); the emulator must give the same, so the
demo and the fast tests stay faithful. Cluster time passes through ``Peer.wait``: the emulator's clock moves
at once, the real cluster is given the wall-clock time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest

from lab.sandbox.trino import ResourceGroupSpec, TrinoAuth
from tests.helpers.trino import trino_sandbox
from tests.peers.trino_cluster import ADMIN, LAZY_SOURCE, MONITOR, SERIAL_SOURCE, TrinoCluster

CPU_QUERY = "SELECT sum(extendedprice * discount), count(*) FROM tpch.sf1.lineitem"
CONSUMED_CPU = "trino_execution_name_QueryManager_ConsumedCpuTimeSecs"
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

#: The real cluster's resource groups (tests/peers/trino_cluster.py), for the emulator.
GROUPS = [
    ResourceGroupSpec(
        "global",
        hard_concurrency_limit=100,
        max_queued=1000,
        sub_groups=(
            ResourceGroupSpec("serial", hard_concurrency_limit=1, max_queued=100),
            ResourceGroupSpec("adhoc", hard_concurrency_limit=50, max_queued=1000),
            ResourceGroupSpec("lazy", hard_concurrency_limit=10, max_queued=100),
        ),
    )
]


@dataclass
class Peer:
    kind: str
    coordinator: str
    workers: list[str]
    wait: Callable[[float], Awaitable[None]]
    """Let this many seconds of cluster time pass."""
    run_query: Callable[[str], Awaitable[None]]
    """Run one short query in a leaf resource group (``adhoc``, ``serial`` or ``lazy``) to its end."""
    run_cpu_query: Callable[[], Awaitable[None]]
    """Run one query that spends some CPU-seconds (in ``adhoc``) to its end."""


@pytest.fixture(params=["emulator", pytest.param("real", marks=pytest.mark.real_trino)])
async def peer(request: pytest.FixtureRequest) -> AsyncIterator[Peer]:
    if request.param == "real":
        real: TrinoCluster = request.getfixturevalue("real_trino")

        async def run_real(group: str) -> None:
            source = {"serial": SERIAL_SOURCE, "lazy": LAZY_SOURCE}.get(group)
            await asyncio.to_thread(real.query, "SELECT count(*) FROM tpch.tiny.region", source=source)

        async def run_real_cpu() -> None:
            # About 11 CPU-seconds on the two workers of a real 476 (tests/peers/TRINO_FACTS.md).
            await asyncio.to_thread(real.query, CPU_QUERY, timeout=120.0)

        yield Peer(
            "real",
            real.coordinator.http_url,
            [w.http_url for w in real.workers],
            asyncio.sleep,
            run_real,
            run_real_cpu,
        )
        for worker in real.workers:
            real.set_state(worker, "ACTIVE")
        return
    auth = TrinoAuth(read_users=frozenset({ADMIN, MONITOR}))
    async with trino_sandbox(476, workers=2, groups=GROUPS, auth=auth, grace_period=3.0) as sb:

        async def advance(seconds: float) -> None:
            sb.cluster.advance(sb.cluster.now + seconds)
            await sb.sync()

        async def run_emulated(group: str) -> None:
            # A count over tpch.tiny.region spends 5-10 ms of CPU on a real 476.
            sb.cluster.submit(f"global.{group}", 0.01)
            await advance(5.0)

        async def run_emulated_cpu() -> None:
            sb.cluster.submit("global.adhoc", 11.07, text=CPU_QUERY)
            await advance(30.0)

        workers = [sb.url(w.node_id) for w in sb.cluster.workers()]
        yield Peer("emulator", sb.coordinator_url, workers, advance, run_emulated, run_emulated_cpu)


async def call(
    method: str,
    url: str,
    *,
    user: str | None = None,
    body: object = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    sent = dict(headers or {})
    if user is not None:
        sent["X-Trino-User"] = user
    data = None
    if body is not None:
        data = json.dumps(body)
        sent["Content-Type"] = "application/json"
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, headers=sent) as resp,
    ):
        return resp.status, await resp.text()


async def metrics(url: str) -> dict[str, float]:
    status, text = await call("GET", url + "/metrics", user=MONITOR)
    assert status == 200, text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


async def state(url: str) -> str:
    status, text = await call("GET", url + "/v1/info/state")
    assert status == 200
    return str(json.loads(text))


@pytest.mark.parametrize(
    ("target", "status", "text"),
    [
        # internal states are refused as transitions on 468-476 (500 only from 477)
        ("DRAINED", 400, "Invalid state transition to DRAINED"),
        ("INACTIVE", 400, "Invalid state transition to INACTIVE"),
        # the same state again is a no-op
        ("ACTIVE", 200, ""),
    ],
)
async def test_state_changes_an_active_worker_refuses_or_takes(
    peer: Peer, target: str, status: int, text: str
) -> None:
    got, body = await call("PUT", peer.workers[0] + "/v1/info/state", user=ADMIN, body=target)
    assert got == status, body
    assert text in body
    assert await state(peer.workers[0]) == "ACTIVE"


async def test_the_coordinator_refuses_to_drain(peer: Peer) -> None:
    got, body = await call("PUT", peer.coordinator + "/v1/info/state", user=ADMIN, body="DRAINING")
    assert got == 500
    assert "Cannot drain coordinator" in body


async def test_who_may_read_metrics_and_change_states(peer: Peer) -> None:
    worker = peer.workers[0]
    # /v1/info/state is public; /metrics and PUT need a user with the right
    assert (await call("GET", worker + "/v1/info/state"))[0] == 200
    assert (await call("GET", worker + "/metrics"))[0] == 401
    # a password over plain HTTP is refused by a cluster without authentication
    basic = {"Authorization": "Basic YWRtaW46c2VjcmV0"}  # admin:secret
    got, body = await call("PUT", worker + "/v1/info/state", body="DRAINING", headers=basic)
    assert (got, "Password not allowed for insecure authentication" in body) == (401, True)
    assert await state(worker) == "ACTIVE"


async def test_worker_metrics_name_the_thread_per_driver_executor(peer: Peer) -> None:
    values = await metrics(peer.workers[0])
    dedicated = "trino_execution_executor_dedicated_name_ThreadPerDriverTaskExecutor_"
    assert values[dedicated + "Tasks"] == 0
    assert values[dedicated + "TotalRunningSplits"] == 0
    # Before 477 every node exports the node manager's view of the whole cluster. A worker refreshes that view
    # from discovery every few seconds, so after another test drained and restored a worker it may lag.
    active = "trino_metadata_name_DiscoveryNodeManager_ActiveNodeCount"
    deadline = time.monotonic() + 30.0
    while values[active] != 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        values = await metrics(peer.workers[0])
    assert values[active] == 3
    assert not any(name.startswith("trino_execution_name_QueryManager_") for name in values)


async def test_coordinator_metrics_of_476(peer: Peer) -> None:
    values = await metrics(peer.coordinator)
    for name in ("QueuedQueries", "RunningQueries", "ProgressingQueries", "FullyBlockedQueries"):
        assert values["trino_execution_name_QueryManager_" + name] == 0, name
    for attribute in ("Active", "Inactive", "Draining", "Drained", "ShuttingDown"):
        assert f"trino_metadata_name_DiscoveryNodeManager_{attribute}NodeCount" in values
    assert not any(name.startswith("trino_node_name_") for name in values)
    assert values["trino_execution_name_ClusterSizeMonitor_RequiredWorkers"] == 0


async def test_resource_groups_exist_once_a_query_selected_them(peer: Peer) -> None:
    # global.lazy is configured on both, and nothing selects it but this test's query.
    url = peer.coordinator + "/v1/resourceGroupState/global/lazy"
    before, _ = await call("GET", url, user=MONITOR)
    assert before == 404
    await peer.run_query("lazy")
    after, body = await call("GET", url, user=MONITOR)
    assert after == 200, body
    doc = json.loads(body)
    assert doc["id"] == ["global", "lazy"]
    assert doc["hardConcurrencyLimit"] == 10
    assert (await call("GET", peer.coordinator + "/v1/resourceGroupState/global/nosuch", user=MONITOR))[
        0
    ] == 404


async def test_a_drained_worker_keeps_its_memory_counted(peer: Peer) -> None:
    memory = "trino_memory_name_ClusterMemoryManager_ClusterMemoryBytes"
    before = (await metrics(peer.coordinator))[memory]
    worker = peer.workers[-1]
    assert (await call("PUT", worker + "/v1/info/state", user=ADMIN, body="DRAINING"))[0] == 200
    for _ in range(60):
        if await state(worker) == "DRAINED":
            break
        await peer.wait(1.0)
    assert await state(worker) == "DRAINED"
    await peer.wait(10.0)  # past the coordinator's node refresh
    values = await metrics(peer.coordinator)
    assert values["trino_metadata_name_DiscoveryNodeManager_DrainedNodeCount"] == 1
    assert values[memory] == before
    # DRAINING again on a DRAINED worker is an invalid transition; ACTIVE brings it back at once.
    assert (await call("PUT", worker + "/v1/info/state", user=ADMIN, body="DRAINING"))[0] == 400
    assert (await call("PUT", worker + "/v1/info/state", user=ADMIN, body="ACTIVE"))[0] == 200
    assert await state(worker) == "ACTIVE"


def seconds(duration: str) -> float:
    """An airlift ``Duration`` as the JSON of ``/v1/query`` writes it (``11.07s``, ``5.00ms``)."""
    match = re.fullmatch(r"([0-9.]+)([a-z]+)", duration)
    assert match is not None, duration
    assert match[2] in _DURATION_UNITS, duration
    return float(match[1]) * _DURATION_UNITS[match[2]]


async def test_consumed_cpu_counts_whole_seconds_when_a_query_ends(peer: Peer) -> None:
    # The first tpch query on fresh JVMs spends seconds of CPU (a real 476 counted 3 for it): warm up first.
    await peer.run_query("adhoc")
    before = (await metrics(peer.coordinator))[CONSUMED_CPU]
    # A query of a few milliseconds: its CPU is cut to whole seconds, so it adds nothing.
    await peer.run_query("adhoc")
    assert (await metrics(peer.coordinator))[CONSUMED_CPU] == before
    await peer.run_cpu_query()
    status, body = await call("GET", peer.coordinator + "/v1/query?state=FINISHED", user=ADMIN)
    assert status == 200, body
    query = max(
        (q for q in json.loads(body) if q["query"] == CPU_QUERY), key=lambda q: q["queryStats"]["createTime"]
    )
    spent = seconds(query["queryStats"]["totalCpuTime"])
    assert spent >= 2.0, query["queryStats"]
    added = (await metrics(peer.coordinator))[CONSUMED_CPU] - before
    # Counted when the query ended, from the stats it had then (which can lag the final figure on a real
    # Trino): whole seconds, never more than it spent.
    assert 0 < added <= math.floor(spent), (added, spent)
