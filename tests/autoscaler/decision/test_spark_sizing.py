"""Spark executors from the backlog (core.spark_executors) and pool workers from executors
(autoscaler.decision.spark_sizing)."""

from __future__ import annotations

import pytest

from autoscaler.decision.spark_sizing import AppDemand, backlog_workers, pool_workers_needed
from core.spark_executors import executors_needed, max_executors_needed, tasks_per_executor

# Ported as data from apache/spark ExecutorAllocationManagerSuite, "executionAllocationRatio is correctly
# handled": one stage of 20 tasks, minExecutors 3, maxExecutors 15; the target after the ramp.
# (executor cores, allocation ratio, expected executors)
SPARK_ALLOCATION_RATIO_CASES = [
    # Half the executors full parallelism would take.
    (1, 0.5, 10),
    # 20/3 = 6.67 rounds up.
    (1, 1.0 / 3.0, 7),
    # Two tasks per executor: 20/3/2 = 3.33 rounds up.
    (2, 1.0 / 3.0, 4),
    # 20 × 0.385 = 7.7 rounds up.
    (1, 0.385, 8),
    # Would be 20, capped by maxExecutors.
    (1, 1.0, 15),
    # Would be 2, raised to minExecutors.
    (4, 1.0 / 3.0, 3),
]


@pytest.mark.parametrize(("cores", "ratio", "expected"), SPARK_ALLOCATION_RATIO_CASES)
def test_spark_allocation_ratio_cases(cores: int, ratio: float, expected: int) -> None:
    assert executors_needed(20, cores, 1, ratio, min_executors=3, max_executors=15) == expected


# maxNumExecutorsNeededPerResourceProfile values asserted along the speculation tests of the same suite
# (SPARK-30511, SPARK-41192), executor cores 4, ratio 1; running + pending tasks and pending speculative
# copies as the listener counts them at each assertion.
# (remaining tasks, pending speculative, expected max needed)
SPARK_MAX_NEEDED_CASES = [
    # 40 tasks submitted: 40 / 4.
    (40, 0, 10),
    # 30 of 40 finished: 10 running → 3.
    (10, 0, 3),
    # 10 running plus 10 speculative copies submitted → 20 / 4.
    (10, 10, 5),
    # 5 originals finished before their copies started: 5 running + 5 speculative pending → ceil(10/4).
    (5, 5, 3),
    # 4 originals and 10 copies running after 6 copies won: 14 in flight → 4.
    (14, 0, 4),
    # 2 running + 1 failed task pending again, 1 speculative copy pending: ceil(4/4) = 1, plus one executor
    # so the copy does not run beside its original (speculation locality).
    (3, 1, 2),
    # The copy started: nothing speculative pending, no extra executor.
    (4, 0, 1),
    # Nothing left in active stages.
    (0, 0, 0),
]


@pytest.mark.parametrize(("remaining", "speculative", "expected"), SPARK_MAX_NEEDED_CASES)
def test_spark_max_needed_with_speculation(remaining: int, speculative: int, expected: int) -> None:
    assert max_executors_needed(remaining, 4, pending_speculative=speculative) == expected


EXECUTORS_NEEDED_CASES = [
    # Full parallelism, one core per executor: one executor per task.
    (7, 1, 1, 1.0, 0, None, 7),
    # tasksPerExecutor = 4 // 1: 10 tasks → 3 executors.
    (10, 4, 1, 1.0, 0, None, 3),
    # task.cpus 2 on 5-core executors: 5 // 2 = 2 slots (integer division), 9 tasks → 5.
    (9, 5, 2, 1.0, 0, None, 5),
    # task.cpus 3 on 4-core executors: 1 slot each.
    (9, 4, 3, 1.0, 0, None, 9),
    # Binary floating point like the JVM's Double: 25 × 0.28 = 7.000000000000001 rounds up to 8.
    (25, 1, 1, 0.28, 0, None, 8),
    # No backlog, min executors hold.
    (0, 4, 1, 1.0, 2, None, 2),
    # No backlog, no floor: zero executors (Spark releases idle executors to minExecutors).
    (0, 4, 1, 1.0, 0, None, 0),
    # Clamped by maxExecutors.
    (1000, 4, 1, 1.0, 0, 50, 50),
]


@pytest.mark.parametrize(
    ("remaining", "cores", "cpus", "ratio", "lo", "hi", "expected"), EXECUTORS_NEEDED_CASES
)
def test_executors_needed_table(
    remaining: int, cores: int, cpus: int, ratio: float, lo: int, hi: int | None, expected: int
) -> None:
    assert executors_needed(remaining, cores, cpus, ratio, lo, hi) == expected


def test_unschedulable_task_sets_add_executors_beyond_the_current_ones() -> None:
    # SPARK-31418 behaviour: 1 running task would need 1 executor, but a task set is unschedulable on the
    # 1 executor we have (excluded), so one more is asked for.
    assert max_executors_needed(1, 1, unschedulable_task_sets=1, current_executors=1) == 2
    assert max_executors_needed(12, 1, unschedulable_task_sets=1, current_executors=1) == 12


def test_spark_settings_errors() -> None:
    with pytest.raises(ValueError, match="must not be less than task cpus"):
        tasks_per_executor(2, 3)
    with pytest.raises(ValueError, match="executorAllocationRatio"):
        executors_needed(10, 1, allocation_ratio=1.5)
    with pytest.raises(ValueError, match="must be <= max executors"):
        executors_needed(10, 1, min_executors=5, max_executors=2)
    with pytest.raises(ValueError, match=">= 0"):
        executors_needed(-1, 1)


# --------------------------------------------------------------------------------------------------------
# Pool workers
# --------------------------------------------------------------------------------------------------------

