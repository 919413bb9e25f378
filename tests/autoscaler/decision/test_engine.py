"""The decision engine: HPA equivalence, queue sizing, safety, forecast, schedules, Spark, and reasons."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autoscaler.decision import hpa
from autoscaler.decision.engine import (
    CLAMPS,
    Decision,
    EngineConfig,
    EngineState,
    Observation,
    SparkSnapshot,
    TrinoSnapshot,
    ValueReading,
    decide,
    effective_bounds,
)
from autoscaler.decision.queueing import GroupLoad
from autoscaler.decision.spark_sizing import AppDemand
from autoscaler.policy.loading import load_policies
from autoscaler.policy.models import ScalingPolicy

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def example(name: str) -> ScalingPolicy:
    return load_policies(EXAMPLES / name)[0][0]


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def trino_policy(spec: dict[str, Any]) -> ScalingPolicy:
    """A TrinoWorkers policy with ``spec`` merged over a minimal target."""
    base: dict[str, Any] = {
        "target": {
            "kind": "TrinoWorkers",
            "workload": {"kind": "Deployment", "name": "w"},
            "trino": {"cluster": "c", "coordinatorUrl": "http://t:8080", "version": 478, "slotsPerWorker": 4},
        },
        "minReplicas": 0,
        "maxReplicas": 20,
    }
    target_extra = spec.pop("target", {})
    base["target"].update(target_extra)
    base.update(spec)
    return ScalingPolicy.model_validate(
        {
            "apiVersion": "queuescale.io/v1alpha1",
            "kind": "ScalingPolicy",
            "metadata": {"name": "p"},
            "spec": base,
        }
    )


def external(name: str, average: str) -> dict[str, Any]:
    return {
        "type": "External",
        "external": {"metric": {"name": name}, "target": {"type": "AverageValue", "averageValue": average}},
    }


def assert_explained(d: Decision) -> None:
    """Every decision names its winner (unless it held) and its clamp in the reasons."""
    text = " | ".join(d.reasons)
    if d.winner is not None:
        assert d.winner in text
    else:
        assert "hold" in text
    assert d.clamped_by is None or d.clamped_by in CLAMPS
    if d.clamped_by not in (None, "safety"):
        assert f"clamped by {d.clamped_by}" in text
    assert d.min_replicas <= d.replicas <= d.max_replicas or d.hpa_reason == hpa.SCALING_DISABLED


# --- HPA equivalence ------------------------------------------------------------------------------------


def test_hpa_equivalent_policy_replays_like_the_hpa() -> None:
    policy = example("hpa-equivalent.yaml")
    target = hpa.ExternalTarget("AverageValue", 4.0, "trino_queued_queries")
    rng = random.Random(7)
    state = EngineState()
    hstate = hpa.HpaState()
    current = hcurrent = 1
    now = 1_000_000.0
    clamps: set[str | None] = set()
    for i in range(400):
        # A load that rises, plateaus and falls, with noise and occasional unreadable polls.
        phase = i % 160
        level = 60 if 30 <= phase < 90 else 4
        value: float | None = max(0.0, level + rng.gauss(0, 6))
        if rng.random() < 0.05:
            value = None
        d, state = decide(policy, Observation(now, current, (ValueReading(value),)), state)
        rec = hpa.recommend([(target, value)], hcurrent, hcurrent)
        hcurrent, hstate, _ = hpa.step(hstate, now, hcurrent, rec.replicas, 1, 20, None)
        assert d.replicas == hcurrent, f"step {i}"
        assert_explained(d)
        clamps.add(d.clamped_by)
        current = d.replicas
        now += 15.0
    # The replay exercised the down-stabilisation window, the scale-up limit and the missing-metric rule.
    assert {"stabilization", "behavior", "safety"} <= clamps


# --- Trino queue sizing ---------------------------------------------------------------------------------

QUEUE_POLICY = {
    "metrics": [{"type": "QueueWait", "queueWait": {"targetSeconds": 0.001, "percentile": 80}}],
    "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 100, "periodSeconds": 15}]}},
}


def test_reference_example_through_the_engine() -> None:
    # REFERENCE §6: λ = 0.5/s, S = 40 s → A = 20; P(wait) <= 0.2 needs 26 slots = 7 workers of 4 slots.
    # A p80 wait of (almost) zero is P(wait) <= 0.2; steady state: 20 running, 0.5 completions per second.
    policy = trino_policy(dict(QUEUE_POLICY))
    state = EngineState()
    now = 5_000_000.0
    d: Decision | None = None
    for k in range(61):
        snap = TrinoSnapshot(queued=0, running=20, completed_total=1000 + 2.5 * k)
        d, state = decide(
            policy, Observation(now + 5 * k, 4, trino=snap), state, EngineConfig(loop_seconds=5)
        )
    assert d is not None
    (p,) = d.proposals
    assert p.replicas == 7
    assert d.replicas == 7
    assert d.winner == "QueueWait"
    assert "λ=0.5/s" in p.reason
    assert "S=40s" in p.reason
    assert_explained(d)


@pytest.mark.parametrize(
    ("limit", "expect_limit_bound"),
    [
        # The group runs 5 of at most 5 with 10 queued: adding workers would not start them.
        (5, True),
        # Control: same counts under a high limit are real demand and scale up.
        (100, False),
    ],
)
def test_limit_bound_queue_does_not_scale_up(limit: int, expect_limit_bound: bool) -> None:
    policy = trino_policy(dict(QUEUE_POLICY))
    snap = TrinoSnapshot(queued=10, running=5, groups=(GroupLoad("global", 10, 5, limit),))
    d, _ = decide(policy, Observation(1e6, 2, trino=snap), EngineState())
    assert d.limit_bound is expect_limit_bound
    if expect_limit_bound:
        assert d.replicas <= 2
        assert any("limit-bound" in r and "hardConcurrencyLimit" in r for r in d.reasons)
    else:
        assert d.replicas > 2
    assert_explained(d)


def test_required_workers_scale_from_zero() -> None:
    policy = example("trino-workers-deployment.yaml")
    # A Sunday: the business-hours floor is closed; no forecast history yet.
    now = ts("2026-03-01T12:00:00")
    values = (None, None, ValueReading(0.0))
    idle, state = decide(policy, Observation(now, 0, values, trino=TrinoSnapshot(0, 0)), EngineState())
    assert idle.replicas == 0
    d, _ = decide(
        policy, Observation(now + 15, 0, values, trino=TrinoSnapshot(0, 0, required_workers=3)), state
    )
    assert d.replicas == 3
    assert d.winner == "RequiredWorkers"
    assert_explained(d)


# --- safety ---------------------------------------------------------------------------------------------

SAFETY_CASES = [
    # One metric asks for more, the other is missing: scaling up is allowed.
    ((ValueReading(40.0), None), 10),
    # One asks for fewer, the other is missing: refused, hold at the current 5.
    ((ValueReading(4.0), None), 5),
    # One asks for fewer, the other is stale: same as missing.
    ((ValueReading(4.0), ValueReading(100.0, stale=True)), 5),
    # Both missing: hold.
    ((None, None), 5),
    # Both stale: hold.
    ((ValueReading(1.0, stale=True), ValueReading(1.0, stale=True)), 5),
    # Control: both readable and low → scales down (no down-stabilisation in this policy).
    ((ValueReading(4.0), ValueReading(4.0)), 1),
]


@pytest.mark.parametrize(("values", "expected"), SAFETY_CASES)
def test_missing_or_stale_metric_never_scales_down(
    values: tuple[ValueReading | None, ...], expected: int
) -> None:
    policy = trino_policy(
        {
            "minReplicas": 1,
            "metrics": [external("trino_queued_queries", "4"), external("trino_running_queries", "4")],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
        }
    )
    d, _ = decide(policy, Observation(1e6, 5, values), EngineState(hpa=hpa.HpaState(initialized=True)))
    assert d.replicas == expected
    if expected == 5:
        assert d.clamped_by == "safety"
        assert d.winner is None
    assert_explained(d)


# --- forecast -------------------------------------------------------------------------------------------


def daily_demand(t: float, rng: np.random.Generator) -> float:
    hour = (t % 86400) / 3600
    base = 20.0 if 8 <= hour < 18 else 2.0
    return float(max(0.0, base + rng.normal(0, 0.5)))


def run_forecast(
    enabled: bool, demand: Callable[[float, np.random.Generator], float] = daily_demand
) -> tuple[Decision, list[tuple[int, Decision]]]:
    policy = trino_policy(
        {
            "target": {"startupSeconds": 600},
            "metrics": [external("trino_queued_queries", "1")],
            "behavior": {
                "scaleUp": {"policies": [{"type": "Pods", "value": 100, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 0},
            },
            "forecast": {
                "enabled": enabled,
                "horizonSeconds": 900,
                "seasonSeconds": 86400,
                "historySeconds": 3 * 86400,
            },
        }
    )
    config = EngineConfig(loop_seconds=300, forecast_step_seconds=300, forecast_refit_seconds=3 * 3600)
    rng = np.random.default_rng(42)
    start = ts("2026-01-05T00:00:00")
    state = EngineState()
    current = 2
    seen: list[tuple[int, Decision]] = []
    t = start
    # Three days of history, then day four up to 07:50, ten minutes before the daily rise at 08:00.
    end = start + 3 * 86400 + 7 * 3600 + 50 * 60
    while t <= end:
        value = demand(t, rng)
        d, state = decide(policy, Observation(t, current, (ValueReading(value),)), state, config)
        seen.append((math.ceil(value), d))
        current = d.replicas
        t += 300
    return seen[-1][1], seen


def test_forecast_scales_up_ahead_of_a_daily_rise_and_never_below_reactive() -> None:
    with_fc, history = run_forecast(True)
    without, _ = run_forecast(False)
    # Without a forecast the engine follows the night's load at 07:50; with one it is ready for 08:00.
    assert without.replicas <= 3
    assert with_fc.winner == "forecast"
    assert with_fc.forecast is not None
    assert with_fc.replicas >= 15
    assert any("forecast" in r and "ahead" in r for r in with_fc.reasons)
    assert_explained(with_fc)
    # Never below what the reactive signal asks, at any pass.
    for reactive_need, d in history:
        reactive = max(p.replicas or 0 for p in d.proposals)
        assert d.replicas >= min(reactive, d.max_replicas), (reactive_need, d.reasons)


def spiky_demand(t: float, rng: np.random.Generator) -> float:
    """Short bursts at random times on a low base: no daily cycle to learn from."""
    return 25.0 if rng.random() < 0.08 else 2.0


def test_a_forecast_without_a_record_of_beating_reaction_is_not_used() -> None:
    last, history = run_forecast(True, spiky_demand)
    # Bursts at random: a seasonal model learns phantom peaks and over-shoots; its out-of-sample record
    # shows it, so the engine reacts alone and says why.
    skipped = [d for _, d in history if any(r.startswith("forecast not used") for r in d.reasons)]
    assert skipped
    assert not any(d.winner == "forecast" for d in skipped)
    # Trust is earned: before the first scored refit the forecast is never used either.
    assert all(d.winner != "forecast" for _, d in history[: 2 * 288])
    assert_explained(last)


def test_a_forecast_that_predicts_the_daily_rise_earns_trust() -> None:
    _, history = run_forecast(True)
    used = [d for _, d in history if d.winner == "forecast"]
    assert used
    assert not any(r.startswith("forecast not used") for r in used[-1].reasons)


# --- schedules ------------------------------------------------------------------------------------------

SCHEDULE_CASES = [
    # Winter Monday 08:30 CET (07:30 UTC): the window is open, floor 5.
    ("2026-01-12T07:30:00", True),
    # Winter Monday 07:30 CET (06:30 UTC): before the window.
    ("2026-01-12T06:30:00", False),
    # Summer Monday 08:30 CEST (06:30 UTC): open, so the window follows Berlin's clock across DST.
    ("2026-07-13T06:30:00", True),
    # Summer Monday 07:30 CEST (05:30 UTC): closed.
    ("2026-07-13T05:30:00", False),
    # Winter Monday 17:30 CET: still open (08:00 + 10 h).
    ("2026-01-12T16:30:00", True),
    # Winter Monday 18:30 CET: closed again.
    ("2026-01-12T17:30:00", False),
    # Saturday 10:00 CET: weekdays only.
    ("2026-01-10T09:00:00", False),
]


@pytest.mark.parametrize(("when", "active"), SCHEDULE_CASES)
def test_business_hours_floor_in_berlin(when: str, active: bool) -> None:
    policy = example("trino-workers-deployment.yaml")
    now = ts(when)
    values = (None, None, ValueReading(0.0))
    d, _ = decide(policy, Observation(now, 0, values, trino=TrinoSnapshot(0, 0)), EngineState())
    assert (d.schedules == ("business-hours",)) is active
    assert (d.min_replicas, d.max_replicas) == ((5, 30) if active else (0, 20))
    assert d.replicas == (5 if active else 0)
    if active:
        assert d.clamped_by == "schedule"
    assert_explained(d)


@pytest.mark.parametrize(
    ("when", "ceiling"),
    [
        # Inside the window the schedule's ceiling of 30 holds.
        ("2026-01-12T09:00:00", 30),
        # Outside, the policy's 20.
        ("2026-01-11T09:00:00", 20),
    ],
)
def test_ceiling_and_bounds_hold_under_heavy_load(when: str, ceiling: int) -> None:
    policy = example("trino-workers-deployment.yaml")
    state = EngineState()
    current = 0
    now = ts(when)
    for k in range(40):
        values = (None, None, ValueReading(1000.0))
        obs = Observation(now + 15 * k, current, values, trino=TrinoSnapshot(400, 200, required_workers=2))
        d, state = decide(policy, obs, state)
        assert d.min_replicas <= d.replicas <= d.max_replicas == ceiling
        assert_explained(d)
        current = d.replicas
    assert current == ceiling
    assert d.clamped_by == ("schedule" if ceiling == 30 else "max")


def test_overlapping_schedules_take_the_largest_floor_and_ceiling() -> None:
    policy = trino_policy(
        {
            "minReplicas": 1,
            "metrics": [external("trino_queued_queries", "4")],
            "schedules": [
                {"name": "a", "cron": "0 8 * * *", "durationSeconds": 3600, "minReplicas": 3},
                {
                    "name": "b",
                    "cron": "0 8 * * *",
                    "durationSeconds": 3600,
                    "minReplicas": 6,
                    "maxReplicas": 8,
                },
                {"name": "c", "cron": "0 8 * * *", "durationSeconds": 3600, "maxReplicas": 4},
            ],
        }
    )
    # Floors 3 and 6 → 6; ceilings 8 and 4 → 8; none set by a → policy defaults do not join in.
    assert effective_bounds(policy, [True, True, True]) == (6, 8, True, True)
    # A floor above every set ceiling lifts the ceiling: the promised capacity wins.
    assert effective_bounds(policy, [True, False, True]) == (3, 4, True, True)
    assert effective_bounds(policy, [False, True, False]) == (6, 8, True, True)
    assert effective_bounds(policy, [False, False, False]) == (1, 20, False, False)


# --- Spark ----------------------------------------------------------------------------------------------


def test_spark_worker_pool_workers_from_executors() -> None:
    policy = example("spark-worker-pool.yaml")
    # 30 + 9 one-core tasks → 39 executors of 1 core; 4 executors per worker → 10 workers.
    snap = SparkSnapshot(apps=(AppDemand("a", 30), AppDemand("b", 9)), workers_alive=2)
    d, _ = decide(policy, Observation(1e6, 2, (None, ValueReading(0.0)), spark=snap), EngineState())
    spark = d.proposals[0]
    assert spark.type == "SparkExecutors"
    assert spark.replicas == 10
    assert spark.value == 39
    assert d.winner == "SparkExecutors"
    # Default scale-up behavior: at most 4 pods or 100% per 15 s from 2 → 6.
    assert d.replicas == 6
    assert d.clamped_by == "behavior"
    assert_explained(d)


def _with_backlog(policy: ScalingPolicy, seconds: int) -> ScalingPolicy:
    metrics = list(policy.spec.metrics)
    section = metrics[0].spark_executors
    assert section is not None
    metrics[0] = metrics[0].model_copy(
        update={"spark_executors": section.model_copy(update={"backlog_seconds": seconds})}
    )
    return policy.model_copy(update={"spec": policy.spec.model_copy(update={"metrics": metrics})})


def test_spark_pool_backlog_adds_only_workers_for_work_left_after_startup() -> None:
    policy = _with_backlog(example("spark-worker-pool.yaml"), 60)
    # 2 ready workers of 4 one-core executors; 39 tasks of 20 s = 780 core-s; during the 45 s start-up the
    # 8 ready cores do 360 core-s; the other 420 in 60 s need 7 cores → 2 workers, as many as there are.
    apps = (AppDemand("a", 30, task_seconds=20.0), AppDemand("b", 9, task_seconds=20.0))
    snap = SparkSnapshot(apps=apps, workers_alive=2)
    d, state = decide(policy, Observation(1e6, 2, (None, ValueReading(0.0)), spark=snap), EngineState())
    spark = d.proposals[0]
    assert spark.value == 39  # executors needed is still Spark's figure
    assert spark.replicas == 2  # never below the workers already there
    assert "on the work" in spark.reason
    assert "360 done by 2 ready workers" in spark.reason
    assert state.spark_task_seconds == 20.0
    # Tasks of 100 s: 3,900 core-s, 360 done meanwhile, 3,540 in 60 s → 59 cores → 15 workers; the slot
    # count (10) is the ceiling.
    slow = tuple(AppDemand(a.app_id, a.remaining_tasks, task_seconds=100.0) for a in apps)
    d, _ = decide(
        policy,
        Observation(1e6, 2, (None, ValueReading(0.0)), spark=SparkSnapshot(apps=slow, workers_alive=2)),
        EngineState(),
    )
    assert d.proposals[0].replicas == 10
    assert "on the work" not in d.proposals[0].reason


def test_spark_pool_backlog_uses_the_last_measured_task_time_until_a_task_completes() -> None:
    policy = _with_backlog(example("spark-worker-pool.yaml"), 60)
    fresh = SparkSnapshot(apps=(AppDemand("new", 40),), workers_alive=0)
    obs = Observation(1e6, 0, (None, ValueReading(0.0)), spark=fresh)
    # Nothing measured yet: every task gets a slot (40 executors → 10 workers), as without backlogSeconds.
    d, _ = decide(policy, obs, EngineState())
    assert d.proposals[0].replicas == 10
    # Tasks of 6 s measured on an earlier pass: 240 core-s in 60 s → 4 cores → 1 worker.
    d, _ = decide(policy, obs, EngineState(spark_task_seconds=6.0))
    assert d.proposals[0].replicas == 1
    assert_explained(d)


def test_scheduled_spark_application_sizes_the_next_run() -> None:
    policy = example("spark-scheduled-application.yaml")
    cores = 2  # executorCores of the example: two tasks per executor
    steps = [
        # Before any run: nothing known, keep the current count.
        ((), 2),
        # A run with 60 tasks left needs 30 executors of 2 cores.
        ((AppDemand("run-1", 60),), 60 // cores),
        # Later in the run only 20 tasks remain: the run's peak still counts.
        ((AppDemand("run-1", 20),), 30),
        # Between runs: the next run gets what the last one needed.
        ((), 30),
        # The next, smaller run: its own peak or the previous run's, whichever is larger.
        ((AppDemand("run-2", 8),), 30),
        # After it: the smaller run's peak now sizes the next one.
        ((), 4),
    ]
    state = EngineState()
    now = ts("2026-01-05T01:00:00")
    for apps, expected in steps:
        d, state = decide(policy, Observation(now, 2, spark=SparkSnapshot(apps=apps)), state)
        assert d.proposals[0].replicas == expected, d.proposals[0].reason
        assert_explained(d)
        now += 60


def test_dry_run_decides_and_flags() -> None:
    policy = example("spark-application.yaml")
    snap = SparkSnapshot(apps=(AppDemand("run", 10),))
    d, _ = decide(policy, Observation(1e6, 2, spark=snap), EngineState())
    assert d.dry_run
    assert d.replicas == 4
    assert any("dry run" in r for r in d.reasons)


SERVICE_CASES = [
    # Counters throughout: S = 40 s measured → the REFERENCE example's 7 workers.
    (True, True, None, 7, "completion counter"),
    # Counters vanish after 5 minutes: the S learnt from them sizes the queue model → still 7.
    (True, False, None, 7, "learnt earlier from the counters"),
    # Never any counter, no hint: the queue model is skipped, 20 running pack into 5 workers of 4 slots.
    (False, False, None, 5, "queue model skipped"),
    # Never any counter, a configured hint of 40 s: the queue model runs on it → 7.
    (False, False, 40.0, 7, "(service time configured)"),
]


@pytest.mark.parametrize(("counters_first", "counters_later", "hint", "workers", "said"), SERVICE_CASES)
def test_service_time_fallback(
    counters_first: bool, counters_later: bool, hint: float | None, workers: int, said: str
) -> None:
    policy = trino_policy(dict(QUEUE_POLICY))
    config = EngineConfig(loop_seconds=5, service_seconds_hint=hint)
    state = EngineState()
    d: Decision | None = None
    for k in range(121):
        counters = counters_first if k <= 60 else counters_later
        snap = TrinoSnapshot(queued=0, running=20, completed_total=2.5 * k if counters else None)
        d, state = decide(policy, Observation(1e6 + 5 * k, 4, trino=snap), state, config)
    assert d is not None
    assert d.proposals[0].replicas == workers
    assert said in d.proposals[0].reason


def test_queries_outliving_the_window_keep_their_workers() -> None:
    # 20 queries run for good: once the counters stop moving, a whole window passes without a start or an
    # end. The service time learnt before still sizes the 20 running (7 workers), not an arrival rate of 0.
    policy = trino_policy(dict(QUEUE_POLICY))
    config = EngineConfig(loop_seconds=5)
    state = EngineState()
    d: Decision | None = None
    replicas = 4
    for k in range(241):
        total = 2.5 * min(k, 60)
        snap = TrinoSnapshot(queued=0, running=20, started_total=total, completed_total=total)
        d, state = decide(policy, Observation(1e6 + 5 * k, replicas, trino=snap), state, config)
        replicas = d.replicas
    assert d is not None
    assert d.replicas == 7
    assert "learnt earlier from the counters" in d.proposals[0].reason
