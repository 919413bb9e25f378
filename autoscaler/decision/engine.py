"""The decision engine: one pure function from (policy, observation, state) to (decision, new state).

:func:`decide` runs one loop pass:

1. **Proposals**, one per metric of the policy. External and Prometheus metrics use the HPA's arithmetic
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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np

from autoscaler.decision import hpa
from autoscaler.decision.behavior import to_hpa_behavior
from autoscaler.decision.forecast import Method, Model, NotEnoughHistory, fit, season_steps
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
from autoscaler.decision.queueing import (
    QueueObservation,
    TrinoLoad,
    WaitTarget,
    estimate_rates,
    trino_workers_needed,
)
from autoscaler.decision.signals import Observation, SparkSnapshot, TrinoSnapshot, ValueReading
from autoscaler.decision.spark_sizing import AppDemand, pool_workers_needed
from autoscaler.decision.work_sizing import (
    DEFAULT_SHARE,
    WorkLoad,
    concurrency_limit,
    cpu_per_query,
    query_share,
    workers_for_work,
)
from autoscaler.policy.models import SPARK_APPLICATION_KINDS, MetricSpec, ScalingPolicy, Schedule
from core.spark_executors import executors_needed

__all__ = [
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

#: The values :attr:`Decision.clamped_by` takes besides None.
CLAMPS = ("min", "max", "schedule", "behavior", "stabilization", "safety")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Engine settings that are not part of a policy (they concern the loop, not the workload)."""

    #: Seconds between passes; added to the forecast's lead time (a decision acts until the next pass).
    loop_seconds: float = 15.0
    #: Window of the arrival/service-rate estimate.
    rate_window_seconds: float = 300.0
    #: Queue observations are kept at most this often (the estimate only needs the window's shape).
    rate_sample_seconds: float = 15.0
    #: Mean query service time used when no counter measured one (None: pack into slots instead).
    service_seconds_hint: float | None = None
    #: One forecast sample per this many seconds: the maximum of the reactive demand in that step.
    forecast_step_seconds: float = 300.0
    #: Refit the forecast model at most this often; between refits it is evaluated further ahead.
    forecast_refit_seconds: float = 3600.0
    #: Per forecast step, how much of the forecast's past record is kept (0.995: half of it after ~11.5 h
    #: at 5-minute steps), so a forecast that stops predicting well loses trust within a day.
    forecast_skill_decay: float = 0.995
    #: Weight of running short against running long in the forecast's record (as in the back-test).
    forecast_under_weight: float = 3.0

    def __post_init__(self) -> None:
        for name in (
            "loop_seconds",
            "rate_window_seconds",
            "forecast_step_seconds",
            "forecast_refit_seconds",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, not {value}")
        if not 0.0 < self.forecast_skill_decay <= 1.0:
            raise ValueError(f"forecast_skill_decay must be in (0, 1], not {self.forecast_skill_decay}")
        if self.rate_sample_seconds < 0:
            raise ValueError(f"rate_sample_seconds must be >= 0, not {self.rate_sample_seconds}")


DEFAULT_CONFIG = EngineConfig()


@dataclass(frozen=True, slots=True)
class Proposal:
    """What one metric asks for; ``replicas`` None when its reading is missing or stale."""

    name: str
    type: str
    value: float | None
    replicas: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    """One pass's outcome: the replica count to set and why.

    ``winner`` names the proposal that set the count before bounds (``forecast`` when the forecast raised
    it; None when the engine held for want of metrics). ``clamped_by`` is one of :data:`CLAMPS` or None.
    ``limit_bound`` is True when queued Trino queries are held by a concurrency limit (and so do not count).
    ``dry_run`` asks the caller to report and not apply.
    """

    replicas: int
    current: int
    proposals: tuple[Proposal, ...]
    winner: str | None
    clamped_by: str | None
    forecast: float | None
    reasons: tuple[str, ...]
    limit_bound: bool
    dry_run: bool
    min_replicas: int
    max_replicas: int
    schedules: tuple[str, ...]
    hpa_reason: str


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a policy means to the engine, derived once per policy object."""

    policy: ScalingPolicy
    behavior: hpa.Behavior | None
    value_targets: tuple[tuple[int, hpa.ExternalTarget], ...]
    trino_targets: dict[int, WaitTarget]
    #: QueueWait metrics with sizing Work: (target wait s, percentile as a fraction, cores per worker).
    work_targets: dict[int, tuple[float, float, float]]
    names: tuple[str, ...]
    method: Method
    season_steps: int
    max_history: int
    is_spark_app: bool


def _metric_name(metric: MetricSpec) -> str:
    if metric.external is not None:
        return metric.external.metric.name
    if metric.prometheus is not None:
        return f"prometheus:{metric.prometheus.query}"
    return metric.type


def _plan(policy: ScalingPolicy, config: EngineConfig) -> _Plan:
    spec = policy.spec
    values: list[tuple[int, hpa.ExternalTarget]] = []
    trino: dict[int, WaitTarget] = {}
    work: dict[int, tuple[float, float, float]] = {}
    for index, metric in enumerate(spec.metrics):
        section = metric.external or metric.prometheus
        if section is not None:
            target = section.target
            values.append(
                (index, hpa.ExternalTarget(target.type, float(target.amount), _metric_name(metric)))
            )
        elif metric.queue_wait is not None and metric.queue_wait.sizing == "Work":
            cores = spec.target.trino.cores_per_worker if spec.target.trino is not None else None
            # Validation requires coresPerWorker with Work; without a Trino target the metric has no data.
            work[index] = (
                metric.queue_wait.target_seconds,
                metric.queue_wait.percentile / 100.0,
                float(cores or 1),
            )
        elif metric.queue_wait is not None:
            slots = spec.target.trino.slots_per_worker if spec.target.trino is not None else 1
            trino[index] = WaitTarget(
                metric.queue_wait.target_seconds, metric.queue_wait.percentile / 100.0, slots
            )
    fc = spec.forecast
    m = season_steps(config.forecast_step_seconds, fc.season_seconds) if fc.enabled else 0
    return _Plan(
        policy=policy,
        behavior=to_hpa_behavior(spec.behavior),
        value_targets=tuple(values),
        trino_targets=trino,
        work_targets=work,
        names=tuple(_metric_name(m) for m in spec.metrics),
        method="holt_winters" if fc.method == "holt-winters" else "fft",
        season_steps=m,
        max_history=max(1, int(fc.history_seconds // config.forecast_step_seconds)),
        is_spark_app=spec.target.kind in SPARK_APPLICATION_KINDS,
    )


@dataclass(frozen=True, slots=True, eq=False)
class EngineState:
    """What the engine remembers between passes; every part is bounded.

    ``hpa`` is the HPA emulation's state (recommendations, scale events); ``queue_history`` the Trino polls
    of the rate window; ``forecast_series`` one value per forecast step (at most historySeconds of them);
    the rest are caches and the last decision. Start with ``EngineState()``.
    """

    hpa: hpa.HpaState = field(default_factory=hpa.HpaState)
    queue_history: tuple[QueueObservation, ...] = ()
    learned_service_seconds: float | None = None
    #: Mean CPU-seconds of a query and a query's share of the cores, as last measured (sizing Work).
    learned_cpu_per_query: float | None = None
    learned_query_share: float | None = None
    spark_run_peak: int | None = None
    spark_last_peak: int | None = None
    forecast_series: tuple[float, ...] = ()
    forecast_bucket_start: float | None = None
    forecast_bucket_max: float = math.nan
    forecast_model: Model | None = None
    forecast_fit_end: float = 0.0
    forecast_next_fit: float = -math.inf
    forecast_peak_cache: tuple[float, int, int, float] | None = None
    #: Decayed asymmetric losses of "reactive and forecast" vs "reactive alone" on steps the model had not
    #: seen when it predicted them (see :func:`_forecast_skill`).
    forecast_skill: tuple[float, float] = (0.0, 0.0)
    schedule_cache: tuple[tuple[bool, float, float], ...] = ()
    plan: _Plan | None = None
    last: Decision | None = None


# --- proposals ------------------------------------------------------------------------------------------


def _value_proposals(
    plan: _Plan, obs: Observation, current: int, ready: int, out: list[Proposal | None]
) -> None:
    if not plan.value_targets:
        return
    pairs: list[tuple[hpa.ExternalTarget, float | None]] = []
    readings: list[ValueReading | None] = []
    for index, target in plan.value_targets:
        reading = obs.values[index] if index < len(obs.values) else None
        readings.append(reading)
        usable = reading is not None and not reading.stale and reading.value is not None
        pairs.append((target, reading.value if usable and reading is not None else None))
    rec = hpa.recommend(pairs, current, ready, behavior=plan.behavior)
    for (index, target), reading, replicas in zip(plan.value_targets, readings, rec.proposals, strict=True):
        value = reading.value if reading is not None else None
        if reading is None or reading.value is None:
            why = "missing: could not be read"
        elif reading.stale:
            why = f"stale: last value {reading.value:g} is too old to use"
        else:
            why = f"{reading.value:g} against {target.kind} target {target.value:g} → {replicas}"
        out[index] = Proposal(plan.names[index], plan.policy.spec.metrics[index].type, value, replicas, why)


def _trino_proposals(
    plan: _Plan,
    obs: Observation,
    state: EngineState,
    config: EngineConfig,
    out: list[Proposal | None],
) -> tuple[EngineState, bool, str | None]:
    metrics = plan.policy.spec.metrics
    trino_indices = [i for i, m in enumerate(metrics) if m.type in ("QueueWait", "RequiredWorkers")]
    if not trino_indices:
        return state, False, None
    snap = obs.trino
    if snap is None or snap.stale:
        why = "missing: no Trino poll" if snap is None else "stale: the last Trino poll is too old to use"
        for i in trino_indices:
            out[i] = Proposal(plan.names[i], metrics[i].type, None, None, why)
        return state, False, None
    current = QueueObservation(
        obs.now,
        float(snap.queued),
        float(snap.running),
        snap.completed_total,
        snap.started_total,
        snap.cpu_seconds_total,
    )
    cutoff = obs.now - config.rate_window_seconds
    history = tuple(o for o in state.queue_history if o.at >= cutoff and o.at < obs.now)
    limit_bound = False
    limit_reason: str | None = None
    learned = state.learned_service_seconds
    if plan.work_targets:
        state = _work_proposals(plan, obs, snap, (*history, current), state, config, out)
    if plan.trino_targets:
        hint = config.service_seconds_hint if config.service_seconds_hint is not None else learned
        rates = estimate_rates(
            (*history, current), obs.now, config.rate_window_seconds, service_seconds_hint=hint
        )
        if rates is not None and rates.throughput is not None and rates.throughput > 0:
            learned = rates.service_seconds
        source = ""
        if rates is not None:
            source = f"; rates from {rates.method} over {rates.span_seconds:g}s"
            if "configured service time" in rates.method or (rates.throughput == 0 and hint is not None):
                source += (
                    " (service time configured)"
                    if config.service_seconds_hint is not None
                    else " (service time learnt earlier from the counters)"
                )
        load = TrinoLoad(snap.running, snap.queued, 0, rates, snap.groups)
        for i, target in plan.trino_targets.items():
            sizing = trino_workers_needed(load, target)
            out[i] = Proposal(
                plan.names[i], "QueueWait", float(snap.queued), sizing.workers, sizing.reason + source
            )
            if sizing.limit_bound:
                limit_bound = True
                limit_reason = (
                    f"{sizing.limit_bound_queued} queued queries are limit-bound (a resource group is at its "
                    "hardConcurrencyLimit): more workers would not start them, so the engine does not scale for them"
                )
    for i in trino_indices:
        if metrics[i].type == "RequiredWorkers":
            n = snap.required_workers
            why = f"queries wait for {n} required workers" if n > 0 else "no query waits for required workers"
            out[i] = Proposal(plan.names[i], "RequiredWorkers", float(n), n, why)
    if not history or obs.now - history[-1].at >= config.rate_sample_seconds:
        history = (*history, current)
    return replace(state, queue_history=history, learned_service_seconds=learned), limit_bound, limit_reason


def _work_proposals(
    plan: _Plan,
    obs: Observation,
    snap: TrinoSnapshot,
    window: tuple[QueueObservation, ...],
    state: EngineState,
    config: EngineConfig,
    out: list[Proposal | None],
) -> EngineState:
    """QueueWait metrics with sizing Work: the CPU-seconds arriving, shared by the workers' cores
    (:mod:`autoscaler.decision.work_sizing`). What the window cannot tell (no query ended in it) is taken from the
    last measurement; with none yet, the queries present are packed at one per core (a cluster is never
    sized blind) until the counters have moved."""
    metrics = plan.policy.spec.metrics
    rates = estimate_rates(window, obs.now, config.rate_window_seconds)
    cpu = cpu_per_query(window) or state.learned_cpu_per_query
    ready = obs.ready_replicas if obs.ready_replicas is not None else obs.current_replicas
    share = state.learned_query_share
    for i, (target_wait, percentile, cores) in plan.work_targets.items():
        if rates is not None and cpu is not None and rates.service_seconds is not None:
            seen = query_share(cpu, rates.service_seconds, rates.mean_running, ready, cores)
            if seen is not None:
                share = seen
        if rates is None or cpu is None:
            demand = snap.running + snap.queued
            workers = math.ceil(demand / cores) if demand > 0 else 0
            missing = "too little history" if rates is None else "no query's CPU measured yet"
            why = f"work: {missing}; {demand} queries present packed at one per core → {workers} workers"
        else:
            load = WorkLoad(rates.arrival_rate, cpu, share or DEFAULT_SHARE, concurrency_limit(snap.groups))
            sizing = workers_for_work(
                load, cores, target_wait, percentile, max_workers=max(1, plan.policy.spec.max_replicas)
            )
            workers, why = sizing.workers, sizing.reason
        n = snap.required_workers
        if n > workers:
            workers, why = n, f"{why}; queries wait for {n} required workers"
        out[i] = Proposal(plan.names[i], metrics[i].type, float(snap.queued), workers, why)
    return replace(state, learned_cpu_per_query=cpu, learned_query_share=share)


def _app_executors(app: AppDemand, executor_cores: int, ratio: float) -> int:
    return executors_needed(
        app.remaining_tasks + (app.next_wave_tasks if app.include_next_wave else 0),
        app.executor_cores if app.executor_cores is not None else executor_cores,
        app.task_cpus,
        min(app.allocation_ratio, ratio),
        app.min_executors,
        app.max_executors,
        pending_speculative=app.pending_speculative,
    )


def _spark_proposals(
    plan: _Plan, obs: Observation, state: EngineState, out: list[Proposal | None]
) -> EngineState:
    spec = plan.policy.spec
    for i, metric in enumerate(spec.metrics):
        section = metric.spark_executors
        if section is None:
            continue
        snap = obs.spark
        if snap is None or snap.stale:
            why = "missing: no Spark poll" if snap is None else "stale: the last Spark poll is too old to use"
            out[i] = Proposal(plan.names[i], metric.type, None, None, why)
            continue
        spark = spec.target.spark
        assert spark is not None  # the model requires it for Spark kinds
        ratio = section.allocation_ratio
        apps = snap.apps
        if ratio < 1.0:
            # The metric's ratio caps every application's own executorAllocationRatio.
            apps = tuple(replace(a, allocation_ratio=min(a.allocation_ratio, ratio)) for a in apps)
        if not plan.is_spark_app:
            assert spark.cores_per_worker is not None
            sizing = pool_workers_needed(
                apps, spark.cores_per_worker, spark.executor_cores, section.executors_per_worker
            )
            alive = f"; {snap.workers_alive} workers alive" if snap.workers_alive is not None else ""
            out[i] = Proposal(
                plan.names[i], metric.type, float(sizing.executors), sizing.workers, sizing.reason + alive
            )
            continue
        need = sum(_app_executors(a, spark.executor_cores, ratio) for a in apps)
        run_peak, last_peak = state.spark_run_peak, state.spark_last_peak
        if apps:
            run_peak = max(run_peak or 0, need)
            replicas = max(run_peak, last_peak or 0)
            why = (
                f"a run needs {need} executors now (peak {run_peak} this run"
                + (f", {last_peak} the previous run" if last_peak is not None else "")
                + f") → next run {replicas} executors"
            )
        else:
            if run_peak is not None:
                last_peak, run_peak = run_peak, None
            if last_peak is not None:
                replicas = last_peak
                why = f"no run active; the last run needed {last_peak} executors → next run {replicas}"
            else:
                replicas = obs.current_replicas
                why = f"no run observed yet: keep {replicas} executors"
        out[i] = Proposal(plan.names[i], metric.type, float(need), replicas, why)
        state = replace(state, spark_run_peak=run_peak, spark_last_peak=last_peak)
    return state


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
    state: EngineState, plan: _Plan, config: EngineConfig, now: float, value: float | None
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
    state: EngineState, plan: _Plan, config: EngineConfig, now: float
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
        plan = _plan(policy, config)
        state = replace(state, plan=plan, schedule_cache=())
    spec = policy.spec
    now = obs.now
    current = obs.current_replicas
    ready = obs.ready_replicas if obs.ready_replicas is not None else current

    slots: list[Proposal | None] = [None] * len(spec.metrics)
    _value_proposals(plan, obs, current, ready, slots)
    state, limit_bound, limit_reason = _trino_proposals(plan, obs, state, config, slots)
    state = _spark_proposals(plan, obs, state, slots)
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
