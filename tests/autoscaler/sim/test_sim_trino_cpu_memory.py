"""The Trino cluster model's cores (processor sharing), memory and resource-group memory limits."""

from __future__ import annotations

import heapq
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autoscaler.sim import ClusterConfig, Load, simulate
from autoscaler.sim import load as loads
from autoscaler.sim.baselines import Static, make_baseline
from autoscaler.sim.trino import (
    ABRUPT,
    DRAIN,
    RUNNING,
    SlotCluster,
    SoftMemoryLimit,
    parse_soft_memory_limit,
)


def _load(
    arrivals: list[float],
    service: list[float],
    groups: list[int] | None = None,
    memory: list[float] | None = None,
) -> Load:
    n = len(arrivals)
    return Load(
        np.asarray(arrivals, dtype=np.float64),
        np.asarray(service, dtype=np.float64),
        np.asarray(groups or [0] * n, dtype=np.int64),
        duration=max(arrivals) + sum(service) + 10.0,
        memory=None if memory is None else np.asarray(memory, dtype=np.float64),
    )


def _cluster(load: Load, workers: int = 1, **config: Any) -> SlotCluster:
    """A cluster of ``workers`` active workers at t=0."""
    cluster = SlotCluster(load, ClusterConfig(startup_seconds=0, **config))
    cluster.set_replicas(workers, 0.0, DRAIN, initial=True)
    return cluster


# ---------------------------------------------------------------------------------------- processor sharing


def test_two_queries_on_one_core_take_twice_as_long() -> None:
    cluster = _cluster(_load([0.0, 0.0], [10.0, 10.0]), slots_per_worker=4, cores_per_worker=1)
    cluster.advance(19.999)
    assert cluster.running == 2
    cluster.advance(100.0)
    assert cluster.end == [20.0, 20.0]


def test_an_arrival_midway_slows_the_first_query_from_then_on() -> None:
    # 0–4 s: A alone does 4 s of work. Then both at half speed: A's last 6 s take 12 s (ends 16), by when
    # B has done 6 s; B's last 4 s run alone (ends 20).
    cluster = _cluster(_load([0.0, 4.0], [10.0, 10.0]), slots_per_worker=4, cores_per_worker=1)
    cluster.advance(100.0)
    assert cluster.end == pytest.approx([16.0, 20.0], abs=1e-9)


def test_the_short_query_of_a_shared_pair_leaves_first_and_frees_the_core() -> None:
    # Both at half speed: the 2 s query ends at 4, the 10 s one has 8 s left alone: ends at 12.
    cluster = _cluster(_load([0.0, 0.0], [2.0, 10.0]), slots_per_worker=2, cores_per_worker=1)
    cluster.advance(100.0)
    assert cluster.end == pytest.approx([4.0, 12.0], abs=1e-9)


def test_three_queries_on_two_cores_each_run_at_two_thirds_speed() -> None:
    cluster = _cluster(_load([0.0, 0.0, 0.0], [6.0, 6.0, 6.0]), slots_per_worker=3, cores_per_worker=2)
    view = cluster.view(1.0)
    assert view.busy_fraction == 1.0
    assert view.cores_per_worker == 2
    cluster.advance(100.0)
    assert cluster.end == pytest.approx([9.0, 9.0, 9.0], abs=1e-9)


def _processor_sharing_reference(arrivals: list[int], service: list[int], cores: int) -> list[Fraction]:
    """One worker sharing ``cores`` among everything present, in exact rational arithmetic."""
    t = Fraction(0)
    left: dict[int, Fraction] = {}
    ends = [Fraction(-1)] * len(arrivals)
    i = 0
    while i < len(arrivals) or left:
        rate = min(Fraction(1), Fraction(cores, len(left))) if left else Fraction(0)
        done_at = t + min(left.values()) / rate if left else None
        if done_at is not None and (i == len(arrivals) or done_at <= arrivals[i]):
            step = done_at - t
        else:
            step = arrivals[i] - t
        for q in left:
            left[q] -= rate * step
        t += step
        for q in [q for q, work in left.items() if work == 0]:
            ends[q] = t
            del left[q]
        if i < len(arrivals) and arrivals[i] == t and (done_at is None or done_at >= t):
            left[i] = Fraction(service[i])
            i += 1
    return ends


