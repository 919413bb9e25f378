"""The Spark source against a real Spark (pyspark with the machine's Java), bracketed by Spark itself.

A stage's remaining task count only goes down, so a reading of the source taken between two readings of
Spark's own status tracker must lie between them. The same holds for the executors the source says are
needed, against Spark's formula on the tracker readings, and for Spark's own
``ExecutorAllocationManager.numberMaxNeededExecutors`` gauge read around it.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapter.sources.spark import SparkSource
from tests.helpers.spark import (
    BackgroundJob,
    TrackerReading,
    by_app,
    free_port,
    java_available,
    prometheus_gauge,
    settings,
    spark_session,
    tracker_reading,
    wait_until,
)

pytest.importorskip("pyspark")
pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(not java_available(), reason="needs Java"),
    pytest.mark.timeout(240),
]


# Spark's allocation manager and its status store listen on separate queues of the listener bus, so
# one can be a few milliseconds behind the other. The gauge is therefore bracketed by tracker readings
# taken this long before and after it, while the source (read from the store) is bracketed tightly.
QUEUE_SLACK_SECONDS = 0.05


@dataclass(frozen=True)
class Bracket:
    before: TrackerReading  # just before the source
    figures: dict[str, float]
    after: TrackerReading  # just after the source
    read_at: float  # time.monotonic() just after the source
    spark_needed: tuple[float, float] | None = None  # Spark's gauge, read around the source
    gauge_before: TrackerReading | None = None  # QUEUE_SLACK_SECONDS before the first gauge read
    gauge_after: TrackerReading | None = None  # QUEUE_SLACK_SECONDS after the second gauge read


async def gauge(url: str | None) -> float | None:
    return await prometheus_gauge(url, "numberMaxNeededExecutors_Value") if url else None


async def bracketed_readings(
    sc: Any, source: SparkSource, job: BackgroundJob, *, want: int, gauge_url: str | None = None
) -> list[Bracket]:
    """Read [tracker, gauge], tracker, source, tracker, [gauge, tracker] while the job's stage runs."""
    app_id = sc.applicationId
    out: list[Bracket] = []
    assert await asyncio.to_thread(wait_until, lambda: tracker_reading(sc) is not None, 60)
    while job.alive() and len(out) < want:
        outer_before = tracker_reading(sc) if gauge_url else None
        if gauge_url:
            await asyncio.sleep(QUEUE_SLACK_SECONDS)
        g1 = await gauge(gauge_url)
        before = tracker_reading(sc)
        samples = await source.collect(0.0)
        read_at = time.monotonic()
        after = tracker_reading(sc)
        g2 = await gauge(gauge_url)
        if gauge_url:
            await asyncio.sleep(QUEUE_SLACK_SECONDS)
        outer_after = tracker_reading(sc) if gauge_url else None
        figures = by_app(samples).get(app_id)
        readings = [r for r in (outer_before, before, after, outer_after) if r is not None]
        if figures is None or len(readings) != (4 if gauge_url else 2):
            continue
        if len({r.stage_id for r in readings}) != 1:
            continue
        gauges = (g1, g2) if g1 is not None and g2 is not None else None
        out.append(Bracket(before, figures, after, read_at, gauges, outer_before, outer_after))
        await asyncio.sleep(0.2)
    return out


TASK_SLEEP = 0.2


@pytest.fixture
def spark_tmp(tmp_path: Path) -> Path:
    (tmp_path / "work").mkdir()
    return tmp_path


