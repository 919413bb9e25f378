"""The Spark pool baselines and queuescale's engine as a pool policy."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from autoscaler.decision.hpa_behavior import RatePolicy
from autoscaler.policy.loading import load_policies, parse_policies
from autoscaler.sim.pool_scenario import pool_config_for
from autoscaler.sim.spark import ABRUPT, DECOMMISSION, WAIT_IDLE, AppView, PoolConfig, PoolView
from autoscaler.sim.spark_baselines import (
    EXAMPLE_POOL_HPA_BEHAVIOR,
    POOL_BASELINES,
    DynAlloc,
    HpaCpu,
    HpaQueue,
    Keda,
    Static,
    lower_bound_worker_hours,
    make_pool_baseline,
    pool_baseline,
    static_workers,
)
from autoscaler.sim.spark_engine_policy import SparkQueuescalePolicy, catalog_value
from autoscaler.sim.spark_load import SparkLoad, from_apps, from_trace_csv
from autoscaler.sim.spark_run import simulate_pool
from benchmarks.spark_compare import DEFAULT_POLICY, Case, Outcome, tables, with_startup

ROOT = Path(__file__).resolve().parents[3]
POLICY = ROOT / "examples" / "spark-worker-pool.yaml"
EXAMPLE_HPA = ROOT / "deploy" / "examples" / "hpa" / "hpa-spark-worker-pool.yaml"
TRACE = "/work/shared/data/traces/crane-input0.csv"


def _view(**fields: Any) -> PoolView:
    base = PoolView(
        now=0.0,
        pending_tasks=0,
        running_tasks=0,
        next_wave_tasks=0,
        current_workers=2,
        ready_workers=2,
        decommissioning_workers=0,
        cores_per_worker=4,
        slots_per_worker=4,
        ready_cores=8,
        cores_used=0,
        busy_fraction=0.0,
        executors=0,
        waiting_apps=0,
        completed_tasks=0,
        arrived_apps=0,
        apps=(),
    )
    return dataclasses.replace(base, **fields)


def test_hpa_cpu_doubles_a_saturated_pool_and_holds_scale_down_for_five_minutes() -> None:
    hpa = HpaCpu(DECOMMISSION, max_replicas=16)
    assert hpa.desired(0.0, _view()) == 1  # the StatefulSet's own count before the first pass
    # 100 % busy at a 50 % target: ceil(2 × 2) = 4.
    assert hpa.desired(15.0, _view(now=15.0, busy_fraction=1.0)) == 4
    # Idle afterwards: the legacy 300 s stabilisation keeps the highest recommendation.
    assert hpa.desired(30.0, _view(now=30.0, current_workers=4, ready_workers=4)) == 4
    assert hpa.desired(316.0, _view(now=316.0, current_workers=4, ready_workers=4)) == 1
    # No ready worker reports utilisation: nothing to compute, hold.
    assert hpa.desired(330.0, _view(now=330.0, current_workers=3, ready_workers=0)) == 3


#: Two applications: one with 10 pending and 4 running tasks (target 12 executors while it ramps), one
#: WAITING on the master with 3 pending tasks (target 1).
APPS = (AppView(0, 10, 4, 8, 4, 12, False), AppView(1, 3, 0, 0, 0, 1, True))


def test_every_hpa_and_keda_baseline_decommissions_by_default() -> None:
    load, config = _burst_at(10.0, 1), PoolConfig()
    for name in POOL_BASELINES:
        assert make_pool_baseline(name, load, config).scale_down == DECOMMISSION, name
    # Abrupt removal stays available for measuring what decommission buys.
    for name in ("hpa-cpu", "hpa-queue", "dynalloc", "keda"):
        assert make_pool_baseline(name, load, config, scale_down=ABRUPT).scale_down == ABRUPT, name


def test_the_example_hpa_is_the_yaml_as_written() -> None:
    doc = yaml.safe_load(EXAMPLE_HPA.read_text())
    spec = doc["spec"]
    hpa = HpaQueue(PoolConfig(max_workers=16))
    assert (hpa.min_replicas, hpa.max_replicas) == (spec["minReplicas"], spec["maxReplicas"])
    written = [
        (
            m["external"]["metric"]["name"],
            m["external"]["target"]["type"],
            float(m["external"]["target"]["averageValue"]),
        )
        for m in spec["metrics"]
    ]
    assert written == [(t.metric, t.kind, t.value) for t in hpa.targets]
    down = spec["behavior"]["scaleDown"]
    assert "scaleUp" not in spec["behavior"]
    assert hpa.behavior == EXAMPLE_POOL_HPA_BEHAVIOR
    rules = EXAMPLE_POOL_HPA_BEHAVIOR.scale_down
    assert rules is not None
    assert EXAMPLE_POOL_HPA_BEHAVIOR.scale_up is None
    assert rules.stabilization_window_seconds == down["stabilizationWindowSeconds"]
    assert rules.policies == tuple(
        RatePolicy(p["type"], p["value"], p["periodSeconds"]) for p in down["policies"]
    )
    assert rules.select_policy is None
    assert "selectPolicy" not in down
    # Its default setting is the example's 4 executors per worker: a worker of 4 cores, 1-core executors.
    assert pool_baseline("hpa-queue", _burst_at(10.0, 1), PoolConfig()).default == 4.0


def test_hpa_queue_sums_executors_needed_and_counts_waiting_apps() -> None:
    config = PoolConfig(max_workers=16)
    hpa = HpaQueue(config)
    assert hpa.desired(0.0, _view()) == 1
    # Executors needed as the adapter computes them: ceil(14 / 1) + ceil(3 / 1) = 17, over 4 per worker: 5;
    # one WAITING application at 1 per worker asks for 1. The larger wins.
    view = _view(now=15.0, pending_tasks=13, running_tasks=4, waiting_apps=1, apps=APPS)
    assert hpa.desired(15.0, view) == 5
    # Applications waiting on the master with no task counted yet still get a worker each.
    waiting = _view(now=30.0, current_workers=5, ready_workers=5, waiting_apps=7)
    assert hpa.desired(30.0, waiting) == 7


def test_hpa_queue_scales_down_one_pod_a_minute_after_five_minutes() -> None:
    hpa = HpaQueue(PoolConfig(max_workers=16))
    hpa.desired(0.0, _view(current_workers=1, ready_workers=1))
    busy = (AppView(0, 20, 12, 0, 12, 32, False),)
    assert hpa.desired(15.0, _view(now=15.0, current_workers=1, ready_workers=1, apps=busy)) == 5
    replicas, now = 5, 15.0
    seen: list[tuple[float, int]] = []
    while now < 700.0:
        now += 15.0
        replicas = hpa.desired(now, _view(now=now, current_workers=replicas, ready_workers=replicas))
        seen.append((now, replicas))
    first_drop = next(t for t, r in seen if r < 5)
    assert 315.0 <= first_drop <= 330.0  # the 300 s window
    pairs = itertools.pairwise([(15.0, 5), *seen])
    steps = [(t, before - r) for (_, before), (t, r) in pairs if r < before]
    assert {size for _, size in steps} == {1}
    drops = [t for t, _ in steps]
    assert all(later - earlier >= 60.0 for earlier, later in itertools.pairwise(drops))
    assert seen[-1][1] == 1


def test_dynalloc_sizes_the_pool_for_the_applications_executor_targets() -> None:
    dyn = DynAlloc(4.0, max_replicas=16)
    assert dyn.scale_down == DECOMMISSION
    assert dyn.behavior is None  # written without a behavior: the legacy path
    dyn.desired(0.0, _view())
    # Targets 12 + 1 = 13 executors over 4 per worker: 4 (executors needed would say 5).
    view = _view(now=15.0, pending_tasks=13, running_tasks=4, waiting_apps=1, apps=APPS)
    assert dyn.desired(15.0, view) == 4


def test_keda_polls_every_30_s_activates_from_zero_and_cools_down_to_zero() -> None:
    keda = Keda(PoolConfig(max_workers=16), 4.0, max_replicas=16)
    assert keda.scale_down == DECOMMISSION
    empty = _view(current_workers=0, ready_workers=0)
    demand = (AppView(0, 30, 0, 0, 0, 0, True),)
    assert keda.desired(0.0, empty) == 0
    assert keda.desired(15.0, dataclasses.replace(empty, apps=demand)) == 0  # not polled yet
    assert keda.desired(30.0, dataclasses.replace(empty, apps=demand)) == 1  # activation 0 -> 1
    one = _view(current_workers=1, ready_workers=1, apps=demand)
    assert keda.desired(45.0, one) == 4  # the HPA on 30 executors needed: ceil(30 / 4) = 8, at most 4
    # Nothing needed any more, but the HPA's stabilised recommendation of 8 now passes the rate limit.
    assert keda.desired(60.0, _view(current_workers=4, ready_workers=4)) == 8
    idle = _view(current_workers=8, ready_workers=8)
    assert keda.desired(329.0, idle) == 8
    assert keda.desired(330.0, idle) == 0  # 300 s after the last poll that saw executors needed


def _burst_at(at: float, tasks: int, seconds: float = 30.0) -> SparkLoad:
    return from_apps([(at, [[seconds] * tasks])], 2 * at + 100.0)


def test_lower_bound_is_the_task_seconds_over_a_workers_slots() -> None:
    load = _burst_at(1000.0, 20)
    assert lower_bound_worker_hours(load, PoolConfig()) == pytest.approx(20 * 30.0 / 4 / 3600)
    # Two-core executors of one-core tasks: still 4 slots; one-core executors of two-core tasks: 2.
    assert lower_bound_worker_hours(load, PoolConfig(executor_cores=2)) == pytest.approx(20 * 30.0 / 4 / 3600)
    two_cpu = PoolConfig(executor_cores=2, task_cpus=2)
    assert lower_bound_worker_hours(load, two_cpu) == pytest.approx(20 * 30.0 / 2 / 3600)


def test_each_family_has_its_setting_default_and_sweep() -> None:
    load = from_trace_csv(TRACE, seed=2, mean_rate=0.004, duration=86400.0)
    config = PoolConfig(max_workers=16)
    cpu = pool_baseline("hpa-cpu", load, config)
    assert (cpu.default, cpu.sweep, cpu.more_capacity) == (50.0, (40.0, 50.0, 60.0, 70.0, 80.0), "lower")
    for name in ("hpa-queue", "dynalloc", "keda"):
        family = pool_baseline(name, load, config)
        assert family.default == 4.0
        assert min(family.sweep) == 1.0
        assert max(family.sweep) == 16.0
        assert family.default in family.sweep
        assert family.more_capacity == "lower"
        assert not family.integer
    static = pool_baseline("static", load, config)
    assert static.default == static_workers(load, config)
    assert static.default in static.sweep
    assert static.integer
    assert static.more_capacity == "higher"
    assert min(static.sweep) < static.default < max(static.sweep) <= config.max_workers
    assert isinstance(static.make(3.0), Static)
    assert static.make(3.0).desired(0.0, _view()) == 3


def test_static_is_sized_for_the_busiest_window_and_never_scales() -> None:
    config = PoolConfig(max_workers=50)
    load = from_trace_csv(TRACE, seed=2, mean_rate=0.004, duration=86400.0)
    n = static_workers(load, config)
    heavier = from_trace_csv(TRACE, seed=2, mean_rate=0.008, duration=86400.0)
    assert 1 <= n < static_workers(heavier, config) <= 50
    static = Static.for_load(load, config)
    assert {static.desired(t, _view()) for t in (0.0, 3600.0, 80000.0)} == {n}
    assert static_workers(load, dataclasses.replace(config, max_workers=3)) == 3


@pytest.fixture(scope="module")
def short_load() -> SparkLoad:
    return from_trace_csv(TRACE, seed=4, mean_rate=0.004, duration=0.3 * 86400)


@pytest.mark.parametrize("name", POOL_BASELINES)
def test_each_baseline_runs_a_real_trace_to_finite_figures(name: str, short_load: SparkLoad) -> None:
    config = PoolConfig(max_workers=16)
    result = simulate_pool(short_load, make_pool_baseline(name, short_load, config), config)
    assert result.policy == name
    assert 0 < result.worker_hours <= 16 * short_load.duration / 3600 + 1e-9
    assert all(math.isfinite(v) for v in result.summary().values())
    assert result.completed > 0.9 * short_load.task_count
    # Graceful decommission: nothing is ever killed.
    assert result.killed == 0
    assert result.worker_hours >= lower_bound_worker_hours(short_load, config)
    if name == "static":
        assert result.scale_actions == 0


def test_unknown_baseline_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        make_pool_baseline("hpa-memory", _burst_at(10.0, 1), PoolConfig())


def _policy(text_changes: dict[str, str] | None = None) -> tuple[SparkQueuescalePolicy, PoolConfig]:
    text = POLICY.read_text()
    for old, new in (text_changes or {}).items():
        assert old in text
        text = text.replace(old, new)
    policy = parse_policies(text, "policy.yaml")[0][0]
    config = pool_config_for(policy)
    return SparkQueuescalePolicy(policy, config), config


def test_the_pool_is_the_one_the_example_policy_describes() -> None:
    policy = load_policies(POLICY)[0][0]
    config = pool_config_for(policy)
    assert (config.cores_per_worker, config.executor_cores) == (4, 1)
    assert (config.startup_seconds, config.max_workers) == (45.0, 16)


def test_engine_sizes_workers_from_the_executors_the_applications_need() -> None:
    engine, _ = _policy()
    assert engine.scale_down == DECOMMISSION
    assert engine.desired(0.0, _view(current_workers=0, ready_workers=0)) == 1  # minReplicas first
    apps = (AppView(0, 10, 4, 8, 4, 4, False), AppView(1, 3, 0, 0, 0, 0, True))
    view = _view(now=15.0, current_workers=1, ready_workers=1, pending_tasks=13, running_tasks=4, apps=apps)
    # 14 + 3 executors of 1 core at 4 per worker: 5 workers (the next wave is not counted).
    assert engine.desired(15.0, view) == 5


def test_engine_without_decommission_waits_for_idle_workers() -> None:
    engine, _ = _policy({"decommission: true": "decommission: false"})
    assert engine.scale_down == WAIT_IDLE


def test_catalog_values_the_pool_can_stand_in_for() -> None:
    config = PoolConfig()
    apps = (AppView(0, 10, 4, 8, 4, 4, False), AppView(1, 3, 0, 0, 0, 0, True))
    view = _view(pending_tasks=13, running_tasks=4, waiting_apps=1, executors=4, apps=apps, cores_used=4)
    assert catalog_value("spark_waiting_apps", view, config) == 1.0
    assert catalog_value("spark_remaining_tasks", view, config) == 17.0
    assert catalog_value("spark_executors_needed", view, config) == 17.0
    assert catalog_value("spark_pool_cores_used", view, config) == 4.0
    assert catalog_value("trino_queued_queries", view, config) is None
    # A pool-wide task time averages the applications that have completed a task of their active stage.
    assert catalog_value("spark_task_seconds", view, config) is None
    timed = (apps[0]._replace(task_seconds=12.0), apps[1]._replace(task_seconds=4.0), apps[1])
    assert catalog_value("spark_task_seconds", _view(apps=timed), config) == 8.0


def test_engine_on_a_trace_kills_nothing_and_scales_both_ways(short_load: SparkLoad) -> None:
    engine, config = _policy()
    result = simulate_pool(short_load, engine, config)
    assert result.killed == 0
    assert result.scale_actions > 2
    assert 1.0 <= float(np.max(result.desired)) <= config.max_workers
    assert result.completed > 0.9 * short_load.task_count


def test_the_benchmark_policy_keeps_its_backlog_time_equal_to_the_start_up_it_runs_at() -> None:
    [(policy, _)] = load_policies(DEFAULT_POLICY)
    for startup in (60.0, 300.0):
        moved = with_startup(policy, startup)
        [section] = [m.spark_executors for m in moved.spec.metrics if m.spark_executors is not None]
        assert (moved.spec.target.startup_seconds, section.backlog_seconds) == (startup, startup)
    # A backlog time of its own (not tied to the declared start-up) stays as written.
    metrics = [
        m.model_copy(update={"spark_executors": m.spark_executors.model_copy(update={"backlog_seconds": 90})})
        if m.spark_executors is not None
        else m
        for m in policy.spec.metrics
    ]
    own = policy.model_copy(update={"spec": policy.spec.model_copy(update={"metrics": metrics})})
    moved = with_startup(own, 300.0)
    assert [
        m.spark_executors.backlog_seconds for m in moved.spec.metrics if m.spark_executors is not None
    ] == [90]


def test_the_benchmark_tables_give_the_policys_own_wait_beside_its_ratios() -> None:
    def outcome(seed: int, wait: float, ratio: float) -> Outcome:
        case = Case(Path("crane-input0.csv"), 60.0, seed, 7.0, DEFAULT_POLICY)
        found = {("queuescale", name): (ratio, 4.0, False) for name in POOL_BASELINES}
        return Outcome(case, {"queuescale": (100.0, wait, 3)}, 50.0, found, 10, 1.0)

    text = "\n".join(tables([outcome(1, 140.0, 0.8), outcome(2, 160.0, 0.9)], seeds=2))
    [wait_row] = [line for line in text.splitlines() if "p95 task wait" in line]
    assert "| 150 ± " in wait_row
    [keda_row] = [line for line in text.splitlines() if "| keda |" in line]
    assert "| 0.85 ± " in keda_row
    assert "| 2/2 |" in keda_row