@pytest.mark.parametrize(("seed", "cores"), [(1, 1), (2, 2), (3, 3)])
def test_completion_instants_match_exact_processor_sharing(seed: int, cores: int) -> None:
    rng = np.random.default_rng(seed)
    # Integer times make ties (simultaneous arrivals and completions) likely.
    arrivals = sorted(int(a) for a in rng.integers(0, 60, 40))
    service = [int(s) for s in rng.integers(1, 12, 40)]
    cluster = _cluster(
        _load([float(a) for a in arrivals], [float(s) for s in service]),
        slots_per_worker=100,
        cores_per_worker=cores,
    )
    cluster.advance(10_000.0)
    expected = [float(e) for e in _processor_sharing_reference(arrivals, service, cores)]
    assert cluster.completed == 40
    assert cluster.end == pytest.approx(expected, abs=1e-7)


def test_one_shared_core_is_an_m_g_1_processor_sharing_queue() -> None:
    # M/G/1-PS: the mean time in system is S / (1 − ρ) whatever the service distribution; a FIFO queue
    # with this heavy-tailed service would take over three times as long (Pollaczek–Khinchine).
    load = loads.from_rate_curve(
        np.zeros(1), np.array([0.6]), 60_000, mean_service_s=1.0, seed=5, service_dist="lognormal", sigma=1.5
    )
    cluster = _cluster(load, slots_per_worker=1_000, cores_per_worker=1)
    cluster.advance(200_000.0)
    assert cluster.completed == load.count
    sojourn = float(np.mean(np.asarray(cluster.end) - load.arrivals))
    mean_service = float(load.service.mean())
    rho = load.offered_load()
    assert sojourn == pytest.approx(mean_service / (1 - rho), rel=0.05)
    second_moment = float(np.mean(load.service**2))
    fifo = mean_service + rho * second_moment / (2 * mean_service * (1 - rho))
    assert fifo > 3 * sojourn
    # No queue: every query started on arrival.
    assert np.array_equal(np.asarray(cluster.start), load.arrivals)


def test_busy_fraction_is_cores_in_use_over_ready_cores() -> None:
    load = _load([0.0, 0.0, 0.0], [50.0, 50.0, 50.0])
    cluster = _cluster(load, workers=2, slots_per_worker=8, cores_per_worker=2)
    # Spread: two queries on one worker (2 of 2 cores busy), one on the other (1 of 2).
    assert cluster.view(1.0).busy_fraction == pytest.approx(3 / 4)
    one_core = _cluster(load, workers=1, slots_per_worker=8, cores_per_worker=4)
    assert one_core.view(1.0).busy_fraction == pytest.approx(3 / 4)
    sharing = _cluster(load, workers=1, slots_per_worker=8, cores_per_worker=2)
    assert sharing.view(1.0).busy_fraction == 1.0


# ---------------------------------------------------------------------------------------- the slot model


def _fifo_slots_reference(load: Load, servers: int) -> list[float]:
    """Start times of a FIFO queue in front of ``servers`` independent servers."""
    free = [0.0] * servers
    starts = []
    for a, s in zip(load.arrivals.tolist(), load.service.tolist(), strict=True):
        start = max(a, heapq.heappop(free))
        starts.append(start)
        heapq.heappush(free, start + s)
    return starts


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"cores_per_worker": 4.0},
        {"cores_per_worker": 16.0, "memory_per_worker_gb": 1e6, "group_memory_limits": ("100%",)},
    ],
    ids=["defaults", "one-core-per-slot", "spare-cores-and-memory"],
)
def test_one_core_per_slot_is_exactly_the_slot_model(extra: dict[str, Any]) -> None:
    base = loads.poisson(1.0, 20_000, mean_service_s=10.0, seed=3)
    load = base.with_memory(loads.query_memory(base.service, mean_gb=2.0, seed=3))
    cluster = _cluster(load, workers=3, slots_per_worker=4, **extra)
    cluster.advance(30_000.0)
    starts = np.asarray(cluster.start)
    assert np.array_equal(starts, np.asarray(_fifo_slots_reference(load, 12)))
    # Nobody shares a core: each query runs exactly its service time.
    assert np.array_equal(np.asarray(cluster.end), starts + load.service)
    assert float(np.mean(starts > load.arrivals)) > 0.05  # the queue was exercised


def test_defaults_give_the_same_simulation_as_explicit_unshared_unlimited_settings() -> None:
    load = loads.bursts(0.05, 1.0, 6_000, mean_service_s=30, seed=3, every_s=1_500, length_s=200)
    plain = ClusterConfig(startup_seconds=45)
    explicit = ClusterConfig(
        startup_seconds=45, cores_per_worker=4, memory_per_worker_gb=math.inf, group_memory_limits=("50%",)
    )
    for name in ("hpa-cpu", "hpa-queue"):
        a = simulate(load, make_baseline(name, load, plain, scale_down="abrupt"), plain)
        b = simulate(load, make_baseline(name, load, explicit, scale_down="abrupt"), explicit)
        assert a.summary() == b.summary()
        assert np.array_equal(a.waits, b.waits)
        assert a.killed > 0


