"""The fast-forward Trino simulator: loads, the cluster model, the runner and the baselines."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from autoscaler.decision.queueing import erlang_c, mean_wait
from autoscaler.sim import ClusterConfig, ClusterView, Load, result_json, simulate
from autoscaler.sim import load as loads
from autoscaler.sim.baselines import BASELINES, Static, make_baseline
from autoscaler.sim.trino import ABRUPT, DRAIN, RUNNING, ScaleDownMode, SlotCluster
from autoscaler.sim.trino_work import WorkConfig

TRACE = Path("/work/shared/data/traces/crane-input0.csv")


class Scripted:
    """A policy that follows a fixed replica schedule: ``schedule`` maps a start time to a count."""

    name = "scripted"

    def __init__(self, schedule: dict[float, int], mode: ScaleDownMode, period: float = 5.0):
        self.schedule = sorted(schedule.items())
        self.scale_down = mode
        self.period_seconds = period

    def desired(self, now: float, view: ClusterView) -> int:
        replicas = self.schedule[0][1]
        for at, count in self.schedule:
            if now >= at:
                replicas = count
        return replicas


def _load(arrivals: list[float], service: list[float], groups: list[int] | None = None) -> Load:
    n = len(arrivals)
    return Load(
        np.asarray(arrivals, dtype=np.float64),
        np.asarray(service, dtype=np.float64),
        np.asarray(groups or [0] * n, dtype=np.int64),
        duration=max(arrivals) + max(service) + 10.0,
    )


def test_same_seed_same_result_other_seed_other_load() -> None:
    config = ClusterConfig(startup_seconds=30)
    first = loads.diurnal(0.2, 20_000, mean_service_s=20, seed=7, period_s=10_000)
    again = loads.diurnal(0.2, 20_000, mean_service_s=20, seed=7, period_s=10_000)
    other = loads.diurnal(0.2, 20_000, mean_service_s=20, seed=8, period_s=10_000)
    assert np.array_equal(first.arrivals, again.arrivals)
    assert np.array_equal(first.service, again.service)
    assert not np.array_equal(first.arrivals[:50], other.arrivals[:50])
    a = simulate(first, make_baseline("hpa-queue", first, config, scale_down="abrupt"), config, seed=1)
    b = simulate(again, make_baseline("hpa-queue", again, config, scale_down="abrupt"), config, seed=1)
    assert a.summary() == b.summary()
    assert np.array_equal(a.waits, b.waits)
    assert np.array_equal(a.desired, b.desired)


@pytest.mark.parametrize("name", BASELINES)
def test_every_arrival_is_accounted_for(name: str) -> None:
    load = loads.bursts(0.05, 1.0, 6_000, mean_service_s=30, seed=3, every_s=1_500, length_s=200)
    config = WorkConfig(startup_seconds=45)
    # Stop before the load ends so some queries are still queued or running.
    result = simulate(load, make_baseline(name, load, config), config, duration=5_620)
    assert result.arrived == int(np.count_nonzero(load.arrivals <= 5_620))
    assert result.arrived == (result.completed + result.queued_at_end + result.running_at_end + result.killed)
    assert len(result.waits) == result.completed + result.running_at_end + result.killed


def test_drain_never_kills_and_leaves_only_when_idle() -> None:
    load = loads.poisson(0.5, 3_000, mean_service_s=60, seed=5)
    config = ClusterConfig(startup_seconds=20)
    policy = Scripted({0: 12, 600: 3, 1_200: 10, 1_800: 1, 2_400: 8}, DRAIN)
    result = simulate(load, policy, config)
    assert result.killed == 0
    # Draining workers stay billed past the drop: some sample shows more billed workers than members.
    assert np.any(result.billed > result.current)
    assert result.arrived == result.completed + result.queued_at_end + result.running_at_end


def test_abrupt_removal_kills_exactly_the_running_queries_of_removed_workers() -> None:
    load = _load([float(i) for i in range(10)], [1_000.0] * 10)
    cluster = SlotCluster(load, ClusterConfig(slots_per_worker=4, startup_seconds=0))
    cluster.set_replicas(3, 0.0, ABRUPT, initial=True)
    cluster.advance(20.0)
    assert cluster.running == 10
    survivor = min(cluster.workers)
    kept = set(cluster.workers[survivor].running)
    expected = {q for w in cluster.workers.values() if w.wid != survivor for q in w.running}
    killed = cluster.set_replicas(1, 20.0, ABRUPT)
    assert set(killed) == expected
    assert cluster.killed == len(expected)
    assert set(cluster.workers) == {survivor}
    assert {q for q in range(10) if cluster.qstate[q] == RUNNING} == kept
    # The killed queries freed no slot on the survivor, so the rest stays running or queued.
    assert cluster.running == len(kept)


def test_a_new_worker_takes_work_only_after_its_startup_delay() -> None:
    load = _load([1.0, 2.0], [10.0, 10.0])
    config = ClusterConfig(startup_seconds=90)
    result = simulate(load, Scripted({0: 1}, DRAIN), config)
    # The first decision at t=0 builds the cluster; a later scale-up must wait for start-up.
    assert result.queue_wait_p99_s == 0.0
    cluster = SlotCluster(load, config)
    cluster.set_replicas(1, 0.0, DRAIN)
    cluster.advance(89.9)
    assert cluster.running == 0
    assert cluster.queued == 2
    cluster.advance(90.0)
    assert cluster.running == 2
    assert cluster.start[0] == 90.0
    assert cluster.view(90.0).ready_workers == 1


def test_static_cluster_with_ample_capacity_never_queues() -> None:
    load = loads.poisson(0.1, 20_000, mean_service_s=10, seed=11)
    result = simulate(load, Static(10), ClusterConfig())
    assert result.arrived > 1_500
    assert result.queue_wait_p99_s == 0.0
    assert result.slo_misses == 0
    assert result.scale_actions == 0


def test_constant_poisson_load_matches_erlang_c() -> None:
    rate, service, workers, slots = 0.6, 10.0, 2, 4
    servers = workers * slots
    waits = []
    for seed in (1, 2, 3):
        load = loads.poisson(rate, 150_000, mean_service_s=service, seed=seed)
        result = simulate(load, Static(workers), ClusterConfig(slots_per_worker=slots, startup_seconds=0))
        waits.append(result.waits)
    measured = np.concatenate(waits)
    expected_mean = mean_wait(servers, rate * service, service)
    assert measured.mean() == pytest.approx(expected_mean, rel=0.15)
    assert float(np.mean(measured > 0)) == pytest.approx(erlang_c(servers, rate * service), abs=0.03)


def test_a_limit_bound_group_queues_while_workers_are_idle() -> None:
    # Group 0 is capped at 2 running queries; group 1 has no cap.
    load = _load([0.0, 0.0, 0.0, 0.0, 1.0], [100.0] * 5, [0, 0, 0, 0, 1])
    config = ClusterConfig(slots_per_worker=4, startup_seconds=0, group_limits=(2,))
    cluster = SlotCluster(load, config)
    cluster.set_replicas(5, 0.0, DRAIN, initial=True)
    cluster.advance(50.0)
    view = cluster.view(50.0)
    assert view.running == 3
    assert view.queued == 2
    assert view.limit_bound_queued == 2
    assert view.busy_fraction < 0.2
    cluster.advance(100.0)
    # The capped queries start only when the first two finish.
    assert cluster.start[2] == 100.0
    assert cluster.start[3] == 100.0
    assert cluster.start[4] == 1.0


@pytest.fixture(scope="module")
def trace_day() -> Load:
    return loads.from_trace_csv(TRACE, mean_service_s=30, mean_rate=0.3, seed=2, duration=43_200)


@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_gives_finite_figures_on_a_real_trace(name: str, trace_day: Load) -> None:
    config = WorkConfig(startup_seconds=60, slo_seconds=30, max_workers=20)
    result = simulate(trace_day, make_baseline(name, trace_day, config), config)
    summary = result_json({name: result})[name]
    assert set(summary) == {
        "worker_hours",
        "queue_wait_p50_s",
        "queue_wait_p95_s",
        "queue_wait_p99_s",
        "slo_misses",
        "scale_actions",
        "killed",
        "run_time_p95_s",
        "latency_p95_s",
    }
    assert all(math.isfinite(v) and v >= 0 for v in summary.values())
    assert summary["worker_hours"] > 0
    assert len(result.t) <= 2_001
    assert len(result.t) == len(result.queue_wait)
    if name == "static":
        assert summary["scale_actions"] == 0
    if name in ("hpa-cpu", "hpa-queue", "keda"):
        assert summary["scale_actions"] > 0
    if name == "keda-chart":
        # Scale-from-zero only: at most one worker at any time.
        assert result.current.max() <= 1


def test_trace_scaling_reaches_the_requested_mean_rate() -> None:
    load = loads.from_trace_csv(TRACE, mean_service_s=10, mean_rate=0.5, seed=4)
    expected = 0.5 * load.duration
    assert abs(load.count - expected) < 5 * math.sqrt(expected)
    ts, values = loads.read_shape_csv(TRACE)
    scaled = loads.from_shape(ts, values, mean_service_s=10, rate_scale=0.01, seed=4, duration=86_400)
    window = ts - ts[0] < 86_400
    expected = float(values[window].sum() * 60 * 0.01)
    assert abs(scaled.count - expected) < 5 * math.sqrt(expected)


def test_arrivals_csv_is_read_rebased_and_sorted(tmp_path: Path) -> None:
    path = tmp_path / "arrivals.csv"
    path.write_text("arrival_ts,service_seconds,group\n1000,5,1\n990,2.5,0\n1010,1,\n")
    load = loads.from_arrivals_csv(path)
    assert load.arrivals.tolist() == [0.0, 10.0, 20.0]
    assert load.service.tolist() == [2.5, 5.0, 1.0]
    assert load.group.tolist() == [0, 1, 0]


def test_synthetic_shapes_put_arrivals_where_the_rate_is() -> None:
    day = loads.diurnal(0.5, 86_400, mean_service_s=10, seed=9, amplitude=0.9, peak_at_s=43_200)
    near_peak = np.count_nonzero(np.abs(day.arrivals - 43_200) < 3_600)
    near_trough = np.count_nonzero(day.arrivals < 3_600) + np.count_nonzero(day.arrivals > 82_800)
    assert near_peak > 5 * near_trough
    burst = loads.bursts(0.01, 2.0, 4_000, mean_service_s=10, seed=9, every_s=2_000, length_s=100)
    inside = np.count_nonzero(((burst.arrivals - 600) % 2_000) < 100)
    assert inside > 0.9 * burst.count
    lognormal = loads.from_rate_curve(
        np.zeros(1), np.ones(1), 20_000, mean_service_s=30, seed=9, service_dist="lognormal"
    )
    assert lognormal.service.mean() == pytest.approx(30, rel=0.1)


def test_a_policy_with_a_floor_starts_at_its_floor_not_at_zero() -> None:
    from autoscaler.policy.loading import load_policies
    from autoscaler.sim.engine_policy import QueuescalePolicy
    from autoscaler.sim.scenario import cluster_config_for

    policy = load_policies(
        Path(__file__).resolve().parents[3] / "examples" / "trino-workers-statefulset.yaml"
    )[0][0]
    assert policy.spec.min_replicas >= 1
    config = cluster_config_for(policy)
    load = loads.poisson(0.2, 3600.0, mean_service_s=20.0, seed=1)
    result = simulate(load, QueuescalePolicy(policy, config), config, seed=1)
    # At least the floor for the whole hour, never the "scaling disabled at 0 replicas" trap.
    assert result.worker_hours >= policy.spec.min_replicas * 1.0 - 1e-9
    assert result.current.min() >= policy.spec.min_replicas
