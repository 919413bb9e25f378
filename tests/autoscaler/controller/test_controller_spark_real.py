"""The Spark pool actuator against a real Spark standalone master and real workers (pyspark's jars).

The StatefulSet lives in the Kubernetes API sandbox; each of its pods is a real worker process on its own
loopback address (the pod IP). A real application with dynamic allocation runs a job whose backlog the
adapter's Spark source reads; the engine decides on it and the actuator acts: up while the backlog
exceeds the pool, down as it drains, through the master's decommission or by waiting for idle workers.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from adapter.sources.spark import SparkSource
from autoscaler.controller.targets.spark_pool.actuator import SparkPoolActuator
from autoscaler.controller.targets.spark_pool.master_api import SparkMasterClient
from tests.helpers.spark import BackgroundJob, free_port, java_available, settings, spark_session, wait_until
from tests.helpers.spark_pool import (
    NAMESPACE,
    SET,
    Pipeline,
    RealCluster,
    RealWorld,
    get_json,
    kube_world,
    master_workers,
    pool_policy,
    validate_written,
)

pytest.importorskip("pyspark")
pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(not java_available(), reason="needs Java"),
    pytest.mark.timeout(240),
]

# 36 s of work on one 1-core worker: long enough that the added worker's JVM and its executor's register
# while tasks remain, even on a loaded machine (at 18 s the job sometimes ended first and the test failed).
TASKS = 24
TASK_SECONDS = 1.5


@dataclass
class RealSpark:
    cluster: RealCluster
    sc: Any
    ui: str


@pytest.fixture(scope="module")
def real_spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealSpark]:
    """A master with decommissioning on and one application with dynamic allocation; workers come and go
    with each test's pods."""
    tmp = tmp_path_factory.mktemp("spark-pool")
    (tmp / "work").mkdir()
    cluster = RealCluster(tmp, decommission=True)
    cluster.start_master()
    try:

        def master_up() -> bool:
            try:
                with urllib.request.urlopen(cluster.master_url + "/json/", timeout=2) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        assert wait_until(master_up, 60, 0.5), (tmp / "master.log").read_text()[-2000:]
        port = free_port()
        conf = {
            "spark.ui.port": str(port),
            "spark.ui.liveUpdate.period": "0",
            "spark.executor.cores": "1",
            "spark.executor.memory": "512m",
            "spark.dynamicAllocation.enabled": "true",
            "spark.dynamicAllocation.shuffleTracking.enabled": "true",
            "spark.dynamicAllocation.minExecutors": "0",
            "spark.dynamicAllocation.executorIdleTimeout": "2s",
            "spark.decommission.enabled": "true",
        }
        with spark_session(cluster.spark_url, "qs-pool", conf, tmp) as spark:
            yield RealSpark(cluster, spark.sparkContext, f"http://127.0.0.1:{port}")
    finally:
        cluster.stop()


async def alive(cluster: RealCluster, host: str) -> bool:
    return any(w["host"] == host and w["state"] == "ALIVE" for w in await master_workers(cluster.master_url))


async def run_backlog(real: RealSpark, world: RealWorld, decommission: bool, group: str) -> Pipeline:
    """Start one worker, run the job, and pass the controller until the pool is back to one worker."""
    try:
        return await _run_backlog(real, world, decommission, group)
    finally:
        await world.close()