POOL_CASES = [
    # One app, 4-core executors on 8-core workers: 40 tasks → 10 executors → 5 workers.
    ("one-app", [AppDemand("a", 40)], 8, 4, None, 0, None, 5, None),
    # Two apps sum: 10 + 3 executors of 4 cores on 8-core workers → 7 workers.
    ("two-apps", [AppDemand("a", 40), AppDemand("b", 9)], 8, 4, None, 0, None, 7, None),
    # 3-core executors on 4-core workers: one per worker (an executor never spans workers).
    ("fragmented", [AppDemand("a", 12, executor_cores=3)], 4, 4, None, 0, None, 4, None),
    # Mixed sizes pack first-fit decreasing: 2 × 6-core + 2 × 2-core fill two 8-core workers exactly.
    (
        "mixed",
        [AppDemand("big", 12, executor_cores=6), AppDemand("small", 4, executor_cores=2)],
        8,
        4,
        None,
        0,
        None,
        2,
        None,
    ),
    # Executors per worker pinned (memory-bound pools): 10 executors at 3 per worker → 4.
    ("pinned", [AppDemand("a", 40)], 16, 4, 3, 0, None, 4, None),
    # No work: the floor holds.
    ("idle-floor", [AppDemand("a", 0)], 8, 4, None, 1, None, 1, "minWorkers"),
    # No work, no floor: zero workers.
    ("idle", [], 8, 4, None, 0, None, 0, None),
    # Per-app max executors and ratio: ceil(100 × 0.5 / 4) = 13, capped at 8 → 4 workers of 2 executors.
    ("app-caps", [AppDemand("a", 100, allocation_ratio=0.5, max_executors=8)], 8, 4, None, 0, None, 4, None),
    # Pool max clamps and says so.
    ("pool-max", [AppDemand("a", 400)], 8, 4, None, 0, 20, 20, "maxWorkers"),
    # Next-wave tasks count only when the app opts in.
    (
        "next-wave",
        [AppDemand("a", 8, next_wave_tasks=16, include_next_wave=True)],
        8,
        4,
        None,
        0,
        None,
        3,
        None,
    ),
    ("next-wave-off", [AppDemand("a", 8, next_wave_tasks=16)], 8, 4, None, 0, None, 1, None),
]


@pytest.mark.parametrize(
    ("apps", "cpw", "ec", "epw", "lo", "hi", "workers", "clamp"),
    [c[1:] for c in POOL_CASES],
    ids=[c[0] for c in POOL_CASES],
)
def test_pool_workers_table(
    apps: list[AppDemand],
    cpw: int,
    ec: int,
    epw: int | None,
    lo: int,
    hi: int | None,
    workers: int,
    clamp: str | None,
) -> None:
    sizing = pool_workers_needed(apps, cpw, ec, epw, lo, hi)
    assert sizing.workers == workers
    assert sizing.clamped_by == clamp
    if clamp is not None:
        assert clamp in sizing.reason
    for app in sizing.apps:
        assert f"{app.app_id}: {app.executors}" in sizing.reason


def test_pool_totals_and_errors() -> None:
    sizing = pool_workers_needed([AppDemand("a", 40), AppDemand("b", 9, executor_cores=2)], 8, 4)
    assert (sizing.executors, sizing.cores) == (10 + 5, 10 * 4 + 5 * 2)
    with pytest.raises(ValueError, match="does not fit a worker"):
        pool_workers_needed([AppDemand("a", 1, executor_cores=16)], 8, 4)
    with pytest.raises(ValueError, match="not a valid range"):
        pool_workers_needed([], 8, 4, min_workers=3, max_workers=2)


def test_backlog_counts_task_time_cpus_and_next_wave() -> None:
    apps = (
        AppDemand("a", 10, task_seconds=30.0, task_cpus=2),  # 600 core-s
        AppDemand("b", 4, next_wave_tasks=6, task_seconds=10.0),  # 100 core-s
    )
    sized = backlog_workers(
        apps,
        ready_workers=1,
        worker_cores=4,
        startup_seconds=50.0,
        backlog_seconds=25.0,
        fallback_task_seconds=None,
    )
    assert sized is not None
    # 700 core-s, 200 done by the ready worker while others start; 500 in 25 s → 20 cores → 5 workers.
    assert (sized.work_core_seconds, sized.left_core_seconds, sized.workers) == (700.0, 500.0, 5)


def test_backlog_the_ready_workers_finish_alone_needs_no_new_worker() -> None:
    sized = backlog_workers(
        (AppDemand("a", 8, task_seconds=5.0),),
        ready_workers=2,
        worker_cores=4,
        startup_seconds=60.0,
        backlog_seconds=30.0,
        fallback_task_seconds=None,
    )
    assert sized is not None
    assert sized.workers == 0


def test_backlog_unknown_task_time_without_fallback_is_none() -> None:
    apps = (AppDemand("a", 8, task_seconds=5.0), AppDemand("b", 3))
    common = {"ready_workers": 0, "worker_cores": 4, "startup_seconds": 0.0, "backlog_seconds": 10.0}
    assert backlog_workers(apps, fallback_task_seconds=None, **common) is None
    # 8 × 5 + 3 × 20 = 100 core-s in 10 s → 10 cores → 3 workers.
    sized = backlog_workers(apps, fallback_task_seconds=20.0, **common)
    assert sized is not None
    assert sized.workers == 3


@pytest.mark.parametrize(
    ("cores", "seconds", "message"), [(0, 10.0, "cores per worker"), (4, 0.0, "backlog seconds")]
)
def test_backlog_refuses_bad_settings(cores: int, seconds: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        backlog_workers(
            (),
            ready_workers=0,
            worker_cores=cores,
            startup_seconds=0.0,
            backlog_seconds=seconds,
            fallback_task_seconds=None,
        )
