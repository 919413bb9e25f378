"""The Spark pool baselines and queuescale's engine as a pool policy."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autoscaler.policy import load_policies, parse_policies
from autoscaler.sim.spark import DECOMMISSION, WAIT_IDLE, AppView, PoolConfig, PoolView
from autoscaler.sim.spark_baselines import (
    POOL_BASELINES,
    HpaCpu,
    HpaQueue,
    Keda,
    Oracle,
    Static,
    make_pool_baseline,
    static_workers,
)
from autoscaler.sim.spark_cli import pool_config_for
from autoscaler.sim.spark_engine_policy import SparkQueuescalePolicy, catalog_value
from autoscaler.sim.spark_load import SparkLoad, from_apps, from_trace_csv
from autoscaler.sim.spark_run import simulate_pool

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "examples" / "spark-worker-pool.yaml"
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
    hpa = HpaCpu("abrupt", max_replicas=16)
    assert hpa.desired(0.0, _view()) == 1  # the StatefulSet's own count before the first pass
    # 100 % busy at a 50 % target: ceil(2 × 2) = 4.
    assert hpa.desired(15.0, _view(now=15.0, busy_fraction=1.0)) == 4
    # Idle afterwards: the legacy 300 s stabilisation keeps the highest recommendation.
    assert hpa.desired(30.0, _view(now=30.0, current_workers=4, ready_workers=4)) == 4
    assert hpa.desired(316.0, _view(now=316.0, current_workers=4, ready_workers=4)) == 1
    # No ready worker reports utilisation: nothing to compute, hold.
    assert hpa.desired(330.0, _view(now=330.0, current_workers=3, ready_workers=0)) == 3


def test_hpa_queue_asks_one_worker_per_slots_of_pending_tasks() -> None:
    hpa = HpaQueue(per_pod_target=4.0, max_replicas=16)
    hpa.desired(0.0, _view())
    assert hpa.desired(15.0, _view(now=15.0, pending_tasks=14, running_tasks=100)) == 4


def test_keda_polls_every_30_s_activates_from_zero_and_cools_down_to_zero() -> None:
    keda = Keda(per_pod_target=4.0, max_replicas=16)
    empty = _view(current_workers=0, ready_workers=0)
    assert keda.desired(0.0, empty) == 0
    assert keda.desired(15.0, dataclasses.replace(empty, pending_tasks=30)) == 0  # not polled yet
    assert keda.desired(30.0, dataclasses.replace(empty, pending_tasks=30)) == 1  # activation 0 -> 1
    one = _view(current_workers=1, ready_workers=1, pending_tasks=30)
    assert keda.desired(45.0, one) == 4  # the HPA on the polled 30 tasks: ceil(30 / 4) = 8, at most 4
    # Nothing pending any more, but the HPA's stabilised recommendation of 8 now passes the rate limit.
    assert keda.desired(60.0, _view(current_workers=4, ready_workers=4)) == 8
    idle = _view(current_workers=8, ready_workers=8)
    assert keda.desired(329.0, idle) == 8
    assert keda.desired(330.0, idle) == 0  # 300 s after the last poll that saw pending tasks


def _burst_at(at: float, tasks: int, seconds: float = 30.0) -> SparkLoad:
    return from_apps([(at, [[seconds] * tasks])], 2 * at + 100.0)


def test_oracle_asks_for_capacity_one_startup_ahead_of_a_burst_and_covers_the_backlog() -> None:
    config = PoolConfig(max_workers=16, startup_seconds=45.0)
    oracle = Oracle(_burst_at(1000.0, 20), config)
    assert oracle.desired(0.0, _view()) == 0
    assert oracle.desired(930.0, _view()) == 0  # the burst is beyond 45 s + 15 s
    assert oracle.desired(945.0, _view()) == 5  # 20 tasks on 4-slot workers
    # A backlog it did not foresee (Spark ran the work later) still gets capacity.
    assert oracle.desired(2000.0, _view(pending_tasks=9, running_tasks=3)) == 3
    assert oracle.scale_down == DECOMMISSION


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
    if name in ("static", "oracle"):
        assert result.killed == 0
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


def test_engine_on_a_trace_kills_nothing_and_scales_both_ways(short_load: SparkLoad) -> None:
    engine, config = _policy()
    result = simulate_pool(short_load, engine, config)
    assert result.killed == 0
    assert result.scale_actions > 2
    assert 1.0 <= float(np.max(result.desired)) <= config.max_workers
    assert result.completed > 0.9 * short_load.task_count
