"""The decision engine: one pure function from (policy, observation, state) to (decision, new state).

:func:`decide` runs one loop pass:

1. **Proposals**, one per metric of the policy, each metric type in its own module (``value_proposals``,
   ``trino_proposals``, ``spark_proposals``; what a pass works with is in ``state``). External and Prometheus
   metrics use the HPA's arithmetic
   (:func:`autoscaler.decision.hpa.recommend`: Value/AverageValue targets, tolerance); QueueWait sizes Trino workers
   by Erlang C from rates over a sliding window (:func:`autoscaler.decision.queueing.trino_workers_needed`);
   RequiredWorkers proposes the workers queries wait for (scale from zero); SparkExecutors sizes pool workers
   (SparkWorkerPool) or the executors of the next run (spark-operator kinds). The largest proposal wins.
2. **Safety**, the HPA's invalid-metric rule: a missing or stale metric never lets the count drop below the
   current one (scaling up on the others is allowed); with every metric missing the engine holds.
3. **Forecast** (when enabled and two seasons of history exist): the predicted peak of the reactive demand
   over the next ``startupSeconds`` + loop period may only *raise* the proposal.
4. **Schedules**: active windows replace minReplicas/maxReplicas. Overlapping windows combine by the
   *largest floor* and the *largest ceiling* among the fields they set (a window that sets only a floor
   keeps the policy's ceiling unless another window sets one); a floor above the ceiling lifts the ceiling
   (the promised capacity wins).
5. **Behavior and bounds** through :func:`autoscaler.decision.hpa.decide` with the policy's behavior (absent: the
   HPA's legacy path, as :func:`autoscaler.decision.behavior.to_hpa_behavior` gives).

Service time without counters: the queue model needs the mean service time ``S``. With completion or start
counters it is measured (Little's law); the last measured ``S`` is kept in the state and used as the hint
when counters later vanish. Without any measurement, :attr:`EngineConfig.service_seconds_hint` is used; with
no hint either the queue model is skipped and the running + queued queries are packed into worker slots
(the capacity signal of :func:`~autoscaler.decision.queueing.trino_workers_needed`), which the reason says.

Spark applications (SparkApplication, ScheduledSparkApplication): a replica is an executor, and only the
next run can be sized. The engine tracks the peak executors a run needed; during a run it proposes the
larger of that run's peak so far and the previous run's peak, between runs the last run's peak, and before
any run was seen the current count.

Costs: the rate history is sampled at most every :attr:`EngineConfig.rate_sample_seconds`, schedules are
re-evaluated at most once a minute (a cron window opens only on a minute boundary), and the forecast model
is refitted at most every :attr:`EngineConfig.forecast_refit_seconds` on a series of per-step maxima of the
reactive demand (:attr:`EngineConfig.forecast_step_seconds`), between refits it is only evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from autoscaler.decision import hpa
from autoscaler.decision.forecast import Model, NotEnoughHistory, fit
from autoscaler.decision.hpa_behavior import (
    SCALE_DOWN_LIMIT,
    SCALE_DOWN_STABILIZED,
    SCALE_UP_LIMIT,
    SCALE_UP_STABILIZED,
    TOO_FEW_REPLICAS,
    TOO_MANY_REPLICAS,
    resolve_behavior,
    store_scale_event,
)
from autoscaler.decision.signals import Observation, SparkSnapshot, TrinoSnapshot, ValueReading
from autoscaler.decision.spark_proposals import spark_proposals
from autoscaler.decision.state import (
    CLAMPS,
    DEFAULT_CONFIG,
    Decision,
    EngineConfig,
    EngineState,
    Plan,
    Proposal,
    plan_for,
)
from autoscaler.decision.trino_proposals import trino_proposals
from autoscaler.decision.value_proposals import value_proposals
from autoscaler.policy.models import ScalingPolicy, Schedule

__all__ = [
    "CLAMPS",
    "DEFAULT_CONFIG",
    "Decision",
    "EngineConfig",
    "EngineState",
    "Observation",
    "Proposal",
    "SparkSnapshot",
    "TrinoSnapshot",
    "ValueReading",
    "decide",
    "effective_bounds",
    "forecast_trusted",
]

# --- schedules ------------------------------------------------------------------------------------------


def _schedule_active(
    schedules: Sequence[Schedule], now: float, cache: tuple[tuple[bool, float, float], ...]
) -> tuple[tuple[bool, ...], tuple[tuple[bool, float, float], ...]]:
    if len(cache) != len(schedules):
        cache = tuple((False, math.inf, -math.inf) for _ in schedules)
    fresh: list[tuple[bool, float, float]] = []
    moment: datetime | None = None
    for schedule, (active, checked_at, valid_until) in zip(schedules, cache, strict=True):
        # Each entry holds from its check until valid_until; a clock that went back re-checks too.
        if now >= valid_until or now < checked_at:
            checked_at = now
            moment = moment or datetime.fromtimestamp(now, tz=UTC)
            start = schedule.last_start(moment).timestamp()
            end = start + schedule.duration_seconds
            active = now < end
            # Open: nothing changes before the window ends. Closed: a window opens only on a minute.
            valid_until = end if active else (math.floor(now / 60.0) + 1) * 60.0
        fresh.append((active, checked_at, valid_until))
    return tuple(a for a, _, _ in fresh), tuple(fresh)


def effective_bounds(policy: ScalingPolicy, active: Sequence[bool]) -> tuple[int, int, bool, bool]:
    """``(min, max, floor_from_schedule, ceiling_from_schedule)`` for the given active schedules."""
    spec = policy.spec
    floors = [
        s.min_replicas
        for s, a in zip(spec.schedules, active, strict=True)
        if a and s.min_replicas is not None
    ]
    ceilings = [
        s.max_replicas
        for s, a in zip(spec.schedules, active, strict=True)
        if a and s.max_replicas is not None
    ]
    lo = max(floors) if floors else spec.min_replicas
    hi = max(ceilings) if ceilings else spec.max_replicas
    hi = max(hi, lo)
    return lo, hi, bool(floors), bool(ceilings)


# --- forecast -------------------------------------------------------------------------------------------


def _forecast_record(
    state: EngineState, plan: Plan, config: EngineConfig, now: float, value: float | None
) -> EngineState:
    step = config.forecast_step_seconds
    bucket = math.floor(now / step) * step
    start = state.forecast_bucket_start
    v = math.nan if value is None else value
    if start is None or bucket < start:
        return replace(state, forecast_bucket_start=bucket, forecast_bucket_max=v)
    if bucket == start:
        if math.isnan(v):
            return state
        m = state.forecast_bucket_max
        return replace(state, forecast_bucket_max=v if math.isnan(m) or v > m else m)
    gaps = min(round((bucket - start) / step) - 1, plan.max_history)
    series = (*state.forecast_series, state.forecast_bucket_max, *([math.nan] * gaps))
    if len(series) > plan.max_history:
        series = series[-plan.max_history :]
    return replace(state, forecast_series=series, forecast_bucket_start=bucket, forecast_bucket_max=v)


def _forecast_peak(
    state: EngineState, plan: Plan, config: EngineConfig, now: float
) -> tuple[EngineState, float | None]:
    step = config.forecast_step_seconds
    if state.forecast_bucket_start is None or len(state.forecast_series) < 2 * plan.season_steps:
        return state, None
    spec = plan.policy.spec
    lead = min(spec.target.startup_seconds + config.loop_seconds, float(spec.forecast.horizon_seconds))
    bucket_start = state.forecast_bucket_start
    if state.forecast_model is None or now >= state.forecast_next_fit:
        state = _forecast_skill(state, config, lead)
        try:
            model: Model | None = fit(
                np.asarray(state.forecast_series, dtype=np.float64),
                step,
                plan.policy.spec.forecast.season_seconds,
                plan.method,
            )
        except NotEnoughHistory:
            model = None
        state = replace(
            state,
            forecast_model=model,
            forecast_fit_end=bucket_start,
            forecast_next_fit=now + config.forecast_refit_seconds,
            forecast_peak_cache=None,
        )
    model = state.forecast_model
    if model is None:
        return state, None
    first = math.floor((now - state.forecast_fit_end) / step) + 1
    last = math.floor((now + lead - state.forecast_fit_end) / step) + 1
    cache = state.forecast_peak_cache
    if cache is not None and cache[0] == state.forecast_fit_end and cache[1] == first and cache[2] == last:
        return state, cache[3]
    peak = float(model.predict(last)[first - 1 : last].max())
    return replace(state, forecast_peak_cache=(state.forecast_fit_end, first, last, peak)), peak


def _forecast_skill(state: EngineState, config: EngineConfig, lead_seconds: float) -> EngineState:
    """Score the outgoing model on the steps completed since it was fitted (out of sample).

    Per step, against what came (``a``, the step's peak demand): reacting alone starts from the previous
    step's level ``p`` and runs short by ``a − p`` only for ``lead_seconds`` (start-up plus a loop) before
    it catches up; with the forecast the engine holds ``c = max(p, forecast)``, runs short by ``a − c`` for
    the same lead, and pays ``c − max(a, p)`` for the whole step where it over-shot. Running short weighs
    :attr:`EngineConfig.forecast_under_weight` times more. The sums decay per step so the record follows a
    changing load.
    """
    model = state.forecast_model
    start = state.forecast_bucket_start
    if model is None or start is None:
        return state
    step = config.forecast_step_seconds
    n = round((start - state.forecast_fit_end) / step)
    series = state.forecast_series
    if n < 1 or len(series) < n + 1:
        return state
    actual = np.asarray(series[-n:], dtype=np.float64)
    previous = np.asarray(series[-n - 1 : -1], dtype=np.float64)
    predicted = model.predict(n)[:n]
    ok = ~(np.isnan(actual) | np.isnan(previous) | np.isnan(predicted))
    if not ok.any():
        return state
    short = config.forecast_under_weight * min(1.0, lead_seconds / step)
    decay = config.forecast_skill_decay ** np.arange(n - 1, -1, -1, dtype=np.float64)[ok]
    a, prev = actual[ok], previous[ok]
    held = np.maximum(prev, predicted[ok])
    with_loss = short * np.maximum(a - held, 0.0) + np.maximum(held - np.maximum(a, prev), 0.0)
    alone_loss = short * np.maximum(a - prev, 0.0)
    kept = config.forecast_skill_decay**n
    with_fc, alone = state.forecast_skill
    return replace(
        state,
        forecast_skill=(
            with_fc * kept + float((with_loss * decay).sum()),
            alone * kept + float((alone_loss * decay).sum()),
        ),
    )


def forecast_trusted(state: EngineState) -> bool:
    """Whether the forecast has an out-of-sample record and it beats reacting alone: trust is earned."""
    with_fc, alone = state.forecast_skill
    return with_fc < alone


# --- the decision ---------------------------------------------------------------------------------------


def _lift_from_zero(
    state: hpa.HpaState, now: float, floor: int, behavior: hpa.Behavior | None
) -> hpa.HpaStep:
    """A schedule's floor lifting a target at zero whose policy allows zero.

    The HPA leaves a target at 0 alone when its minReplicas is above 0 (``ScalingDisabled``: someone scaled
    it to zero by hand). Here zero is the policy's own floor, so the schedule's floor applies as the HPA's
    below-minimum guard would: straight to the floor, the scale-up recorded as an event.
    """
    rules = resolve_behavior(behavior) if behavior is not None else None
    up, down = store_scale_event(rules, state.scale_up_events, state.scale_down_events, 0, floor, now)
    recommendations = state.recommendations
    if not state.initialized and not recommendations:
        recommendations = (hpa.TimestampedRecommendation(0, now),)
    return hpa.HpaStep(floor, hpa.HpaState(recommendations, up, down, True), hpa.BELOW_MIN_REPLICAS)


def _clamp_of(reason: str, floor_from_schedule: bool, ceiling_from_schedule: bool) -> str | None:
    if reason in (TOO_FEW_REPLICAS, hpa.BELOW_MIN_REPLICAS):
        return "schedule" if floor_from_schedule else "min"
    if reason in (TOO_MANY_REPLICAS, hpa.ABOVE_MAX_REPLICAS):
        return "schedule" if ceiling_from_schedule else "max"
    if reason in (SCALE_UP_LIMIT, SCALE_DOWN_LIMIT):
        return "behavior"
    if reason in (SCALE_UP_STABILIZED, SCALE_DOWN_STABILIZED):
        return "stabilization"
    return None


def decide(
    policy: ScalingPolicy,
    obs: Observation,
    state: EngineState,
    config: EngineConfig = DEFAULT_CONFIG,
) -> tuple[Decision, EngineState]:
    """One loop pass: the replica count for ``obs`` under ``policy``, with its reasons and the next state."""
    plan = state.plan
    if plan is None or plan.policy is not policy:
        plan = plan_for(policy, config)
        state = replace(state, plan=plan, schedule_cache=())
    spec = policy.spec
    now = obs.now
    current = obs.current_replicas
    ready = obs.ready_replicas if obs.ready_replicas is not None else current

    slots: list[Proposal | None] = [None] * len(spec.metrics)
    value_proposals(plan, obs, current, ready, slots)
    state, limit_bound, limit_reason = trino_proposals(plan, obs, state, config, slots)
    state = spark_proposals(plan, obs, state, slots)
    proposals = tuple(p for p in slots if p is not None)

    valid = [p for p in proposals if p.replicas is not None]
    invalid = len(proposals) - len(valid)
    reasons: list[str] = []
    reactive: int | None = None
    winner: str | None = None
    for p in valid:
        assert p.replicas is not None
        if reactive is None or p.replicas > reactive:
            reactive, winner = p.replicas, p.name
    if reactive is not None and winner is not None:
        reasons.append(f"{winner} wins with {reactive} replicas")

    forecast: float | None = None
    raw = reactive
    if spec.forecast.enabled:
        state = _forecast_record(
            state, plan, config, now, float(reactive) if reactive is not None and not invalid else None
        )
        state, forecast = _forecast_peak(state, plan, config, now)
        if forecast is not None and reactive is not None and not forecast_trusted(state):
            with_fc, alone = state.forecast_skill
            reasons.append(
                f"forecast not used: on the load it had not seen, scaling with it would have cost "
                f"{with_fc:.3g} against {alone:.3g} reacting alone (worker-steps, running short weighted "
                f"{config.forecast_under_weight:g}x)"
            )
        elif forecast is not None and reactive is not None:
            wanted = math.ceil(forecast - 1e-9)
            if wanted > reactive:
                raw = wanted
                reasons.append(
                    f"forecast: demand peaks at {forecast:.3g} within the next start-up time, "
                    f"so scale up ahead to {wanted} (reactive signals need {reactive})"
                )
                winner = "forecast"
            else:
                reasons.append(f"forecast peak {forecast:.3g} does not exceed the reactive {reactive}")

    held_for_safety = False
    if raw is None:
        held_for_safety = True
        reasons.append(
            "no metric could be used (all missing or stale): hold" if proposals else "no metric: hold"
        )
    elif invalid and raw < current:
        missing = ", ".join(p.name for p in proposals if p.replicas is None)
        reasons.append(
            f"{invalid} metric(s) missing or stale ({missing}): the others propose {raw} < {current}, "
            "which is refused, so hold"
        )
        raw, held_for_safety = None, True
    elif invalid:
        missing = ", ".join(p.name for p in proposals if p.replicas is None)
        reasons.append(f"{invalid} metric(s) missing or stale ({missing}): scaling up or holding only")
    if limit_reason is not None:
        reasons.append(limit_reason)

    active, cache = _schedule_active(spec.schedules, now, state.schedule_cache)
    lo, hi, floor_sched, ceil_sched = effective_bounds(policy, active)
    names = tuple(s.name for s, a in zip(spec.schedules, active, strict=True) if a)
    if names:
        reasons.append(f"schedule {', '.join(names)} active: bounds [{lo}, {hi}]")

    if current == 0 and lo > 0 and spec.min_replicas == 0:
        result = _lift_from_zero(state.hpa, now, lo, plan.behavior)
    else:
        result = hpa.decide(state.hpa, now, current, raw, lo, max(hi, 1), plan.behavior)
    replicas = min(result.replicas, hi)
    clamped = _clamp_of(result.reason, floor_sched, ceil_sched)
    if replicas < result.replicas:
        clamped = "schedule" if ceil_sched else "max"
    if clamped is None and held_for_safety and result.reason == hpa.FAILED_COMPUTE_METRICS_REPLICAS:
        clamped = "safety"
    if result.reason == hpa.SCALING_DISABLED:
        reasons.append(
            f"the target is at 0 replicas with minReplicas {lo} > 0: scaling is disabled, as the HPA does"
        )
    if clamped is not None and clamped != "safety":
        target = raw if raw is not None else current
        reasons.append(f"clamped by {clamped} ({result.reason}): {target} → {replicas}")
    reasons.append(f"decision: {current} → {replicas}" + (" (dry run: not applied)" if spec.dry_run else ""))
    decision = Decision(
        replicas=replicas,
        current=current,
        proposals=proposals,
        winner=winner if not held_for_safety else None,
        clamped_by=clamped,
        forecast=forecast,
        reasons=tuple(reasons),
        limit_bound=limit_bound,
        dry_run=spec.dry_run,
        min_replicas=lo,
        max_replicas=hi,
        schedules=names,
        hpa_reason=result.reason,
    )
    return decision, replace(state, hpa=result.state, schedule_cache=cache, last=decision)
