"""An exact, pure emulation of the HorizontalPodAutoscaler's replica decision for External metrics.

Two parts, as in the controller (kubernetes/kubernetes ``pkg/controller/podautoscaler``):

- :func:`recommend` is ``computeReplicasForMetrics`` restricted to External metrics with the
  ``GetExternalMetricReplicas`` (``Value``) and ``GetExternalPerPodMetricReplicas`` (``AverageValue``)
  arithmetic of ``replica_calculator.go``, in milli-units like the controller;
- :func:`step` / :func:`decide` is one ``reconcileAutoscaler`` pass after the metrics: the min/max guards,
  then ``normalizeDesiredReplicas`` (no ``behavior``) or ``normalizeDesiredReplicasWithBehaviors``, and the
  bookkeeping of recommendations and scale events the next pass depends on.

State is explicit and immutable (:class:`HpaState`); ``now`` is passed in. The controller's own period (15 s)
is the caller's business: call :func:`step` at whatever cadence the emulated controller would run.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from autoscaler.decision.hpa_behavior import (
    DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
    DEFAULT_TOLERANCE,
    DESIRED_WITHIN_RANGE,
    MAX_INT32,
    READY_FOR_NEW_SCALE,
    SCALE_DOWN_STABILIZED,
    SCALE_UP_LIMIT_FACTOR,
    SCALE_UP_LIMIT_MINIMUM,
    Behavior,
    RatePolicy,
    ResolvedRules,
    ScaleEvent,
    ScalingRules,
    TimestampedRecommendation,
    Tolerances,
    convert_desired_replicas_with_behavior_rate,
    convert_desired_replicas_with_rules,
    default_behavior,
    default_scale_down_rules,
    default_scale_up_rules,
    resolve_behavior,
    stabilize_recommendation,
    stabilize_recommendation_with_behaviors,
    store_scale_event,
    tolerances_for,
)

__all__ = [
    "ABOVE_MAX_REPLICAS",
    "BELOW_MIN_REPLICAS",
    "FAILED_COMPUTE_METRICS_REPLICAS",
    "FAILED_GET_EXTERNAL_METRIC",
    "SCALING_DISABLED",
    "VALID_METRIC_FOUND",
    "Behavior",
    "ExternalTarget",
    "HpaController",
    "HpaState",
    "HpaStep",
    "RatePolicy",
    "Recommendation",
    "ScaleEvent",
    "ScalingRules",
    "TimestampedRecommendation",
    "Tolerances",
    "decide",
    "default_behavior",
    "default_scale_down_rules",
    "default_scale_up_rules",
    "external_metric_replicas",
    "external_per_pod_metric_replicas",
    "milli_value",
    "recommend",
    "recommended_replicas",
    "step",
    "tolerances_for",
]

VALID_METRIC_FOUND = "ValidMetricFound"
FAILED_GET_EXTERNAL_METRIC = "FailedGetExternalMetric"
#: The controller's event reason when no replica count could be computed this pass.
FAILED_COMPUTE_METRICS_REPLICAS = "FailedComputeMetricsReplicas"
#: ``currentReplicas == 0`` with ``minReplicas != 0``: the HPA leaves a target scaled to zero alone.
SCALING_DISABLED = "ScalingDisabled"
#: The guards that run before any metric (upstream reports them only as the rescale reason text
#: "Current number of replicas above Spec.MaxReplicas" / "... below Spec.MinReplicas").
ABOVE_MAX_REPLICAS = "AboveMaxReplicas"
BELOW_MIN_REPLICAS = "BelowMinReplicas"


@dataclass(frozen=True, slots=True)
class ExternalTarget:
    """The ``target`` of an External metric spec; ``metric`` only names it in reasons."""

    kind: Literal["Value", "AverageValue"]
    value: float
    metric: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("Value", "AverageValue"):
            raise ValueError(f"target kind must be Value or AverageValue, not {self.kind!r}")
        if not (math.isfinite(self.value) and self.value > 0):
            raise ValueError(f"target value must be a positive finite number, not {self.value}")


def milli_value(value: float) -> int:
    """``Quantity.MilliValue()``: the value in milli-units, rounded up.

    Binary floats rarely hold decimal values exactly (0.1 × 1000 = 100.00000000000001), so a product within
    a relative 1e-9 of an integer counts as that integer before rounding up; quantities the adapter serves
    (at most nano precision) convert exactly.
    """
    scaled = value * 1000.0
    nearest = round(scaled)
    if abs(scaled - nearest) <= 1e-9 * max(1.0, abs(scaled)):
        return int(nearest)
    return math.ceil(scaled)


def _to_int32(replicas: float) -> int:
    return MAX_INT32 if replicas > MAX_INT32 else math.ceil(replicas)


def external_metric_replicas(
    usage: float, target: float, current_replicas: int, ready_pods: int, tolerances: Tolerances
) -> int:
    """``GetExternalMetricReplicas``: ``ceil(sum/target × ready pods)``, or ``ceil(sum/target)`` from zero.

    From zero replicas no tolerance applies (so one unit of work wakes the target). With replicas but no
    ready pod the product is 0, as upstream.
    """
    ratio = float(milli_value(usage)) / float(milli_value(target))
    if current_replicas != 0:
        if tolerances.is_within(ratio):
            return current_replicas
        return _to_int32(ratio * float(ready_pods))
    return _to_int32(ratio)


def external_per_pod_metric_replicas(
    usage: float, target: float, status_replicas: int, tolerances: Tolerances
) -> int:
    """``GetExternalPerPodMetricReplicas``: ``ceil(sum/perPodTarget)``, tolerance judged against status replicas."""
    usage_m = float(milli_value(usage))
    target_m = float(milli_value(target))
    denominator = target_m * float(status_replicas)
    # Go's float division by zero gives +Inf for work waiting and NaN for none; neither is "within" tolerance.
    zero_status_ratio = math.inf if usage_m > 0 else math.nan
    ratio = usage_m / denominator if denominator != 0 else zero_status_ratio
    if tolerances.is_within(ratio):
        return status_replicas
    return _to_int32(usage_m / target_m)


@dataclass(frozen=True, slots=True)
class Recommendation:
    """Outcome of :func:`recommend`.

    ``replicas`` is None when the controller would not scale at all this pass: every metric failed, or some
    failed and the others point down. ``condition`` is the ``ScalingActive`` reason; ``reason`` says which
    metric won (or why none did). ``proposals`` holds each metric's own count (None where unreadable).
    """

    replicas: int | None
    condition: str
    reason: str
    metric_index: int | None
    proposals: tuple[int | None, ...]
    invalid_metrics: int


def _describe(index: int, target: ExternalTarget) -> str:
    name = target.metric or f"#{index}"
    return f"external metric {name} ({target.kind} target {target.value:g})"


def recommend(
    metric_values: Sequence[tuple[ExternalTarget, float | None]],
    current_replicas: int,
    ready_pods: int,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    behavior: Behavior | None = None,
    status_replicas: int | None = None,
) -> Recommendation:
    """``computeReplicasForMetrics`` for External metrics: the highest proposal of the readable metrics.

    ``metric_values`` pairs each target with the sum of its items, or None when the metric could not be read
    (an error or an empty item list; non-finite sums count as unreadable too). ``current_replicas`` is the
    scale's ``spec.replicas``; ``status_replicas`` (``status.replicas``, default the same) is what
    ``AverageValue`` tolerances are judged against. Per-direction tolerances in ``behavior`` (KEP-4951)
    override ``tolerance``.
    """
    try:
        return _recommend_cached(
            tuple(metric_values), current_replicas, ready_pods, tolerance, behavior, status_replicas
        )
    except TypeError:  # an unhashable value: nothing to look up, work it out
        return _recommend(metric_values, current_replicas, ready_pods, tolerance, behavior, status_replicas)


def recommended_replicas(
    metric_values: Sequence[tuple[ExternalTarget, float | None]],
    current_replicas: int,
    ready_pods: int,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    behavior: Behavior | None = None,
    status_replicas: int | None = None,
) -> int | None:
    """``recommend(...).replicas`` without the reasons: for a caller that reads only the count, pass after
    pass with values that rarely recur (nothing to look up, no text to write)."""
    tolerances = tolerances_for(behavior, tolerance)
    status = current_replicas if status_replicas is None else status_replicas
    replicas, _, invalid, _, _ = _proposals(metric_values, current_replicas, ready_pods, tolerances, status)
    if invalid >= len(metric_values) or (invalid > 0 and replicas < current_replicas):
        return None
    return replicas


def _proposals(
    metric_values: Sequence[tuple[ExternalTarget, float | None]],
    current_replicas: int,
    ready_pods: int,
    tolerances: Tolerances,
    status: int,
) -> tuple[int, int | None, int, int | None, list[int | None]]:
    """Each metric's proposal and the highest: (replicas, its metric, unreadable metrics, the first of
    them, proposals)."""
    replicas = 0
    winner: int | None = None
    invalid = 0
    first_invalid: int | None = None
    proposals: list[int | None] = []
    for index, (target, value) in enumerate(metric_values):
        if value is None or not math.isfinite(value):
            invalid += 1
            if first_invalid is None:
                first_invalid = index
            proposals.append(None)
            continue
        if target.kind == "Value":
            proposal = external_metric_replicas(value, target.value, current_replicas, ready_pods, tolerances)
        else:
            proposal = external_per_pod_metric_replicas(value, target.value, status, tolerances)
        proposals.append(proposal)
        # Upstream keeps the running maximum with "replicas == 0 ||", so among zero proposals the last wins.
        if replicas == 0 or proposal > replicas:
            replicas = proposal
            winner = index
    return replicas, winner, invalid, first_invalid, proposals


def _recommend(
    metric_values: Sequence[tuple[ExternalTarget, float | None]],
    current_replicas: int,
    ready_pods: int,
    tolerance: float,
    behavior: Behavior | None,
    status_replicas: int | None,
) -> Recommendation:
    tolerances = tolerances_for(behavior, tolerance)
    status = current_replicas if status_replicas is None else status_replicas
    replicas, winner, invalid, first_invalid, proposals = _proposals(
        metric_values, current_replicas, ready_pods, tolerances, status
    )
    total = len(metric_values)
    if invalid >= total or (invalid > 0 and replicas < current_replicas):
        first = (
            "no metric specs"
            if first_invalid is None
            else _describe(first_invalid, metric_values[first_invalid][0])
        )
        why = (
            "all metrics failed"
            if invalid >= total
            else f"the readable metrics propose {replicas} < {current_replicas}"
        )
        reason = (
            f"invalid metrics ({invalid} invalid out of {total}), first error is: {first} could not be read; "
            f"{why}, so no scaling this pass"
        )
        return Recommendation(None, FAILED_GET_EXTERNAL_METRIC, reason, None, tuple(proposals), invalid)
    assert winner is not None
    reason = f"the HPA was able to successfully calculate a replica count from {_describe(winner, metric_values[winner][0])}"
    if invalid:
        reason += f" ({invalid} of {total} metrics unreadable: scaling up or holding only)"
    return Recommendation(replicas, VALID_METRIC_FOUND, reason, winner, tuple(proposals), invalid)


# A pure function of hashable inputs that recur pass after pass (a simulated HPA sees the same few
# metric values and replica counts again and again), and its result is immutable: one lookup instead of
# the milli-unit arithmetic and the reason text. Equal keys give equal results: the arithmetic reads only
# values that compare equal (0.0 and -0.0 both give 0 milli-units), and NaN keys never match.
_recommend_cached = lru_cache(maxsize=16384)(_recommend)


# A simulated HPA resolves its one behavior on every pass, and hashing the nested rules for
# resolve_behavior's cache costs more than the rest of a quiet pass. Looked up by identity first: each entry
# holds its behavior, so no id is reused while it is here.
_RESOLVED: dict[tuple[int, int], tuple[Behavior, tuple[ResolvedRules, ResolvedRules]]] = {}


def _resolved(
    behavior: Behavior, downscale_stabilization_seconds: int
) -> tuple[ResolvedRules, ResolvedRules]:
    key = (id(behavior), downscale_stabilization_seconds)
    known = _RESOLVED.get(key)
    if known is not None and known[0] is behavior:
        return known[1]
    rules = resolve_behavior(behavior, downscale_stabilization_seconds)
    if len(_RESOLVED) >= 256:
        _RESOLVED.clear()
    _RESOLVED[key] = (behavior, rules)
    return rules


@dataclass(frozen=True, slots=True)
class HpaState:
    """What the controller remembers about one HPA between passes.

    ``initialized`` False is the controller's "never seen" (a nil history): the first pass then records the
    current replica count as a recommendation, which keeps a freshly created HPA from scaling down before a
    full stabilisation window has passed. Use ``HpaState(initialized=True)`` for an empty but known history.
    """

    recommendations: tuple[TimestampedRecommendation, ...] = ()
    scale_up_events: tuple[ScaleEvent, ...] = ()
    scale_down_events: tuple[ScaleEvent, ...] = ()
    initialized: bool = False


@dataclass(frozen=True, slots=True)
class HpaStep:
    """One controller pass in detail.

    ``able_to_scale`` (``ReadyForNewScale`` / ``ScaleUpStabilized`` / ``ScaleDownStabilized``) and
    ``scaling_limited`` (``DesiredWithinRange`` / ``ScaleUpLimit`` / ``ScaleDownLimit`` / ``TooManyReplicas`` /
    ``TooFewReplicas``) are the two condition reasons upstream sets; both are None when normalisation did not
    run. ``reason`` is the single most telling one: the limit if one bit, else the stabilisation if it
    changed the count, else ``DesiredWithinRange``; or one of the guard reasons of this module.
    """

    replicas: int
    state: HpaState
    reason: str
    able_to_scale: str | None = None
    scaling_limited: str | None = None
    stabilized: int | None = None


def decide(
    state: HpaState,
    now: float,
    current_replicas: int,
    raw_desired: int | None,
    min_replicas: int,
    max_replicas: int,
    behavior: Behavior | None,
    *,
    downscale_stabilization_seconds: int = DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
    scale_up_limit_factor: float = SCALE_UP_LIMIT_FACTOR,
    scale_up_limit_minimum: float = SCALE_UP_LIMIT_MINIMUM,
) -> HpaStep:
    """One ``reconcileAutoscaler`` pass after the metrics were read; see :func:`step`."""
    if min_replicas < 0 or max_replicas < 1 or max_replicas < min_replicas:
        raise ValueError(f"need 0 <= min ({min_replicas}) <= max ({max_replicas}) and max >= 1")
    recommendations = state.recommendations
    up_events = state.scale_up_events
    down_events = state.scale_down_events
    if not state.initialized and not recommendations:
        recommendations = (TimestampedRecommendation(current_replicas, now),)
    rules: tuple[ResolvedRules, ResolvedRules] | None = None
    if behavior is not None:
        rules = _resolved(behavior, downscale_stabilization_seconds)

    able: str | None = None
    limited: str | None = None
    stabilized: int | None = None
    if current_replicas == 0 and min_replicas != 0:
        return HpaStep(0, HpaState(recommendations, up_events, down_events, True), SCALING_DISABLED)
    if current_replicas > max_replicas:
        desired, reason = max_replicas, ABOVE_MAX_REPLICAS
    elif current_replicas < min_replicas:
        desired, reason = min_replicas, BELOW_MIN_REPLICAS
    elif raw_desired is None:
        # Nothing computed: no recommendation is recorded and nothing scales this pass.
        return HpaStep(
            current_replicas,
            HpaState(recommendations, up_events, down_events, True),
            FAILED_COMPUTE_METRICS_REPLICAS,
        )
    elif rules is None:
        stabilized, recommendations = stabilize_recommendation(
            recommendations, now, raw_desired, downscale_stabilization_seconds
        )
        able = SCALE_DOWN_STABILIZED if stabilized != raw_desired else READY_FOR_NEW_SCALE
        desired, limited = convert_desired_replicas_with_rules(
            current_replicas,
            stabilized,
            min_replicas,
            max_replicas,
            scale_up_limit_factor,
            scale_up_limit_minimum,
        )
        reason = limited
    else:
        up, down = rules
        stabilized, stabilization_reason, recommendations = stabilize_recommendation_with_behaviors(
            recommendations,
            now,
            current_replicas,
            raw_desired,
            up.stabilization_window_seconds,
            down.stabilization_window_seconds,
        )
        able = stabilization_reason if stabilized != raw_desired else READY_FOR_NEW_SCALE
        desired, limited = convert_desired_replicas_with_behavior_rate(
            current_replicas, stabilized, min_replicas, max_replicas, up, down, up_events, down_events, now
        )
        reason = limited

    if limited == DESIRED_WITHIN_RANGE and able is not None and able != READY_FOR_NEW_SCALE:
        reason = able
    if desired != current_replicas:
        up_events, down_events = store_scale_event(
            rules, up_events, down_events, current_replicas, desired, now
        )
    return HpaStep(
        desired,
        HpaState(recommendations, up_events, down_events, True),
        reason,
        able_to_scale=able,
        scaling_limited=limited,
        stabilized=stabilized,
    )


def step(
    state: HpaState,
    now: float,
    current_replicas: int,
    raw_desired: int | None,
    min_replicas: int,
    max_replicas: int,
    behavior: Behavior | None,
    *,
    downscale_stabilization_seconds: int = DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
    scale_up_limit_factor: float = SCALE_UP_LIMIT_FACTOR,
    scale_up_limit_minimum: float = SCALE_UP_LIMIT_MINIMUM,
) -> tuple[int, HpaState, str]:
    """One HPA controller pass: returns the replica count to set, the new state and the reason.

    ``raw_desired`` is :attr:`Recommendation.replicas` (None: the metrics gave nothing usable). ``behavior``
    None takes the legacy path (max over ``downscale_stabilization_seconds`` of recommendations, then at most
    ``max(scale_up_limit_factor × current, scale_up_limit_minimum)``); any :class:`Behavior` takes the
    behavior path with upstream defaults for what it leaves unset.
    """
    decision = decide(
        state,
        now,
        current_replicas,
        raw_desired,
        min_replicas,
        max_replicas,
        behavior,
        downscale_stabilization_seconds=downscale_stabilization_seconds,
        scale_up_limit_factor=scale_up_limit_factor,
        scale_up_limit_minimum=scale_up_limit_minimum,
    )
    return decision.replicas, decision.state, decision.reason


class HpaController:
    """One HPA pass after another, as :func:`step` gives them, for a caller that only needs the replica
    counts (the simulator's baselines run hundreds of thousands of passes).

    :func:`step` keeps the recommendations the way the controller stores them (slots recycled in place) and
    scans them all on every pass. A stabilisation only ever reads the recommendations inside its window,
    and the windows are fixed while the pass times never go back, so a recommendation that has left a
    window never returns to it: the controller recycles a slot only once its entry is outside every window.
    Here each window keeps its recommendations in time order and only those that may still be its extreme
    (a sliding-window maximum, or minimum): the same extreme, in constant time per pass. Scale events are
    kept, and the counts limited, by the same functions :func:`decide` uses.

    ``now`` must not decrease from one :meth:`step` to the next.
    """

    __slots__ = (
        "_down",
        "_down_events",
        "_down_window",
        "_factor",
        "_initialized",
        "_last",
        "_minimum",
        "_rules",
        "_up",
        "_up_events",
        "_up_window",
        "behavior",
        "max_replicas",
        "min_replicas",
    )

    def __init__(
        self,
        min_replicas: int,
        max_replicas: int,
        behavior: Behavior | None,
        *,
        downscale_stabilization_seconds: int = DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
        scale_up_limit_factor: float = SCALE_UP_LIMIT_FACTOR,
        scale_up_limit_minimum: float = SCALE_UP_LIMIT_MINIMUM,
    ) -> None:
        if min_replicas < 0 or max_replicas < 1 or max_replicas < min_replicas:
            raise ValueError(f"need 0 <= min ({min_replicas}) <= max ({max_replicas}) and max >= 1")
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.behavior = behavior
        self._rules = (
            None if behavior is None else resolve_behavior(behavior, downscale_stabilization_seconds)
        )
        if self._rules is None:
            # The legacy path: the highest recommendation not older than the window (time.Before).
            self._up_window = math.nan
            self._down_window = float(downscale_stabilization_seconds)
        else:
            self._up_window = float(self._rules[0].stabilization_window_seconds)
            self._down_window = float(self._rules[1].stabilization_window_seconds)
        self._factor = scale_up_limit_factor
        self._minimum = scale_up_limit_minimum
        # (time, recommendation), oldest first: in _down the recommendations fall from front to back (the
        # candidates for the highest), in _up they rise (for the lowest; behavior path only).
        self._down: deque[tuple[float, int]] = deque()
        self._up: deque[tuple[float, int]] = deque()
        self._up_events: tuple[ScaleEvent, ...] = ()
        self._down_events: tuple[ScaleEvent, ...] = ()
        self._initialized = False
        self._last = -math.inf

    def _record(self, now: float, recommendation: int) -> None:
        down = self._down
        while down and down[-1][1] <= recommendation:
            down.pop()
        down.append((now, recommendation))
        if self._rules is not None:
            up = self._up
            while up and up[-1][1] >= recommendation:
                up.pop()
            up.append((now, recommendation))

    def step(self, now: float, current_replicas: int, raw_desired: int | None) -> int:
        """The replica count :func:`step` would return for this pass (and the history it would keep)."""
        if now < self._last:
            raise ValueError(f"passes must not go back in time ({now} after {self._last})")
        self._last = now
        if not self._initialized:
            # The controller's nil history: the current count counts as a first recommendation.
            self._initialized = True
            self._record(now, current_replicas)
        min_replicas, max_replicas = self.min_replicas, self.max_replicas
        rules = self._rules
        if current_replicas == 0 and min_replicas != 0:
            return 0
        if current_replicas > max_replicas:
            desired = max_replicas
        elif current_replicas < min_replicas:
            desired = min_replicas
        elif raw_desired is None:
            return current_replicas
        elif rules is None:
            down = self._down
            cutoff = now - self._down_window
            while down and down[0][0] < cutoff:
                down.popleft()
            stabilized = raw_desired if not down or down[0][1] < raw_desired else down[0][1]
            self._record(now, raw_desired)
            desired, _ = convert_desired_replicas_with_rules(
                current_replicas, stabilized, min_replicas, max_replicas, self._factor, self._minimum
            )
        else:
            up, down = self._up, self._down
            up_cutoff = now - self._up_window
            down_cutoff = now - self._down_window
            while up and up[0][0] <= up_cutoff:
                up.popleft()
            while down and down[0][0] <= down_cutoff:
                down.popleft()
            lowest = raw_desired if not up or up[0][1] > raw_desired else up[0][1]
            highest = raw_desired if not down or down[0][1] < raw_desired else down[0][1]
            stabilized = min(max(current_replicas, lowest), highest)
            self._record(now, raw_desired)
            desired, _ = convert_desired_replicas_with_behavior_rate(
                current_replicas,
                stabilized,
                min_replicas,
                max_replicas,
                rules[0],
                rules[1],
                self._up_events,
                self._down_events,
                now,
            )
        if desired != current_replicas:
            self._up_events, self._down_events = store_scale_event(
                rules, self._up_events, self._down_events, current_replicas, desired, now
            )
        return desired
