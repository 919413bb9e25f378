"""The Spark standalone pool model: conservation of work, placement, dynamic allocation, scale-down modes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from autoscaler.sim.spark import (
    ABRUPT,
    ACTIVE,
    ALIVE,
    DECOMMISSION,
    DECOMMISSIONED,
    RETIRING,
    STARTING,
    WAIT_IDLE,
    DynamicAllocation,
    PoolConfig,
    PoolModel,
    PoolScaleDown,
    PoolView,
)
from autoscaler.sim.spark_load import (
    AppShape,
    SparkLoad,
    from_apps,
    from_apps_csv,
    from_trace_csv,
    unconstrained_demand,
)
from autoscaler.sim.spark_run import simulate_pool

TRACE = "/work/shared/data/traces/crane-input0.csv"


class Scripted:
    """A pool policy that sets a planned worker count from a given time on."""

    name = "scripted"
    period_seconds = 5.0

    def __init__(self, plan: Sequence[tuple[float, int]], scale_down: PoolScaleDown = DECOMMISSION) -> None:
        self.plan = sorted(plan)
        self.scale_down: PoolScaleDown = scale_down

    def desired(self, now: float, view: PoolView) -> int:
        count = self.plan[0][1]
        for at, n in self.plan:
            if now + 1e-9 >= at:
                count = n
        return count


def _day_load(seed: int = 5, days: float = 0.25, rate: float = 0.01) -> SparkLoad:
    return from_trace_csv(TRACE, seed=seed, mean_rate=rate, duration=days * 86400)


def _check_state(pool: PoolModel) -> None:
    """Structural invariants that must hold between any two events."""
    cores = pool.config.cores_per_worker
    for w in pool.workers.values():
        held = sum(e.cores for e in w.executors)
        assert held <= cores
        assert w.free == cores - held
        if w.state == STARTING:
            assert not w.executors
        busy = 0
        for e in w.executors:
            assert 0 <= e.running <= e.slots
            assert len(e.tasks) == e.running
            if e.running:
                assert e.state in (ACTIVE, RETIRING)
                assert w.state in (ALIVE, DECOMMISSIONED)
            busy += e.running
        assert w.busy == busy * pool.config.task_cpus
    assert pool.running == sum(len(e.tasks) for w in pool.workers.values() for e in w.executors)


def _check_tasks(pool: PoolModel, load: SparkLoad) -> None:
    """Every task ran once to completion for exactly its duration, on a worker that was ALIVE throughout."""
    start = np.asarray(pool.task_start)
    end = np.asarray(pool.task_end)
    where = np.asarray(pool.task_worker)
    assert not np.isnan(start).any()
    assert not np.isnan(end).any()
    np.testing.assert_allclose(end - start, load.task_seconds, rtol=0, atol=1e-6)
    ready = np.asarray(pool.worker_ready)[where]
    left = np.asarray(pool.worker_left)[where]
    assert np.all(ready <= start + 1e-9)
    assert np.all(np.isnan(left) | (end <= left + 1e-9))
    # A stage starts only when the previous stage of its application has ended.
    stage = load.task_stage()
    first_start = np.full(load.stage_count, np.inf)
    np.minimum.at(first_start, stage, start)
    last_end = np.full(load.stage_count, -np.inf)
    np.maximum.at(last_end, stage, end)
    app_of = load.stage_app()
    same_app = app_of[1:] == app_of[:-1]
    assert np.all(first_start[1:][same_app] >= last_end[:-1][same_app] - 1e-9)


def test_work_is_conserved_and_placed_only_on_alive_workers_under_scaling() -> None:
    load = _day_load()
    config = PoolConfig(max_workers=12, startup_seconds=45.0)
    pool = PoolModel(load, config)
    pool.set_replicas(2, 0.0, DECOMMISSION, initial=True)
    modes: tuple[PoolScaleDown, ...] = (DECOMMISSION, ABRUPT, WAIT_IDLE)
    sizes = (6, 2, 9, 3, 12, 1)
    t = 0.0
    k = 0
    while t < load.duration:
        t += 7.0
        pool.advance(t)
        _check_state(pool)
        if k % 40 == 0:
            # Up and down, each way down in another removal mode.
            i = k // 40
            pool.set_replicas(sizes[i % len(sizes)], t, modes[i % len(modes)])
            _check_state(pool)
        k += 1
    pool.set_replicas(12, t, DECOMMISSION)
    pool.advance(t + 20_000)
    _check_state(pool)
    assert pool.killed > 0  # the abrupt removals did kill work ...
    assert pool.completed == load.task_count  # ... and every task still finished once
    assert pool.apps_done == load.app_count
    _check_tasks(pool, load)


def _burst(tasks: int, seconds: float, at: float = 0.0, duration: float = 2000.0) -> SparkLoad:
    return from_apps([(at, [[seconds] * tasks])], duration)


def _executors(pool: PoolModel) -> int:
    return sum(len(w.executors) for w in pool.workers.values())


def test_dynamic_allocation_ramps_one_two_four_after_the_backlog_timeouts() -> None:
    pool = PoolModel(_burst(100, 1000.0), PoolConfig(max_workers=50, executor_startup_seconds=0.0))
    pool.set_replicas(50, 0.0, DECOMMISSION, initial=True)
    seen = []
    for t in (0.5, 0.999, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0):
        pool.advance(t)
        seen.append((t, _executors(pool), pool.running))
    assert seen == [
        (0.5, 0, 0),
        (0.999, 0, 0),
        (1.0, 1, 1),  # schedulerBacklogTimeout: the first round adds 1
        (1.5, 1, 1),
        (2.0, 3, 3),  # then every sustainedSchedulerBacklogTimeout: +2, +4, +8, ...
        (3.0, 7, 7),
        (4.0, 15, 15),
        (5.0, 31, 31),
        (6.0, 63, 63),
        (7.0, 100, 100),  # never above maxNeeded
        (8.0, 100, 100),
    ]


def test_the_ramp_respects_max_executors_and_executor_start_up() -> None:
    alloc = DynamicAllocation(max_executors=10)
    pool = PoolModel(
        _burst(100, 1000.0), PoolConfig(max_workers=50, executor_startup_seconds=5.0, allocation=alloc)
    )
    pool.set_replicas(50, 0.0, DECOMMISSION, initial=True)
    pool.advance(5.999)
    # Targets 1, 3, 7, 10 are launched by t=4 but none registered yet: no task runs.
    assert (_executors(pool), pool.running) == (10, 0)
    pool.advance(6.0)
    assert pool.running == 1  # the executor launched at t=1 registered at t=6
    pool.advance(9.0)
    assert pool.running == 10
    pool.advance(500.0)
    assert _executors(pool) == 10


def test_idle_executors_leave_after_the_idle_timeout_down_to_the_need() -> None:
    # Eight executors from the start run stage 0; stage 1 needs one, so seven idle out 60 s later.
    load = from_apps([(0.0, [[10.0] * 8, [200.0]])], 1000.0)
    alloc = DynamicAllocation(initial_executors=8)
    pool = PoolModel(load, PoolConfig(max_workers=4, executor_startup_seconds=0.0, allocation=alloc))
    pool.set_replicas(4, 0.0, DECOMMISSION, initial=True)
    pool.advance(69.999)
    assert _executors(pool) == 8
    pool.advance(70.0)
    assert _executors(pool) == 1
    pool.advance(300.0)
    assert pool.apps_done == 1
    assert _executors(pool) == 0


def test_min_executors_are_kept_through_idleness() -> None:
    load = from_apps([(0.0, [[10.0] * 8, [200.0]])], 1000.0)
    alloc = DynamicAllocation(min_executors=3, initial_executors=8)
    pool = PoolModel(load, PoolConfig(max_workers=4, executor_startup_seconds=0.0, allocation=alloc))
    pool.set_replicas(4, 0.0, DECOMMISSION, initial=True)
    pool.advance(100.0)
    assert _executors(pool) == 3


def test_decommission_kills_nothing_and_bills_workers_until_their_tasks_end() -> None:
    load = _burst(16, 100.0, duration=500.0)
    config = PoolConfig(
        max_workers=4, executor_startup_seconds=0.0, allocation=DynamicAllocation(initial_executors=16)
    )
    pool = PoolModel(load, config)
    pool.set_replicas(4, 0.0, DECOMMISSION, initial=True)
    pool.advance(30.0)
    assert pool.running == 16
    pool.set_replicas(1, 30.0, DECOMMISSION)
    assert pool.member_workers() == 1
    assert pool.billed_workers() == 4
    pool.advance(99.0)
    assert pool.running == 16
    assert pool.billed_workers() == 4
    pool.advance(100.0)
    assert pool.killed == 0
    assert pool.completed == 16
    # Three workers left exactly when their last task ended.
    assert pool.worker_left[1:] == [100.0, 100.0, 100.0]
    assert pool.finish(500.0) == pytest.approx(500.0 + 3 * 100.0)


def test_decommissioned_workers_take_no_new_tasks_and_replacements_launch_elsewhere() -> None:
    load = from_apps([(0.0, [[100.0] * 8 + [10.0] * 8])], 2000.0)
    alloc = DynamicAllocation(initial_executors=16)
    pool = PoolModel(load, PoolConfig(max_workers=6, executor_startup_seconds=0.0, allocation=alloc))
    pool.set_replicas(4, 0.0, DECOMMISSION, initial=True)
    pool.advance(1.0)
    pool.set_replicas(6, 1.0, DECOMMISSION)  # two more start (45 s)
    pool.set_replicas(2, 1.0, DECOMMISSION)  # the two starting ones go, then two ALIVE ones decommission
    pool.advance(2000.0)
    assert pool.killed == 0
    assert pool.completed == 16
    decommissioned = {2, 3}
    start = np.asarray(pool.task_start)
    for task, wid in enumerate(pool.task_worker):
        if wid in decommissioned:
            assert start[task] < 1.0  # only what ran before the decommission


def test_abrupt_removal_kills_the_running_tasks_and_reruns_them() -> None:
    load = _burst(16, 100.0, duration=1000.0)
    config = PoolConfig(
        max_workers=4, executor_startup_seconds=0.0, allocation=DynamicAllocation(initial_executors=16)
    )
    pool = PoolModel(load, config)
    pool.set_replicas(4, 0.0, ABRUPT, initial=True)
    pool.advance(30.0)
    pool.set_replicas(2, 30.0, ABRUPT)
    assert pool.killed == 8
    assert pool.billed_workers() == 2
    assert pool.running == 8
    assert pool.pending == 8
    pool.advance(1000.0)
    assert pool.completed == 16
    end = np.asarray(pool.task_end)
    np.testing.assert_allclose(np.sort(end), [100.0] * 8 + [200.0] * 8)
    # The reruns waited from the stage's submission at 0 until they restarted at 100.
    assert sorted(pool.started_waits().tolist()) == [0.0] * 8 + [100.0] * 8


def test_wait_idle_removes_only_workers_without_executors_from_the_top() -> None:
    load = from_apps([(0.0, [[300.0]]), (0.0, [[10.0] * 8])], 2000.0)
    config = PoolConfig(
        max_workers=4, executor_startup_seconds=0.0, allocation=DynamicAllocation(initial_executors=1)
    )
    pool = PoolModel(load, config)
    pool.set_replicas(4, 0.0, WAIT_IDLE, initial=True)
    pool.advance(20.0)
    busy = {w.wid for w in pool.workers.values() if w.executors}
    pool.set_replicas(1, 20.0, WAIT_IDLE)
    # Workers are removed from the highest ordinal down until one holds an executor.
    kept = [w.wid for w in pool.members]
    assert kept == list(range(max(busy) + 1))
    assert pool.replicas == len(kept)
    assert pool.killed == 0
    pool.advance(400.0)
    pool.set_replicas(1, 400.0, WAIT_IDLE)
    assert pool.replicas == 1
    assert pool.killed == 0


def test_an_application_without_cores_waits_fifo_on_the_master() -> None:
    load = from_apps([(0.0, [[100.0] * 10]), (2.0, [[5.0] * 2])], 1000.0)
    pool = PoolModel(load, PoolConfig(max_workers=1, executor_startup_seconds=0.0))
    pool.set_replicas(1, 0.0, DECOMMISSION, initial=True)
    pool.advance(50.0)
    view = pool.view(50.0)
    assert view.waiting_apps == 1
    assert [a.waiting for a in view.apps] == [False, True]
    assert view.cores_used == 4
    assert view.busy_fraction == 1.0
    pool.advance(1000.0)
    assert pool.apps_done == 2
    # The second application got cores only when the first one's executors were released.
    assert min(pool.task_start[10:]) >= 100.0


def test_a_new_worker_runs_nothing_before_its_startup_delay() -> None:
    load = _burst(8, 500.0)
    pool = PoolModel(load, PoolConfig(max_workers=2, startup_seconds=45.0, executor_startup_seconds=0.0))
    pool.set_replicas(1, 0.0, DECOMMISSION, initial=True)
    pool.set_replicas(2, 0.0, DECOMMISSION)
    pool.advance(44.999)
    assert pool.running == 4
    assert pool.view(44.999).ready_workers == 1
    pool.advance(45.0)
    assert pool.running == 8
    # The ramp (targets 1, 3, 7) fills the first worker's 4 cores by t=3; the rest waits for the second.
    assert sorted(pool.task_start) == [1.0, 2.0, 2.0, 3.0, 45.0, 45.0, 45.0, 45.0]


def test_same_seed_same_result_other_seed_other_load() -> None:
    config = PoolConfig(max_workers=8)
    runs = [
        simulate_pool(_day_load(seed), Scripted([(0.0, 3), (3600.0, 6), (9000.0, 2)]), config)
        for seed in (11, 11, 12)
    ]
    a, b, c = runs
    assert a.worker_hours == b.worker_hours
    assert np.array_equal(a.waits, b.waits)
    assert a.summary() == b.summary()
    assert not np.array_equal(a.waits, c.waits)


def test_simulated_figures_of_a_static_pool() -> None:
    load = _day_load(days=0.2)
    config = PoolConfig(max_workers=6)
    result = simulate_pool(load, Scripted([(0.0, 6)]), config)
    assert result.worker_hours == pytest.approx(6 * load.duration / 3600)
    assert result.scale_actions == 0
    assert result.killed == 0
    assert result.apps_arrived == load.app_count
    assert result.completed + result.running_at_end + result.queued_at_end == result.arrived
    assert 0 <= result.queue_wait_p50_s <= result.queue_wait_p95_s <= result.queue_wait_p99_s
    assert result.slo_misses >= int(np.count_nonzero(result.waits > config.slo_seconds)) > 0
    assert len(result.t) == len(result.billed)
    assert result.billed.max() == 6


def test_latency_is_the_applications_run_time_and_run_time_a_tasks() -> None:
    # Two applications of one stage of fixed 30 s tasks; the second arrives while the first holds every slot.
    load = from_apps([(0.0, [[30.0] * 8]), (5.0, [[30.0] * 8])], 600.0)
    result = simulate_pool(
        load, Scripted([(0.0, 2)]), PoolConfig(max_workers=2, executor_startup_seconds=0.0)
    )
    assert result.run_time_p95_s == pytest.approx(30.0)
    assert result.latency_p95_s == result.app_runtime_p95_s
    # The second application waited for the first's tasks to end, so its run time exceeds one task's.
    assert result.latency_p95_s > 30.0


def test_app_shape_and_loads_are_seeded_and_well_formed() -> None:
    a = from_trace_csv(TRACE, seed=3, mean_rate=0.01, duration=86400.0)
    b = from_trace_csv(TRACE, seed=3, mean_rate=0.01, duration=86400.0)
    assert np.array_equal(a.task_seconds, b.task_seconds)
    assert np.array_equal(a.app_arrivals, b.app_arrivals)
    assert a.app_count == pytest.approx(864, rel=0.15)
    shape = AppShape()
    stages = np.diff(a.app_stages)
    tasks = np.diff(a.stage_tasks)
    assert stages.min() >= 1
    assert stages.max() <= shape.max_stages
    assert stages.mean() == pytest.approx(shape.mean_stages, rel=0.1)
    assert tasks.min() >= 1
    assert tasks.max() <= shape.max_tasks
    assert a.task_seconds.mean() == pytest.approx(shape.mean_task_seconds, rel=0.15)


def test_apps_csv_is_read_per_stage(tmp_path: Path) -> None:
    path = tmp_path / "apps.csv"
    path.write_text("app,arrival_ts,tasks,task_seconds\nb,1010,2,5\na,1000,3,10\na,1000,1,20\n")
    load = from_apps_csv(path)
    assert load.app_arrivals.tolist() == [0.0, 10.0]
    assert load.app_stages.tolist() == [0, 2, 3]
    assert load.stage_tasks.tolist() == [0, 3, 4, 6]
    assert load.task_seconds.tolist() == [10.0, 10.0, 10.0, 20.0, 5.0, 5.0]
    assert load.duration == 30.0  # the last application could end at 10 + 5 + ... = 30 on an unbounded pool


def test_malformed_loads_and_pools_are_refused() -> None:
    with pytest.raises(ValueError, match="every application needs a stage"):
        SparkLoad(np.zeros(1), np.array([0, 0]), np.array([0]), np.zeros(0), 10.0)
    with pytest.raises(ValueError, match="sorted"):
        SparkLoad(np.array([5.0, 1.0]), np.array([0, 1, 2]), np.array([0, 1, 2]), np.ones(2), 10.0)
    with pytest.raises(ValueError, match="executor must fit"):
        PoolConfig(cores_per_worker=2, executor_cores=4)
    with pytest.raises(ValueError, match="initial_executors"):
        DynamicAllocation(min_executors=2, initial_executors=1)


def test_unconstrained_demand_runs_stages_back_to_back() -> None:
    load = from_apps([(0.0, [[2.0, 4.0], [1.0]]), (10.0, [[3.0] * 3])], 20.0)
    demand = unconstrained_demand(load).tolist()
    # App 0: two tasks over [0, 2) and [0, 4), then one over [4, 5); app 1: three over [10, 13). A task
    # counts in every tick it touches, its end tick included.
    assert demand[:6] == [2, 2, 2, 1, 2, 1]
    assert demand[10:14] == [3, 3, 3, 3]
    assert max(demand[6:10]) <= 1
    assert demand[15:] == [0] * (len(demand) - 15)


def test_the_view_reports_the_active_stages_mean_task_time_as_the_driver_does() -> None:
    # One application: a stage of four tasks (2, 4, 6 and 30 s), then a stage of one 5 s task.
    load = from_apps([(0.0, [[2.0, 4.0, 6.0, 30.0], [5.0]])], 200.0)
    pool = PoolModel(load, PoolConfig(max_workers=1, executor_startup_seconds=0.0))
    pool.set_replicas(1, 0.0, DECOMMISSION, initial=True)

    def task_seconds(at: float) -> float | None:
        pool.advance(at)
        (app,) = pool.view(at).apps
        return app.task_seconds

    # Dynamic allocation ramps 1, then 2 more executors: the 2 s task runs from 1 s, the 4 and 6 s tasks
    # from 2 s, the 30 s task from 3 s (when the first slot frees). No figure before a task has
    # completed (not 0: a task takes time).
    assert task_seconds(2.5) is None
    assert task_seconds(3.5) == pytest.approx(2.0)
    assert task_seconds(6.5) == pytest.approx(3.0)
    assert task_seconds(32.5) == pytest.approx(4.0)
    # The 30 s task ends at 33 s and its stage with it: the next stage has completed nothing yet.
    assert task_seconds(33.5) is None