# ---------------------------------------------------------------------------------------- memory


def test_a_query_waits_for_memory_on_its_worker_and_starts_when_it_is_released() -> None:
    load = _load([0.0, 1.0], [10.0, 5.0], memory=[6.0, 6.0])
    cluster = _cluster(load, slots_per_worker=4, memory_per_worker_gb=10.0)
    cluster.advance(5.0)
    view = cluster.view(5.0)
    assert (view.running, view.queued) == (1, 1)
    assert view.memory_fraction == pytest.approx(0.6)
    assert view.reserved_memory_gb == pytest.approx(6.0)
    # Workers would help: not limit-bound, not held by a resource-group memory limit.
    assert (view.limit_bound_queued, view.memory_bound_queued) == (0, 0)
    cluster.advance(100.0)
    assert cluster.start == [0.0, 10.0]
    assert cluster.end == [10.0, 15.0]
    assert cluster.view(100.0).reserved_memory_gb == 0.0


def test_queries_go_where_memory_is_free() -> None:
    load = _load([0.0, 0.0, 0.0], [10.0, 10.0, 10.0], memory=[6.0, 6.0, 6.0])
    cluster = _cluster(load, workers=2, slots_per_worker=4, memory_per_worker_gb=10.0)
    cluster.advance(1.0)
    assert sorted(len(w.running) for w in cluster.workers.values()) == [1, 1]
    assert cluster.queued == 1
    # A third worker takes the waiting query at once.
    cluster.set_replicas(3, 1.0, DRAIN, initial=True)
    assert cluster.start[2] == 1.0


def test_a_head_that_fits_nowhere_lets_another_groups_smaller_query_start() -> None:
    # Group 0's second query needs 8 GB while 4 GB are free; group 1's 2 GB query arrives later and runs.
    load = _load([0.0, 1.0, 2.0], [100.0, 10.0, 10.0], groups=[0, 0, 1], memory=[6.0, 8.0, 2.0])
    cluster = _cluster(load, slots_per_worker=4, memory_per_worker_gb=10.0)
    cluster.advance(50.0)
    assert cluster.qstate[1] != RUNNING
    assert cluster.start[2] == 2.0
    cluster.advance(200.0)
    assert cluster.start[1] == 100.0


def test_a_query_larger_than_any_worker_is_refused() -> None:
    with pytest.raises(ValueError, match="never start"):
        SlotCluster(_load([0.0], [1.0], memory=[20.0]), ClusterConfig(memory_per_worker_gb=16.0))


def test_percentage_soft_memory_limit_grows_with_the_active_workers() -> None:
    # 50 % of 10 GB per worker. A group starts queries while it holds less than its limit.
    load = _load([0.0] * 6, [1_000.0] * 6, memory=[3.0] * 6)
    config = {"slots_per_worker": 8, "memory_per_worker_gb": 10.0, "group_memory_limits": ("50%",)}
    cluster = _cluster(load, workers=1, **config)
    cluster.advance(1.0)
    view = cluster.view(1.0)
    # 0 → 3 → 6 GB: the second start crosses 5 GB, the third waits.
    assert (view.running, view.queued) == (2, 4)
    assert view.memory_bound_queued == 4
    assert view.limit_bound_queued == 0
    cluster.set_replicas(2, 1.0, DRAIN, initial=True)
    # 10 GB limit: 6 → 9 → 12 GB.
    assert cluster.running == 4
    cluster.set_replicas(4, 1.0, DRAIN, initial=True)
    assert cluster.running == 6


def test_a_percentage_limit_shrinks_when_workers_drain() -> None:
    load = _load([0.0, 0.0, 0.0, 10.0], [1_000.0, 1_000.0, 1_000.0, 5.0], memory=[3.0] * 4)
    config = {"slots_per_worker": 8, "memory_per_worker_gb": 10.0, "group_memory_limits": ("50%",)}
    cluster = _cluster(load, workers=2, **config)
    cluster.advance(1.0)
    assert cluster.running == 3
    cluster.set_replicas(1, 5.0, DRAIN)
    # One active worker: 5 GB limit, 9 GB held: the query arriving at 10 s waits.
    cluster.advance(20.0)
    assert cluster.qstate[3] != RUNNING
    assert cluster.view(20.0).memory_bound_queued == 1


