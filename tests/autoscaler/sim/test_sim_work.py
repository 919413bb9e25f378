"""The work model of a Trino cluster (autoscaler.sim.trino_work): processor sharing over every active
worker, resource groups, memory admission, required workers, and the three ways workers leave."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from autoscaler.sim import Load, WorkCluster, WorkConfig
from autoscaler.sim import load as loads
from autoscaler.sim.trino import ABRUPT, DRAIN, SHUTDOWN, ClusterConfig, ScaleDownMode, SlotCluster


def _load(
    arrivals: list[float],
    work: list[float],
    *,
    groups: list[int] | None = None,
    memory: list[float] | None = None,
    duration: float = 10_000.0,
) -> Load:
    n = len(arrivals)
    return Load(
        np.asarray(arrivals, dtype=np.float64),
        np.asarray(work, dtype=np.float64),
        np.asarray(groups or [0] * n, dtype=np.int64),
        duration=duration,
        memory=None if memory is None else np.asarray(memory, dtype=np.float64),
    )


def _cluster(load: Load, workers: int, **config: Any) -> WorkCluster:
    """A cluster of ``workers`` active workers at t=0."""
    cluster = WorkCluster(load, WorkConfig(**config))
    cluster.set_replicas(workers, 0.0, DRAIN, initial=True)
    return cluster


@pytest.mark.parametrize(
    ("work", "u", "cores", "workers", "seconds"),
    [
        (100.0, 0.25, 8.0, 1, 50.0),
        (100.0, 0.25, 8.0, 4, 12.5),
        (100.0, 1.0, 4.0, 2, 12.5),
        (30.0, 0.5, 2.0, 3, 10.0),
    ],
)
def test_a_query_alone_takes_its_work_over_u_c_w(
    work: float, u: float, cores: float, workers: int, seconds: float
) -> None:
    cluster = _cluster(_load([3.0], [work]), workers, query_parallelism=u, cores_per_worker=cores)
    cluster.advance(3.0 + seconds - 1e-6)
    assert cluster.running == 1
    cluster.advance(1000.0)
    assert cluster.completed == 1
    assert cluster.end[0] == pytest.approx(3.0 + seconds)
    assert cluster.run_times() == pytest.approx([seconds])
    assert cluster.work_done_total == work
    # As Trino's ConsumedCpuTimeSecs counts it: the query's CPU cut to whole seconds.
    assert cluster.cpu_seconds_total == math.floor(work)


def test_a_worker_that_becomes_active_speeds_up_the_running_queries() -> None:
    # Alone on one worker the query runs at 8 × 0.25 = 2 CPU-s/s (50 s); the second worker, active at
    # t=10, doubles that: 20 CPU-s by t=10, the remaining 80 at 4 CPU-s/s.
    cluster = _cluster(_load([0.0], [100.0]), 1, startup_seconds=10.0)
    cluster.set_replicas(2, 0.0, DRAIN)
    cluster.advance(5.0)
    assert cluster.view(5.0).running_cpu_seconds == pytest.approx(10.0)
    cluster.advance(200.0)
    assert cluster.end[0] == pytest.approx(30.0)


@pytest.mark.parametrize("rho", [0.5, 0.7])
def test_mean_response_time_is_m_g_1_processor_sharing(rho: float) -> None:
    # u = 1: the cluster is one processor-sharing server of speed c·W, whose mean response time is
    # E[work]/(c·W)/(1 − ρ) whatever the work distribution (here lognormal).
    cores, workers, mean_work = 2.0, 2, 4.0
    speed = cores * workers
    rate = rho * speed / mean_work
    load = loads.poisson(rate, 300_000.0, mean_service_s=mean_work, seed=11, service_dist="lognormal")
    cluster = _cluster(load, workers, query_parallelism=1.0, cores_per_worker=cores)
    cluster.advance(math.inf)
    assert cluster.completed == load.count
    response = np.asarray(cluster.end) - load.arrivals
    expected = mean_work / speed / (1.0 - rho)
    assert float(response.mean()) == pytest.approx(expected, rel=0.04)
    assert cluster.work_done_total == pytest.approx(float(load.service.sum()), rel=1e-12)
    assert cluster.cpu_seconds_total == float(np.floor(load.service).sum())


def test_work_is_conserved_through_queues_kills_and_scaling() -> None:
    load = loads.poisson(0.5, 20_000.0, mean_service_s=40.0, seed=3, service_dist="lognormal", groups=2)
    load = load.with_memory(loads.query_memory(load.service, mean_gb=6.0, seed=3, max_gb=60.0))
    cluster = _cluster(load, 2, group_limits=(3, None), group_memory_limits=(None, "40%"))
    plan = [(3000.0, 5, SHUTDOWN), (6000.0, 1, ABRUPT), (9000.0, 4, DRAIN), (12000.0, 2, DRAIN)]
    for at, replicas, mode in plan:
        cluster.set_replicas(replicas, at, mode)
        view = cluster.view(at)
        assert view.cpu_seconds_total == cluster.cpu_seconds_total
        assert view.started == view.completed + view.running + view.failed
    cluster.set_replicas(6, 20_000.0, DRAIN)
    cluster.advance(math.inf)
    done = ~np.isnan(np.asarray(cluster.end))
    assert cluster.killed > 0
    assert cluster.completed + cluster.killed == load.count
    assert cluster.work_done_total == pytest.approx(math.fsum(load.service[done]), rel=1e-12)
    assert cluster.view(cluster.now).running_cpu_seconds == 0.0


@pytest.mark.parametrize(("running", "busy"), [(1, 0.25), (2, 0.5), (4, 1.0), (6, 1.0)])
def test_busy_fraction_is_min_of_n_u_and_1(running: int, busy: float) -> None:
    cluster = _cluster(_load([0.0] * running, [1e6] * running), 3)
    cluster.advance(10.0)
    view = cluster.view(10.0)
    assert view.running == running
    assert view.busy_fraction == busy
    assert view.busy_cores == pytest.approx(8.0 * 3 * busy)
    # Every query has consumed the same: ten seconds at c·W·min(u, 1/n).
    assert view.running_cpu_seconds == pytest.approx(10.0 * 8.0 * 3 * busy)
    assert view.slots_per_worker == 1


@pytest.mark.parametrize(("workers", "last_end"), [(1, 200.0), (4, 50.0)])
def test_a_hard_concurrency_limit_queues_and_more_workers_empty_it_sooner(
    workers: int, last_end: float
) -> None:
    cluster = _cluster(_load([0.0] * 5, [80.0] * 5), workers, group_limits=(1,))
    cluster.advance(1.0)
    view = cluster.view(1.0)
    assert (view.running, view.queued, view.limit_bound_queued) == (1, 4, 4)
    assert cluster.head_wait(1.0) == 1.0
    cluster.advance(math.inf)
    assert max(cluster.end) == pytest.approx(last_end)


@pytest.mark.parametrize(
    ("limit", "workers", "running", "memory_bound", "limit_bound"),
    [
        ("50%", 1, 4, 6, 0),
        ("50%", 2, 7, 3, 0),
        ("32GB", 1, 4, 0, 6),
        ("32GB", 2, 4, 0, 6),
        (32.0, 3, 4, 0, 6),
    ],
)
def test_a_percentage_soft_memory_limit_grows_with_workers_an_absolute_one_does_not(
    limit: float | str, workers: int, running: int, memory_bound: int, limit_bound: int
) -> None:
    # Ten 10 GB queries; a group starts while its running memory is below the limit (64 GB a worker).
    load = _load([0.0] * 10, [1e5] * 10, memory=[10.0] * 10)
    cluster = _cluster(load, workers, group_memory_limits=(limit,))
    cluster.advance(1.0)
    view = cluster.view(1.0)
    assert view.running == running
    assert (view.memory_bound_queued, view.limit_bound_queued) == (memory_bound, limit_bound)
    assert view.reserved_memory_gb == 10.0 * running
    assert view.memory_fraction == pytest.approx(10.0 * running / (64.0 * workers))


def test_a_query_starts_only_when_the_active_workers_free_memory_holds_it() -> None:
    # 64 GB: the second 40 GB query waits for the first; a later 10 GB query of another group fits.
    load = _load([0.0, 1.0, 2.0], [100.0, 100.0, 10.0], groups=[0, 0, 1], memory=[40.0, 40.0, 10.0])
    cluster = _cluster(load, 1)
    cluster.advance(3.0)
    view = cluster.view(3.0)
    assert (view.running, view.queued, view.limit_bound_queued, view.memory_bound_queued) == (2, 1, 0, 0)
    assert cluster.start[2] == 2.0
    cluster.advance(math.inf)
    assert cluster.start[1] == cluster.end[0]
    # Two workers hold both big queries at once.
    both = _cluster(load, 2)
    both.advance(3.0)
    assert both.running == 3


def test_a_query_no_cluster_size_can_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="could never start"):
        WorkCluster(_load([0.0], [1.0], memory=[129.0]), WorkConfig(max_workers=2))


def test_no_query_starts_while_fewer_than_the_required_workers_are_active() -> None:
    cluster = _cluster(_load([0.0, 50.0], [10.0, 10.0]), 1, required_workers=2, startup_seconds=30.0)
    cluster.advance(5.0)
    view = cluster.view(5.0)
    assert (view.queued, view.running, view.required_workers) == (1, 0, 2)
    cluster.set_replicas(2, 5.0, DRAIN)
    cluster.advance(34.9)
    assert cluster.queued == 1
    cluster.advance(35.0)
    assert cluster.start[0] == 35.0
    assert cluster.view(35.0).required_workers == 0
    cluster.advance(math.inf)
    assert cluster.start[1] == 50.0


def test_required_workers_is_zero_without_waiting_queries() -> None:
    cluster = _cluster(_load([100.0], [10.0]), 1, required_workers=3)
    assert cluster.view(1.0).required_workers == 0


def test_abrupt_removal_kills_every_running_query() -> None:
    load = _load([0.0] * 7, [1e4] * 7)
    cluster = _cluster(load, 3, group_limits=(5,))
    cluster.advance(10.0)
    assert (cluster.running, cluster.queued) == (5, 2)
    killed = cluster.set_replicas(2, 10.0, ABRUPT)
    assert killed == [0, 1, 2, 3, 4]
    assert cluster.killed == 5
    assert cluster.killed_queries == killed
    # The queued queries start at once on the workers left; the removed one was billed until t=10.
    assert cluster.start[5] == cluster.start[6] == 10.0
    assert cluster.worker_seconds == 10.0
    view = cluster.view(10.0)
    assert (view.failed, view.ready_workers, view.started) == (5, 2, 7)


def test_abrupt_removal_of_a_starting_worker_kills_nothing() -> None:
    cluster = _cluster(_load([0.0], [1e4]), 1)
    cluster.set_replicas(2, 1.0, ABRUPT)
    assert cluster.set_replicas(1, 2.0, ABRUPT) == []
    assert cluster.killed == 0


@pytest.mark.parametrize("mode", [ABRUPT, SHUTDOWN, DRAIN])
def test_scale_down_removes_the_newest_starting_worker_first_and_at_once(mode: ScaleDownMode) -> None:
    cluster = _cluster(_load([0.0], [1e4]), 1, startup_seconds=30.0)
    cluster.set_replicas(2, 1.0, mode)
    cluster.set_replicas(3, 2.0, mode)
    assert cluster.set_replicas(2, 3.0, mode) == []
    assert sorted(cluster.workers) == [0, 1]
    assert cluster.worker_seconds == 1.0
    view = cluster.view(3.0)
    assert (view.current_workers, view.draining_workers, view.shutting_down_workers) == (2, 0, 0)
    assert cluster.killed == 0


def test_a_winding_down_worker_s_memory_leaves_the_pool_at_once() -> None:
    # Two workers hold 128 GB; once one shuts down, a 70 GB query no longer fits and waits.
    load = _load([0.0, 10.0], [1e4, 10.0], memory=[60.0, 70.0])
    cluster = _cluster(load, 2)
    cluster.set_replicas(1, 5.0, SHUTDOWN)
    cluster.advance(11.0)
    view = cluster.view(11.0)
    assert (view.running, view.queued) == (1, 1)
    assert view.memory_fraction == pytest.approx(60.0 / 64.0)


@pytest.mark.parametrize(
    ("work", "exit_at"),
    [
        (None, 25.0),  # no query: t0 + 2G
        (10.0, 25.0),  # done at 2.5, before t0: not in Q0
        (40.0, 25.0),  # done at 15 = t0 + G
        (100.0, 55.0),  # done at 45: 45 + G
    ],
)
@pytest.mark.parametrize("mode", [SHUTDOWN, DRAIN])
def test_a_winding_down_worker_exits_after_g_its_queries_and_g(
    mode: ScaleDownMode, work: float | None, exit_at: float
) -> None:
    # Two workers run a query at 4 CPU-s/s; from t0 = 5 the victim's cores leave the pool: 2 CPU-s/s.
    load = _load([0.0], [work]) if work is not None else _load([500.0], [1.0])
    cluster = _cluster(load, 2, grace_seconds=10.0, termination_grace_seconds=100.0)
    assert cluster.set_replicas(1, 5.0, mode) == []
    view = cluster.view(5.0)
    assert (view.ready_workers, view.current_workers) == (1, 1)
    assert (view.draining_workers, view.shutting_down_workers) == ((1, 0) if mode == DRAIN else (0, 1))
    cluster.advance(exit_at - 1e-6)
    assert cluster.billed_workers() == 2
    cluster.advance(exit_at)
    assert cluster.billed_workers() == 1
    assert cluster.worker_seconds == pytest.approx(exit_at)
    assert cluster.finish(100.0) == pytest.approx(exit_at + 100.0)
    assert cluster.killed == 0


def test_shutdown_kills_exactly_the_queries_running_at_t0_that_outlive_t() -> None:
    # t0 = 5, T = 20: q0 (long, in Q0) dies at 25; q1 (in Q0) finished at 9; q2 started after t0 lives.
    load = _load([0.0, 2.0, 8.0], [1000.0, 20.0, 1000.0])
    cluster = _cluster(load, 2, grace_seconds=10.0, termination_grace_seconds=20.0)
    cluster.set_replicas(1, 5.0, SHUTDOWN)
    cluster.advance(24.9)
    assert (cluster.killed, cluster.billed_workers()) == (0, 2)
    assert cluster.end[1] == pytest.approx(9.0)
    cluster.advance(25.0)
    assert cluster.killed_queries == [0]
    assert cluster.billed_workers() == 1
    assert cluster.worker_seconds == 25.0
    assert cluster.view(25.0).failed == 1
    cluster.advance(math.inf)
    assert not math.isnan(cluster.end[2])
    assert math.isnan(cluster.end[0])
    assert cluster.completed == 2


def test_shutdown_is_one_way_a_scale_up_pays_the_start_up() -> None:
    cluster = _cluster(_load([0.0], [1e4]), 2, startup_seconds=30.0)
    cluster.set_replicas(1, 5.0, SHUTDOWN)
    cluster.set_replicas(2, 6.0, SHUTDOWN)
    view = cluster.view(6.0)
    assert (view.current_workers, view.ready_workers, view.shutting_down_workers) == (2, 1, 1)
    assert cluster.billed_workers() == 3
    cluster.advance(35.9)
    assert cluster.view(35.9).ready_workers == 1
    cluster.advance(36.0)
    assert cluster.view(36.0).ready_workers == 2


def test_drain_never_kills_and_is_taken_back_without_start_up() -> None:
    # q0: 20 CPU-s by t=5 at 4/s, 4 more by t=7 at 2/s, the remaining 976 at 4/s again: done at 251.
    cluster = _cluster(_load([0.0], [1000.0]), 2, grace_seconds=10.0, startup_seconds=30.0)
    cluster.set_replicas(1, 5.0, DRAIN)
    cluster.set_replicas(2, 7.0, DRAIN)
    view = cluster.view(7.0)
    assert (view.ready_workers, view.draining_workers, view.current_workers) == (2, 0, 2)
    assert cluster.billed_workers() == 2
    cluster.advance(math.inf)
    assert cluster.end[0] == pytest.approx(251.0)
    assert cluster.billed_workers() == 2
    assert (cluster.killed, cluster.scale_actions) == (0, 2)


def test_a_scale_up_takes_back_the_draining_worker_that_would_exit_last() -> None:
    # Worker 2 drains at t=0 (exits at 20), worker 1 at t=1 (exits at 21): worker 1 comes back.
    cluster = _cluster(_load([500.0], [1.0]), 3, grace_seconds=10.0)
    cluster.set_replicas(2, 0.0, DRAIN)
    cluster.set_replicas(1, 1.0, DRAIN)
    assert cluster.view(1.0).draining_workers == 2
    cluster.set_replicas(2, 2.0, DRAIN)
    cluster.advance(20.0)
    assert sorted(cluster.workers) == [0, 1]
    assert cluster.worker_seconds == 20.0


def test_a_drain_waiting_on_killed_queries_ends_with_them() -> None:
    # Worker 2 drains at t=0 behind a long query; removing worker 1 abruptly at t=30 kills that query,
    # so worker 2 exits one grace period later.
    cluster = _cluster(_load([0.0], [1e5]), 3, grace_seconds=10.0)
    cluster.set_replicas(2, 0.0, DRAIN)
    cluster.advance(29.0)
    assert cluster.billed_workers() == 3
    assert cluster.set_replicas(1, 30.0, ABRUPT) == [0]
    cluster.advance(39.9)
    assert cluster.billed_workers() == 2
    cluster.advance(40.0)
    assert cluster.billed_workers() == 1
    assert cluster.worker_seconds == pytest.approx(30.0 + 40.0)


def test_a_drain_waiting_on_a_query_another_worker_s_shutdown_kills_ends_with_it() -> None:
    # Worker 2 shuts down at 0.5 with q0 in its Q0; worker 1 drains at 2 with q0 and q1 (done by 10).
    # At 0.5 + T = 40.5 q0 dies, so worker 1's Q0 is done: it exits at 50.5.
    cluster = _cluster(_load([0.0, 1.0], [1e5, 10.0]), 3, grace_seconds=10.0, termination_grace_seconds=40.0)
    cluster.set_replicas(2, 0.5, SHUTDOWN)
    cluster.set_replicas(1, 2.0, DRAIN)
    cluster.advance(41.0)
    assert cluster.killed_queries == [0]
    assert cluster.billed_workers() == 2
    cluster.advance(50.4)
    assert cluster.billed_workers() == 2
    cluster.advance(50.5)
    assert cluster.billed_workers() == 1


def _scripted_run() -> WorkCluster:
    shape = loads.diurnal(0.3, 30_000.0, mean_service_s=50.0, seed=5, period_s=10_000.0)
    memory = loads.query_memory(shape.service, mean_gb=8.0, seed=5, max_gb=64.0)
    group = np.arange(shape.count, dtype=np.int64) % 2
    load = Load(shape.arrivals, shape.service, group, shape.duration, memory)
    cluster = _cluster(load, 3, group_limits=(4, None), group_memory_limits=("30%", None))
    for k, replicas in enumerate([6, 2, 8, 3, 1, 5, 5, 2]):
        mode = (DRAIN, SHUTDOWN, ABRUPT)[k % 3]
        cluster.set_replicas(replicas, 3000.0 * (k + 1), mode)
    cluster.advance(30_000.0)
    return cluster


def test_equal_inputs_give_equal_results() -> None:
    a, b = _scripted_run(), _scripted_run()
    assert a.completed > 0
    assert np.array_equal(np.asarray(a.start), np.asarray(b.start), equal_nan=True)
    assert np.array_equal(np.asarray(a.end), np.asarray(b.end), equal_nan=True)
    assert a.killed_queries == b.killed_queries
    assert a.finish(30_000.0) == b.finish(30_000.0)
    assert a.view(30_000.0) == b.view(30_000.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cores_per_worker": 0.0}, "cores_per_worker"),
        ({"cores_per_worker": math.inf}, "cores_per_worker"),
        ({"query_parallelism": 0.0}, "query_parallelism"),
        ({"query_parallelism": 1.5}, "query_parallelism"),
        ({"memory_per_worker_gb": 0.0}, "memory_per_worker_gb"),
        ({"startup_seconds": -1.0}, "startup_seconds"),
        ({"startup_seconds": math.inf}, "startup_seconds"),
        ({"max_workers": 0}, "max_workers"),
        ({"group_limits": (-1,)}, "group limits"),
        ({"group_memory_limits": ("lots",)}, "neither a data size"),
        ({"slo_seconds": -1.0}, "slo_seconds"),
        ({"initial_workers": 201}, "initial_workers"),
        ({"initial_workers": -1}, "initial_workers"),
        ({"grace_seconds": -1.0}, "grace_seconds"),
        ({"grace_seconds": 60.0, "termination_grace_seconds": 100.0}, "twice"),
        ({"required_workers": 0}, "required_workers"),
        ({"required_workers": 201}, "required_workers"),
    ],
)
def test_invalid_configuration_is_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WorkConfig(**kwargs)


def test_the_defaults_are_the_documented_trino_figures() -> None:
    expected = WorkConfig(
        cores_per_worker=8.0,
        query_parallelism=0.25,
        memory_per_worker_gb=64.0,
        grace_seconds=120.0,
        termination_grace_seconds=300.0,
        required_workers=1,
        startup_seconds=60.0,
    )
    assert WorkConfig() == expected


def test_an_unknown_scale_down_mode_is_refused() -> None:
    cluster = _cluster(_load([0.0], [1.0]), 1)
    with pytest.raises(ValueError, match="scale-down mode"):
        cluster.set_replicas(0, 1.0, "evict")  # type: ignore[arg-type]


def _slot_cluster(arrivals: list[float], work: list[float], **config: Any) -> SlotCluster:
    return SlotCluster(_load(arrivals, work), ClusterConfig(slots_per_worker=1, startup_seconds=30, **config))


def test_the_slot_models_shutdown_waits_grace_work_grace_and_kills_at_termination() -> None:
    # Two one-slot workers; worker 1 (the newest) runs a 100 s query, worker 0 a 1,000 s one.
    cluster = _slot_cluster([0.0, 0.5], [1_000.0, 100.0], grace_seconds=20, termination_grace_seconds=300)
    cluster.set_replicas(2, 0.0, SHUTDOWN, initial=True)
    cluster.advance(1.0)
    # The newest worker shuts down first (no pod-deletion-cost), whatever it runs.
    assert cluster.set_replicas(1, 10.0, SHUTDOWN) == []
    view = cluster.view(10.0)
    assert (view.current_workers, view.shutting_down_workers) == (1, 1)
    # Its query ends at 100.5; it leaves a grace period later, billed until then.
    cluster.advance(120.0)
    assert cluster.billed_workers() == 2
    cluster.advance(120.6)
    assert cluster.billed_workers() == 1
    assert cluster.worker_seconds == pytest.approx(120.5)
    # The other worker shuts down at 200: its query would end at 1,000, past 200 + 300: killed at 500.
    cluster.set_replicas(0, 200.0, SHUTDOWN)
    cluster.advance(499.9)
    assert cluster.killed == 0
    cluster.advance(500.0)
    assert cluster.killed == 1
    assert cluster.billed_workers() == 0
    assert cluster.worker_seconds == pytest.approx(120.5 + 500.0)


def test_the_slot_models_shutdown_is_one_way_and_a_drain_is_taken_back() -> None:
    cluster = _slot_cluster([0.0, 0.1], [500.0, 500.0], grace_seconds=20, termination_grace_seconds=600)
    cluster.set_replicas(2, 0.0, DRAIN, initial=True)
    cluster.advance(1.0)
    cluster.set_replicas(1, 10.0, DRAIN)
    assert cluster.view(10.0).draining_workers == 1
    cluster.set_replicas(2, 20.0, DRAIN)
    # Taken back at once: no start-up, nothing new billed.
    assert cluster.view(20.0).ready_workers == 2
    assert len(cluster.workers) == 2
    cluster.set_replicas(1, 30.0, SHUTDOWN)
    cluster.set_replicas(2, 40.0, SHUTDOWN)
    view = cluster.view(40.0)
    # The shutting-down worker stays one; a new one starts (30 s).
    assert (view.ready_workers, view.current_workers, view.shutting_down_workers) == (1, 2, 1)
    assert len(cluster.workers) == 3


def test_the_slot_models_drain_without_grace_leaves_the_moment_it_is_idle() -> None:
    cluster = _slot_cluster([0.0], [100.0])
    cluster.set_replicas(1, 0.0, DRAIN, initial=True)
    cluster.set_replicas(0, 10.0, DRAIN)
    cluster.advance(100.0)
    assert cluster.billed_workers() == 0
    assert cluster.worker_seconds == pytest.approx(100.0)
    view = cluster.view(100.0)
    assert (view.cpu_seconds_total, view.busy_cores, view.started, view.failed) == (0.0, 0.0, 0, 0)