async def test_local_mode_figures_lie_between_spark_readings(spark_tmp: Path) -> None:
    port = free_port()
    conf = {"spark.ui.port": str(port), "spark.ui.liveUpdate.period": "0"}
    with spark_session("local[2]", "qs-local", conf, spark_tmp) as spark:
        sc = spark.sparkContext
        app_id = sc.applicationId
        source = SparkSource(settings(driver_urls=[f"http://127.0.0.1:{port}"], timeout_seconds=10))
        job_started = time.monotonic()
        job = BackgroundJob(sc, tasks=70, task_seconds=TASK_SLEEP, group="qs-local").start()
        try:
            brackets = await bracketed_readings(sc, source, job, want=40)
            names = {s.labels["app"]: s.labels["app_name"] for s in await source.collect(0.0)}
        finally:
            await source.close()
            job.stop()
    assert len(brackets) >= 5, f"only {len(brackets)} readings while the job ran"
    assert names == {app_id: "qs-local"}
    timed = 0
    for b in brackets:
        f = b.figures
        remaining = f["spark_remaining_tasks"]
        assert b.after.remaining <= remaining <= b.before.remaining, b
        assert b.before.num_tasks == 70
        # local[2]: the driver is the one executor, with 2 slots.
        assert (f["spark_task_slots"], f["spark_executors"]) == (2, 1)
        assert 0 <= f["spark_running_tasks"] <= remaining
        assert f["spark_pending_tasks"] == max(0, remaining - f["spark_running_tasks"])
        assert f["spark_next_wave_tasks"] == 0
        # No dynamic allocation in local mode: ceil(remaining / 1), unclamped.
        assert f["spark_executors_needed"] == remaining
        # Finished counts only go up, so the tracker says whether the source saw a finished task.
        if b.after.completed == 0:
            assert "spark_task_seconds" not in f, b
        if b.before.completed > 0:
            timed += 1
            task_seconds = f["spark_task_seconds"]
            # Each task sleeps TASK_SLEEP inside its run time (Spark truncates it to whole milliseconds),
            # and none can have run longer than the job has.
            assert TASK_SLEEP - 0.001 <= task_seconds < b.read_at - job_started, b
    assert timed >= 3, f"only {timed} readings after a task had finished"
    # The job moved while we watched: the readings are not all the same.
    assert len({b.figures["spark_remaining_tasks"] for b in brackets}) > 1


RATIO = 0.5
MAX_EXECUTORS = 20


def spark_formula(remaining: int) -> int:
    """ExecutorAllocationManager: ceil(remaining x ratio / tasksPerExecutor) with 1-core executors."""
    return math.ceil(remaining * RATIO / 1)


async def test_executors_needed_follows_dynamic_allocation(spark_tmp: Path) -> None:
    port = free_port()
    conf = {
        "spark.ui.port": str(port),
        "spark.ui.liveUpdate.period": "0",
        "spark.executor.memory": "512m",
        "spark.executor.cores": "1",
        "spark.dynamicAllocation.enabled": "true",
        "spark.dynamicAllocation.shuffleTracking.enabled": "true",
        "spark.dynamicAllocation.minExecutors": "0",
        "spark.dynamicAllocation.initialExecutors": "2",
        "spark.dynamicAllocation.maxExecutors": str(MAX_EXECUTORS),
        "spark.dynamicAllocation.executorAllocationRatio": str(RATIO),
        "spark.metrics.namespace": "qs",
        "spark.metrics.conf.*.sink.prometheusServlet.class": "org.apache.spark.metrics.sink.PrometheusServlet",
        "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus",
    }
    base = f"http://127.0.0.1:{port}"
    with spark_session("local-cluster[2,1,1024]", "qs-dynamic", conf, spark_tmp) as spark:
        sc = spark.sparkContext
        source = SparkSource(settings(driver_urls=[base], timeout_seconds=10))
        job = BackgroundJob(sc, tasks=100, task_seconds=0.2, group="qs-dynamic").start()
        try:
            brackets = await bracketed_readings(
                sc, source, job, want=60, gauge_url=base + "/metrics/prometheus/"
            )
        finally:
            await source.close()
            job.stop()
    assert len(brackets) >= 5, f"only {len(brackets)} readings while the job ran"
    clamped = stable = 0
    for b in brackets:
        f = b.figures
        needed = f["spark_executors_needed"]
        high = min(MAX_EXECUTORS, spark_formula(b.before.remaining))
        low = min(MAX_EXECUTORS, spark_formula(b.after.remaining))
        assert low <= needed <= high, b
        assert b.after.remaining <= f["spark_remaining_tasks"] <= b.before.remaining, b
        assert f["spark_executors"] <= 2, b
        assert f["spark_task_slots"] == f["spark_executors"], b  # one core, one slot each
        clamped += spark_formula(int(f["spark_remaining_tasks"])) > MAX_EXECUTORS
        # Spark's own figure, unclamped, read around the source.
        assert b.spark_needed is not None
        assert b.gauge_before is not None
        assert b.gauge_after is not None
        g1, g2 = b.spark_needed
        outer_high = spark_formula(b.gauge_before.remaining)
        assert spark_formula(b.gauge_after.remaining) <= g2 <= g1 <= outer_high, b
        if b.gauge_before.remaining == b.gauge_after.remaining and g1 == g2:
            # Nothing moved while we read: the source says exactly what Spark aims for.
            stable += 1
            assert needed == min(MAX_EXECUTORS, g1), b
    assert stable >= 3, f"only {stable} readings where nothing moved"
    assert clamped > 0, "no reading saw the maxExecutors clamp bind"
    assert len({b.figures["spark_executors_needed"] for b in brackets}) > 1