def test_absolute_soft_memory_limit_is_not_helped_by_workers() -> None:
    load = _load([0.0] * 4, [1_000.0] * 4, memory=[3.0] * 4)
    for workers in (1, 5):
        cluster = _cluster(
            load,
            workers=workers,
            slots_per_worker=8,
            memory_per_worker_gb=10.0,
            group_memory_limits=("6GB",),
        )
        cluster.advance(1.0)
        view = cluster.view(1.0)
        assert (view.running, view.queued) == (2, 2)
        assert view.limit_bound_queued == 2
        assert view.memory_bound_queued == 0


def test_concurrency_limit_is_not_helped_by_workers() -> None:
    load = _load([0.0] * 5, [100.0] * 5)
    for workers in (1, 5):
        cluster = _cluster(load, workers=workers, slots_per_worker=4, group_limits=(2,))
        cluster.advance(1.0)
        view = cluster.view(1.0)
        assert (view.running, view.queued, view.limit_bound_queued) == (2, 3, 3)


def test_groups_are_limited_separately() -> None:
    # Group 0 capped at 1 query, group 1 at 4 GB; both queues hold, with different causes.
    load = _load([0.0] * 6, [100.0] * 6, groups=[0, 0, 0, 1, 1, 1], memory=[1.0, 1.0, 1.0, 3.0, 3.0, 3.0])
    cluster = _cluster(
        load,
        workers=4,
        slots_per_worker=4,
        memory_per_worker_gb=16.0,
        group_limits=(1,),
        group_memory_limits=(None, "5%"),
    )
    cluster.advance(1.0)
    view = cluster.view(1.0)
    # 5 % of 64 GB: 3.2 GB; group 1 runs two (0 → 3 → 6 GB) and holds one.
    assert (view.running, view.queued) == (3, 3)
    assert view.limit_bound_queued == 2
    assert view.memory_bound_queued == 1


def test_abrupt_removal_returns_the_memory_and_concurrency_of_killed_queries() -> None:
    load = _load([0.0, 0.0, 0.0], [1_000.0] * 3, memory=[4.0, 4.0, 4.0])
    cluster = _cluster(
        load, workers=2, slots_per_worker=2, memory_per_worker_gb=8.0, group_memory_limits=("8GB",)
    )
    cluster.advance(1.0)
    assert (cluster.running, cluster.queued) == (2, 1)
    killed = cluster.set_replicas(1, 2.0, ABRUPT)
    assert len(killed) == 1
    # The group's held memory fell back to 4 GB, so the waiting query starts on the survivor.
    assert cluster.start[2] == 2.0
    assert cluster.view(2.0).reserved_memory_gb == pytest.approx(8.0)


def test_a_draining_worker_keeps_sharing_and_leaves_when_its_queries_end() -> None:
    load = _load([0.0, 0.0, 0.0], [10.0, 10.0, 10.0])
    cluster = _cluster(load, workers=2, slots_per_worker=4, cores_per_worker=1)
    cluster.advance(1.0)
    shared = next(w for w in cluster.workers.values() if len(w.running) == 2)
    # Drain the busier worker by asking for none; the other (one query) drains too.
    cluster.set_replicas(0, 1.0, DRAIN)
    assert cluster.killed == 0
    cluster.advance(19.9)
    assert shared.wid in cluster.workers
    cluster.advance(20.0)
    assert cluster.workers == {}
    assert sorted(cluster.end) == [10.0, 20.0, 20.0]
    assert cluster.finish(20.0) == pytest.approx(10.0 + 20.0)


# ---------------------------------------------------------------------------------------- configuration, loads


def test_soft_memory_limits_parse_like_trino() -> None:
    assert parse_soft_memory_limit("50%") == SoftMemoryLimit(fraction=0.5)
    assert parse_soft_memory_limit("12GB") == SoftMemoryLimit(gb=12.0)
    assert parse_soft_memory_limit("512MB") == SoftMemoryLimit(gb=0.5)
    assert parse_soft_memory_limit("1TB") == SoftMemoryLimit(gb=1024.0)
    assert parse_soft_memory_limit(7) == SoftMemoryLimit(gb=7.0)
    assert SoftMemoryLimit(fraction=0.5).bytes_gb(0.0) == 0.0
    assert SoftMemoryLimit(fraction=0.5).bytes_gb(math.inf) == math.inf
    assert SoftMemoryLimit().bytes_gb(10.0) == math.inf
    for bad in ("half", "12 gigabytes", "-5%", -1.0):
        with pytest.raises(ValueError, match="soft memory limit"):
            parse_soft_memory_limit(bad)


