"""The sandbox as one cluster: workload pods of the API sandbox are Trino and Spark workers, over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import aiohttp
import kubernetes.client
import pytest

from lab.cluster import ModelClock, SandboxCluster, running_cluster
from lab.pod_workers import Workload
from lab.sandbox.kube import client_for
from lab.sandbox.kube_types import DEPLOYMENTS, STATEFULSETS
from lab.sandbox.spark_model import ALIVE, SparkPool
from lab.sandbox.trino_model import NodeState, QueryState, ResourceGroupSpec, TrinoCluster
from tests.helpers.wait import eventually

TRINO = Workload("trino", "trino-worker", replicas=2, startup_seconds=1.0, port=8080)
SPARK = Workload("spark", "spark-worker", kind="StatefulSet", replicas=2, startup_seconds=1.0)
U = {"X-Trino-User": "admin"}
T = TypeVar("T")


@pytest.fixture
async def cluster() -> AsyncIterator[SandboxCluster]:
    model = TrinoCluster(
        478, workers=0, groups=[ResourceGroupSpec("global")], grace_period=0.0, node_refresh_seconds=0.0
    )
    pool = SparkPool(decommission_enabled=True)
    async with running_cluster(
        model, pool, speed=10.0, trino_workload=TRINO, spark_workload=SPARK, spark_cores_per_worker=4
    ) as running:
        yield running


async def _get_json(session: aiohttp.ClientSession, url: str) -> object:
    async with session.get(url, headers=U) as resp:
        assert resp.status == 200, url
        return await resp.json(content_type=None)


def test_model_clock_runs_speed_times_the_wall() -> None:
    wall = [100.0]
    clock = ModelClock(15.0, wall=lambda: wall[0])
    clock.start()
    wall[0] = 102.0
    assert clock.now() == pytest.approx(30.0)


async def test_trino_pods_are_workers_reached_at_their_pod_port(cluster: SandboxCluster) -> None:
    await eventually(lambda: _joined(cluster), check=lambda n: n == (2, 2))
    api = client_for(cluster.kube_url)
    try:
        core = kubernetes.client.CoreV1Api(api)
        found = await asyncio.to_thread(core.list_namespaced_pod, "trino", label_selector="app=trino-worker")
        listed = [api.sanitize_for_serialization(p) for p in found.items]  # type: ignore[no-untyped-call]
    finally:
        await asyncio.to_thread(api.close)
    pods = {p["metadata"]["name"]: p for p in listed}
    assert set(pods) == {w.node_id for w in cluster.trino.cluster.workers()}
    async with aiohttp.ClientSession() as session:
        for name, pod in pods.items():
            port = next(
                p["containerPort"] for p in pod["spec"]["containers"][0]["ports"] if p["name"] == "http"
            )
            assert port != 8080, "the port is rewritten to the worker's own"
            info = await _get_json(session, f"http://{pod['status']['podIP']}:{port}/v1/info")
            assert isinstance(info, dict)
            assert info["nodeId"] == name


async def test_a_deleted_trino_pod_takes_its_worker_and_its_queries(cluster: SandboxCluster) -> None:
    await eventually(lambda: _joined(cluster), check=lambda n: n == (2, 2))
    model = cluster.trino.cluster
    query = model.submit("global", 10_000.0)
    assert query.state is QueryState.RUNNING
    cluster.kube.scale(DEPLOYMENTS, "trino", "trino-worker", 1)
    await eventually(_async(lambda: len(cluster.trino_pods.removals)), check=lambda n: n == 1)
    removal = cluster.trino_pods.removals[0]
    assert removal.state == NodeState.ACTIVE.value
    assert removal.killed == 1
    assert model.killed_queries == 1
    assert model.query(query.query_id).state is QueryState.FAILED
    assert len(model.workers()) == 1


async def test_spark_pods_are_workers_on_their_own_addresses(cluster: SandboxCluster) -> None:
    await eventually(lambda: _joined(cluster), check=lambda n: n == (2, 2))
    pool = cluster.spark.pool
    pods = sorted(
        cluster.kube.pods_of(STATEFULSETS, "spark", "spark-worker"), key=lambda p: p["metadata"]["name"]
    )
    ips = [p["status"]["podIP"] for p in pods]
    assert len(set(ips)) == 2
    assert sorted(w.host for w in pool.workers) == sorted(ips)
    async with aiohttp.ClientSession() as session:
        master = await _get_json(session, cluster.spark_master_url + "/json/")
        assert isinstance(master, dict)
        for row in master["workers"]:
            own = await _get_json(session, row["webuiaddress"] + "/json/")
            assert isinstance(own, dict)
            assert own["executors"] == []
        # Decommissioning the highest ordinal's host through the master: the idle worker leaves the pool.
        async with session.post(cluster.spark_master_url + "/workers/kill/", params={"host": ips[1]}) as resp:
            assert resp.status == 200
    assert [w.host for w in pool.workers] == [ips[0]]
    cluster.kube.scale(STATEFULSETS, "spark", "spark-worker", 0)
    await eventually(_async(lambda: len(cluster.spark_pods.removals)), check=lambda n: n == 2)
    states = {r.pod: r.state for r in cluster.spark_pods.removals}
    assert states == {"spark-worker-1": "LEFT", "spark-worker-0": ALIVE}
    assert all(r.tasks_lost == 0 for r in cluster.spark_pods.removals)


def _async(fn: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    async def probe() -> T:
        return fn()

    return probe


async def _joined(cluster: SandboxCluster) -> tuple[int, int]:
    return len(cluster.trino_pods.joined), len(cluster.spark_pods.joined)
