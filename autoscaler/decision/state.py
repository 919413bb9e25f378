"""What one pass of the engine works with and gives back: its configuration, a policy read once into a
plan, the proposal each metric makes, the decision, and the state carried from pass to pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from autoscaler.decision import hpa
from autoscaler.decision.behavior import to_hpa_behavior
from autoscaler.decision.forecast import Method, Model, season_steps
from autoscaler.decision.queueing import (
    QueueObservation,
    WaitTarget,
)
from autoscaler.policy.models import SPARK_APPLICATION_KINDS, MetricSpec, ScalingPolicy

__all__ = [
    "CLAMPS",
    "DEFAULT_CONFIG",
    "Decision",
    "EngineConfig",
    "EngineState",
    "Plan",
    "Proposal",
    "metric_name",
    "plan_for",
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
class Plan:
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


def metric_name(metric: MetricSpec) -> str:
    if metric.external is not None:
        return metric.external.metric.name
    if metric.prometheus is not None:
        return f"prometheus:{metric.prometheus.query}"
    return metric.type


def plan_for(policy: ScalingPolicy, config: EngineConfig) -> Plan:
    spec = policy.spec
    values: list[tuple[int, hpa.ExternalTarget]] = []
    trino: dict[int, WaitTarget] = {}
    work: dict[int, tuple[float, float, float]] = {}
    for index, metric in enumerate(spec.metrics):
        section = metric.external or metric.prometheus
        if section is not None:
            target = section.target
            values.append((index, hpa.ExternalTarget(target.type, float(target.amount), metric_name(metric))))
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
    return Plan(
        policy=policy,
        behavior=to_hpa_behavior(spec.behavior),
        value_targets=tuple(values),
        trino_targets=trino,
        work_targets=work,
        names=tuple(metric_name(m) for m in spec.metrics),
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
    #: The pool's applications' mean task run time, as last measured (sparkExecutors.backlogSeconds).
    spark_task_seconds: float | None = None
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
    plan: Plan | None = None
    last: Decision | None = None