async def _run_backlog(real: RealSpark, world: RealWorld, decommission: bool, group: str) -> Pipeline:
    async with kube_world(1, world.on_added, world.on_removed, bind=world.bind) as (sandbox, ops):
        first = f"127.0.0.{world.base}"
        deadline = time.monotonic() + 60
        while not await alive(real.cluster, first):
            assert time.monotonic() < deadline, "the first worker did not register"
            await asyncio.sleep(0.25)
        policy = pool_policy(master_url=real.cluster.master_url, decommission=decommission)
        source = SparkSource(
            settings("etl", master=real.cluster.master_url, driver_urls=[real.ui], timeout_seconds=10)
        )
        actuator = SparkPoolActuator(policy, ops, master=SparkMasterClient(real.cluster.master_url))
        pipeline = Pipeline(policy, source, actuator)
        # An executor on the first worker before the backlog arrives, as in a pool already at work.
        assert await asyncio.to_thread(lambda: real.sc.parallelize([1], 1).count()) == 1
        job = BackgroundJob(real.sc, TASKS, TASK_SECONDS, group).start()
        try:
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                await pipeline.step(time.time())
                await sandbox.settle_hooks()
                if not job.alive() and world.removals and pipeline.passes[-1].target.replicas == 1:
                    break
                await asyncio.sleep(0.5)
            job.stop()
        finally:
            await actuator.close()
            await source.close()
        obj = sandbox.get_object("apps", "v1", "statefulsets", NAMESPACE, SET)
        assert obj is not None
        assert obj["spec"]["replicas"] == 1
    assert job.error is None
    assert job.result == TASKS
    for done in pipeline.passes:
        validate_written(done.outcome.written)
    return pipeline


async def executors_by_host(real: RealSpark) -> dict[str, tuple[int, int]]:
    """(completed, failed) tasks per executor host of the application."""
    rows = await get_json(f"{real.ui}/api/v1/applications/{real.sc.applicationId}/allexecutors")
    out: dict[str, tuple[int, int]] = {}
    for row in rows:
        if row["id"] == "driver":
            continue
        host = row["hostPort"].rsplit(":", 1)[0]
        done, failed = out.get(host, (0, 0))
        out[host] = (done + row["completedTasks"], failed + row["failedTasks"])
    return out


def check_followed_backlog(pipeline: Pipeline) -> None:
    # Up while the backlog exceeded one worker, down once it drained: never any other write.
    assert pipeline.written_replicas() == [2, 1]
    up = next(p for p in pipeline.passes if p.outcome.replicas == 2)
    assert up.decision.proposals[0].value is not None
    assert up.decision.proposals[0].value >= 2
    ended = [e.outcome for p in pipeline.passes for e in p.outcome.drains_ended]
    assert ended == ["completed"]


async def test_decommission_path(real_spark: RealSpark) -> None:
    world = RealWorld(real_spark.cluster, base=20)
    pipeline = await run_backlog(real_spark, world, decommission=True, group="decommission")
    check_followed_backlog(pipeline)
    # The leaver was decommissioned on the master and ran no executor any more when its pod went.
    (removal,) = world.removals
    assert (removal.pod, removal.host) == (f"{SET}-1", "127.0.0.21")
    assert removal.state == "DECOMMISSIONED"
    assert removal.executors == 0
    # The master still counts the executor that left (Spark drops its exit); the worker itself told.
    (removed,) = [p for p in pipeline.passes if p.outcome.replicas == 1]
    assert "spark-worker-1 (decommissioned, the worker runs no executor) may go" in removed.outcome.detail
    used = await executors_by_host(real_spark)
    assert used["127.0.0.21"][0] > 0, f"the added worker ran no task: {used}"
    assert sum(failed for _, failed in used.values()) == 0


async def test_without_decommission_waits_for_idle(real_spark: RealSpark) -> None:
    world = RealWorld(real_spark.cluster, base=30)
    pipeline = await run_backlog(real_spark, world, decommission=False, group="idle")
    check_followed_backlog(pipeline)
    (removal,) = world.removals
    assert (removal.pod, removal.host) == (f"{SET}-1", "127.0.0.31")
    # Never decommissioned: it went when the master showed it idle (dynamic allocation let it go).
    assert removal.state == "ALIVE"
    assert removal.executors == 0
    (removed,) = [p for p in pipeline.passes if p.outcome.replicas == 1]
    assert "spark-worker-1 (idle) may go" in removed.outcome.detail
    used = await executors_by_host(real_spark)
    assert used["127.0.0.31"][0] > 0, f"the added worker ran no task: {used}"
    assert sum(failed for host, (_, failed) in used.items() if host.startswith("127.0.0.3")) == 0