@pytest.mark.parametrize(
    "bad",
    [{"cores_per_worker": 0}, {"memory_per_worker_gb": 0}, {"group_memory_limits": ("lots",)}],
)
def test_invalid_cluster_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"cores|memory"):
        ClusterConfig(**bad)


def test_cores_default_to_one_per_slot() -> None:
    assert ClusterConfig(slots_per_worker=6).cores == 6.0
    assert ClusterConfig(slots_per_worker=6, cores_per_worker=2.5).cores == 2.5


def test_synthetic_query_memory_is_seeded_and_has_the_requested_mean() -> None:
    service = loads.poisson(1.0, 10_000, mean_service_s=20, seed=2).service
    a = loads.query_memory(service, mean_gb=4.0, seed=7)
    assert np.array_equal(a, loads.query_memory(service, mean_gb=4.0, seed=7))
    assert not np.array_equal(a, loads.query_memory(service, mean_gb=4.0, seed=8))
    assert float(a.mean()) == pytest.approx(4.0)
    # Longer queries hold more memory.
    assert float(np.corrcoef(service, a)[0, 1]) > 0.3
    assert np.array_equal(loads.query_memory(service[:3], mean_gb=2.0, seed=0, model="constant"), [2.0] * 3)
    assert float(loads.query_memory(service, mean_gb=4.0, seed=7, max_gb=6.0).max()) == 6.0


def test_load_memory_is_checked_and_kept_by_slices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one entry per query"):
        _load([0.0, 1.0], [1.0, 1.0], memory=[1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        _load([0.0], [1.0], memory=[-1.0])
    load = _load([0.0, 5.0, 10.0], [1.0, 1.0, 1.0], memory=[1.0, 2.0, 3.0])
    part = load.slice(4.0, 20.0)
    assert part.memory is not None
    assert part.memory.tolist() == [2.0, 3.0]
    path = tmp_path / "arrivals.csv"
    path.write_text("arrival_ts,service_seconds,group,memory_gb\n10,5,0,2.5\n0,1,1,\n")
    read = loads.from_arrivals_csv(path)
    assert read.memory is not None
    assert read.memory.tolist() == [0.0, 2.5]
    assert loads.from_arrivals_csv(_write(tmp_path / "plain.csv", "0,1\n3,2\n")).memory is None


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_sharing_and_memory_runs_are_deterministic() -> None:
    base = loads.diurnal(0.5, 20_000, mean_service_s=20, seed=4, period_s=10_000)
    load = base.with_memory(loads.query_memory(base.service, mean_gb=3.0, seed=4, max_gb=16.0))
    config = ClusterConfig(
        startup_seconds=30,
        slots_per_worker=8,
        cores_per_worker=4,
        memory_per_worker_gb=16.0,
        group_memory_limits=("60%",),
    )
    runs = [
        simulate(load, make_baseline("hpa-cpu", load, config, scale_down="abrupt"), config) for _ in range(2)
    ]
    assert runs[0].summary() == runs[1].summary()
    assert np.array_equal(runs[0].waits, runs[1].waits)
    assert runs[0].completed > 0.9 * runs[0].arrived


def test_shared_cores_make_a_static_cluster_slower_than_one_core_per_slot() -> None:
    load = loads.poisson(0.2, 20_000, mean_service_s=20, seed=6)
    dedicated = simulate(load, Static(3), ClusterConfig(startup_seconds=0, slots_per_worker=4))
    shared = simulate(
        load, Static(3), ClusterConfig(startup_seconds=0, slots_per_worker=4, cores_per_worker=2)
    )
    # 4 cores of work on average: 12 cores keep the queue short; on 6 shared cores queries run longer and
    # hold their slots longer, so more wait.
    assert shared.queue_wait_mean_s > 2 * dedicated.queue_wait_mean_s


def test_a_drained_workers_last_query_frees_its_group_for_a_query_elsewhere() -> None:
    # Group 0 runs one query at a time. Its first query lands on the second worker, which then drains.
    load = _load([0.5, 0.6, 1.0], [100.0, 10.0, 10.0], groups=[1, 0, 0])
    cluster = _cluster(load, workers=2, slots_per_worker=4, group_limits=(1,))
    cluster.advance(2.0)
    assert cluster.queued == 1
    cluster.set_replicas(1, 2.0, DRAIN)
    assert cluster.view(2.0).draining_workers == 1
    cluster.advance(50.0)
    # The draining worker leaves at 10.6 s; the queued query of its group starts then on the other worker.
    assert cluster.start[2] == 10.6
    assert cluster.view(50.0).draining_workers == 0
