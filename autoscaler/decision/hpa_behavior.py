"""The HPA controller's replica normalisation (autoscaling/v2 ``behavior`` and the legacy path), as pure functions.

This mirrors kubernetes/kubernetes ``pkg/controller/podautoscaler/horizontal.go`` and the defaulting of
``pkg/apis/autoscaling/v2/defaults.go`` step by step, including the quirks that decide real outcomes:

- recommendations and scale events are stored the way the controller stores them (an entry is only recycled
  when it is older than every window, and only one per call), so a replayed history gives the same numbers;
- stabilisation windows include an entry only when it is strictly newer than ``now - window`` (behavior path)
  or not older than it (legacy path), exactly as ``time.After``/``time.Before`` do upstream;
- rate limits count the replicas at the start of each policy period from both the scale-up and the
  scale-down events, ``Percent`` rounds up when scaling up and truncates when scaling down.

Times are plain float seconds on any clock the caller chooses; nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

PolicyType = Literal["Pods", "Percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]

MAX_INT32 = 2**31 - 1
MIN_INT32 = -(2**31)

#: ``--horizontal-pod-autoscaler-tolerance`` default.
DEFAULT_TOLERANCE = 0.1
#: ``--horizontal-pod-autoscaler-downscale-stabilization`` default, in seconds.
DEFAULT_DOWNSCALE_STABILIZATION_SECONDS = 300
#: Legacy (no ``behavior``) scale-up cap ``max(factor × current, minimum)``; the upstream tests raise the factor to 8.
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0

# Upstream API validation bounds, so a bad policy fails where it is written rather than deep in a simulation.
_MAX_PERIOD_SECONDS = 1800
_MAX_STABILIZATION_SECONDS = 3600

# Condition reasons, spelled as the controller spells them.
DESIRED_WITHIN_RANGE = "DesiredWithinRange"
SCALE_UP_LIMIT = "ScaleUpLimit"
SCALE_DOWN_LIMIT = "ScaleDownLimit"
TOO_MANY_REPLICAS = "TooManyReplicas"
TOO_FEW_REPLICAS = "TooFewReplicas"
SCALE_UP_STABILIZED = "ScaleUpStabilized"
SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
READY_FOR_NEW_SCALE = "ReadyForNewScale"


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """One rate policy (the HPA's ``HPAScalingPolicy``): change by at most ``value`` pods or percent per
    ``period_seconds``."""

    type: PolicyType
    value: int
    period_seconds: int

    def __post_init__(self) -> None:
        if self.type not in ("Pods", "Percent"):
            raise ValueError(f"policy type must be Pods or Percent, not {self.type!r}")
        if self.value <= 0:
            raise ValueError(f"policy value must be positive, not {self.value}")
        if not 0 < self.period_seconds <= _MAX_PERIOD_SECONDS:
            raise ValueError(
                f"policy period must be in (0, {_MAX_PERIOD_SECONDS}] s, not {self.period_seconds}"
            )


@dataclass(frozen=True, slots=True)
class ScalingRules:
    """``HPAScalingRules``; a ``None`` field takes the upstream default for its direction.

    ``tolerance`` is the per-direction tolerance of KEP-4951 (``None``: the controller-wide one).
    """

    stabilization_window_seconds: int | None = None
    select_policy: SelectPolicy | None = None
    policies: tuple[RatePolicy, ...] | None = None
    tolerance: float | None = None

    def __post_init__(self) -> None:
        window = self.stabilization_window_seconds
        if window is not None and not 0 <= window <= _MAX_STABILIZATION_SECONDS:
            raise ValueError(
                f"stabilization window must be in [0, {_MAX_STABILIZATION_SECONDS}] s, not {window}"
            )
        if self.select_policy is not None and self.select_policy not in ("Max", "Min", "Disabled"):
            raise ValueError(f"selectPolicy must be Max, Min or Disabled, not {self.select_policy!r}")
        if self.tolerance is not None and not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError(f"tolerance must be a finite non-negative number, not {self.tolerance}")


@dataclass(frozen=True, slots=True)
class Behavior:
    """``HorizontalPodAutoscalerBehavior``. Passing any ``Behavior`` (even empty) selects the behavior path."""

    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None


def default_scale_up_rules() -> ScalingRules:
    """Upstream ``defaultHPAScaleUpRules``: no stabilisation, the larger of +4 pods or +100 % per 15 s."""
    return ScalingRules(
        stabilization_window_seconds=0,
        select_policy="Max",
        policies=(RatePolicy("Pods", 4, 15), RatePolicy("Percent", 100, 15)),
    )


def default_scale_down_rules() -> ScalingRules:
    """Upstream ``defaultHPAScaleDownRules``: −100 % per 15 s.

    The window stays ``None`` as upstream: the controller fills it from its
    ``--horizontal-pod-autoscaler-downscale-stabilization`` flag (300 s unless changed).
    """
    return ScalingRules(
        stabilization_window_seconds=None,
        select_policy="Max",
        policies=(RatePolicy("Percent", 100, 15),),
    )


def default_behavior() -> Behavior:
    """The behavior an HPA gets when it declares an empty ``behavior: {}``."""
    return Behavior(scale_up=default_scale_up_rules(), scale_down=default_scale_down_rules())


@dataclass(frozen=True, slots=True)
class ResolvedRules:
    """Scaling rules after defaulting, with nothing left unset."""

    stabilization_window_seconds: int
    select_policy: SelectPolicy
    policies: tuple[RatePolicy, ...]
    tolerance: float | None
    longest_period_seconds: int


def _resolve(rules: ScalingRules | None, defaults: ScalingRules, default_window: int) -> ResolvedRules:
    # Field by field, like copyHPAScalingRules: anything the user set wins, the rest comes from the defaults.
    src = rules if rules is not None else ScalingRules()
    window = src.stabilization_window_seconds
    if window is None:
        window = defaults.stabilization_window_seconds
    if window is None:
        window = default_window
    select = src.select_policy if src.select_policy is not None else defaults.select_policy
    policies = src.policies if src.policies is not None else defaults.policies
    assert select is not None
    assert policies is not None
    longest = max((p.period_seconds for p in policies), default=0)
    return ResolvedRules(window, select, policies, src.tolerance, longest)


@lru_cache(maxsize=256)
def resolve_behavior(
    behavior: Behavior, downscale_stabilization_seconds: int = DEFAULT_DOWNSCALE_STABILIZATION_SECONDS
) -> tuple[ResolvedRules, ResolvedRules]:
    """Apply upstream defaulting to both directions; returns ``(scale_up, scale_down)``."""
    up = _resolve(behavior.scale_up, default_scale_up_rules(), 0)
    down = _resolve(behavior.scale_down, default_scale_down_rules(), downscale_stabilization_seconds)
    return up, down


@dataclass(frozen=True, slots=True)
class Tolerances:
    """Dead band around a usage ratio of 1 inside which the replica count stays put."""

    scale_down: float = DEFAULT_TOLERANCE
    scale_up: float = DEFAULT_TOLERANCE

    def is_within(self, usage_ratio: float) -> bool:
        # NaN compares false both ways, as in Go, so a 0/0 ratio is never "within".
        return (1.0 - self.scale_down) <= usage_ratio <= (1.0 + self.scale_up)


def tolerances_for(behavior: Behavior | None, default: float = DEFAULT_TOLERANCE) -> Tolerances:
    """Per-direction tolerances of an HPA (KEP-4951), falling back to the controller-wide ``default``."""
    down = up = default
    if behavior is not None:
        if behavior.scale_down is not None and behavior.scale_down.tolerance is not None:
            down = behavior.scale_down.tolerance
        if behavior.scale_up is not None and behavior.scale_up.tolerance is not None:
            up = behavior.scale_up.tolerance
    return Tolerances(scale_down=down, scale_up=up)


@dataclass(frozen=True, slots=True)
class TimestampedRecommendation:
    """One unstabilised recommendation, as the controller keeps them for its windows."""

    recommendation: int
    timestamp: float


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    """One applied scale change; ``replica_change`` is its absolute size."""

    replica_change: int
    timestamp: float
    outdated: bool = False


def _store_recommendation(
    recommendations: tuple[TimestampedRecommendation, ...], old_index: int, desired: int, now: float
) -> tuple[TimestampedRecommendation, ...]:
    # Upstream recycles the last entry found outside every window instead of growing the list: keeping the
    # same slot layout is what makes the stored history (and hence later decisions) identical.
    entry = TimestampedRecommendation(desired, now)
    if old_index < 0:
        return (*recommendations, entry)
    return (*recommendations[:old_index], entry, *recommendations[old_index + 1 :])


def stabilize_recommendation(
    recommendations: tuple[TimestampedRecommendation, ...], now: float, desired: int, window_seconds: float
) -> tuple[int, tuple[TimestampedRecommendation, ...]]:
    """Legacy down-stabilisation: the highest recommendation not older than the window (``desired`` included)."""
    cutoff = now - window_seconds
    highest = desired
    old_index = -1
    for i, rec in enumerate(recommendations):
        if rec.timestamp < cutoff:
            old_index = i
        elif rec.recommendation > highest:
            highest = rec.recommendation
    return highest, _store_recommendation(recommendations, old_index, desired, now)


def stabilize_recommendation_with_behaviors(
    recommendations: tuple[TimestampedRecommendation, ...],
    now: float,
    current_replicas: int,
    desired: int,
    scale_up_window_seconds: float,
    scale_down_window_seconds: float,
) -> tuple[int, str, tuple[TimestampedRecommendation, ...]]:
    """Clamp ``current`` between the lowest recent recommendation (up window) and the highest (down window).

    Returns the stabilised count, the reason to report when it differs from ``desired``, and the new history.
    """
    up_cutoff = now - scale_up_window_seconds
    down_cutoff = now - scale_down_window_seconds
    up_recommendation = desired
    down_recommendation = desired
    old_index = -1
    for i, rec in enumerate(recommendations):
        ts = rec.timestamp
        if ts > up_cutoff and rec.recommendation < up_recommendation:
            up_recommendation = rec.recommendation
        if ts > down_cutoff and rec.recommendation > down_recommendation:
            down_recommendation = rec.recommendation
        if ts < up_cutoff and ts < down_cutoff:
            old_index = i
    recommendation = current_replicas
    if recommendation < up_recommendation:
        recommendation = up_recommendation
    if recommendation > down_recommendation:
        recommendation = down_recommendation
    reason = SCALE_UP_STABILIZED if desired >= current_replicas else SCALE_DOWN_STABILIZED
    return recommendation, reason, _store_recommendation(recommendations, old_index, desired, now)


def calculate_scale_up_limit(
    current_replicas: int,
    factor: float = SCALE_UP_LIMIT_FACTOR,
    minimum: float = SCALE_UP_LIMIT_MINIMUM,
) -> int:
    """Legacy cap on a single scale-up: ``max(factor × current, minimum)``, truncated like Go's int32()."""
    return int(max(factor * float(current_replicas), minimum))


def convert_desired_replicas_with_rules(
    current_replicas: int,
    desired_replicas: int,
    min_replicas: int,
    max_replicas: int,
    scale_up_limit_factor: float = SCALE_UP_LIMIT_FACTOR,
    scale_up_limit_minimum: float = SCALE_UP_LIMIT_MINIMUM,
) -> tuple[int, str]:
    """Legacy clamp: ``[min, min(max, scale-up limit)]``, with the ``ScalingLimited`` reason."""
    scale_up_limit = calculate_scale_up_limit(current_replicas, scale_up_limit_factor, scale_up_limit_minimum)
    if max_replicas > scale_up_limit:
        maximum_allowed, limiting = scale_up_limit, SCALE_UP_LIMIT
    else:
        maximum_allowed, limiting = max_replicas, TOO_MANY_REPLICAS
    if desired_replicas < min_replicas:
        return min_replicas, TOO_FEW_REPLICAS
    if desired_replicas > maximum_allowed:
        return maximum_allowed, limiting
    return desired_replicas, DESIRED_WITHIN_RANGE


def replicas_change_per_period(period_seconds: float, events: Sequence[ScaleEvent], now: float) -> int:
    """Sum of the changes strictly newer than ``now - period`` (outdated flags do not matter here)."""
    cutoff = now - period_seconds
    return sum(e.replica_change for e in events if e.timestamp > cutoff)


def _period_start_replicas(
    current_replicas: int,
    period_seconds: int,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    now: float,
) -> int:
    added = replicas_change_per_period(period_seconds, scale_up_events, now)
    deleted = replicas_change_per_period(period_seconds, scale_down_events, now)
    return current_replicas - added + deleted


def calculate_scale_up_limit_with_scaling_rules(
    current_replicas: int,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    rules: ResolvedRules,
    now: float,
) -> int:
    """Highest replica count the scale-up policies allow now (may be below ``current``; the caller clamps)."""
    if rules.select_policy == "Disabled":
        return current_replicas
    use_min = rules.select_policy == "Min"
    result = MAX_INT32 if use_min else MIN_INT32
    for policy in rules.policies:
        start = _period_start_replicas(
            current_replicas, policy.period_seconds, scale_up_events, scale_down_events, now
        )
        if policy.type == "Pods":
            proposed = start + policy.value
        else:
            # Rounded up, or a small percentage of a small count would never add a pod.
            proposed = math.ceil(float(start) * (1 + float(policy.value) / 100))
        result = min(result, proposed) if use_min else max(result, proposed)
    return result


def calculate_scale_down_limit_with_behaviors(
    current_replicas: int,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    rules: ResolvedRules,
    now: float,
) -> int:
    """Lowest replica count the scale-down policies allow now (may be above ``current``; the caller clamps)."""
    if rules.select_policy == "Disabled":
        return current_replicas
    use_min_change = rules.select_policy == "Min"
    result = MIN_INT32 if use_min_change else MAX_INT32
    for policy in rules.policies:
        start = _period_start_replicas(
            current_replicas, policy.period_seconds, scale_up_events, scale_down_events, now
        )
        if policy.type == "Pods":
            proposed = start - policy.value
        else:
            # Go's int32(float64) conversion truncates toward zero, like int().
            proposed = int(float(start) * (1 - float(policy.value) / 100))
        result = max(result, proposed) if use_min_change else min(result, proposed)
    return result


def convert_desired_replicas_with_behavior_rate(
    current_replicas: int,
    desired_replicas: int,
    min_replicas: int,
    max_replicas: int,
    scale_up_rules: ResolvedRules,
    scale_down_rules: ResolvedRules,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    now: float,
) -> tuple[int, str]:
    """Rate-limit a stabilised recommendation by the policies, then clamp to min/max in the direction of change."""
    if desired_replicas > current_replicas:
        limit = calculate_scale_up_limit_with_scaling_rules(
            current_replicas, scale_up_events, scale_down_events, scale_up_rules, now
        )
        # Recent scale-ups may put the period-start count so high that the limit is below the current
        # count: hold, never shrink, until those events age out.
        limit = max(limit, current_replicas)
        if max_replicas > limit:
            maximum_allowed, reason = limit, SCALE_UP_LIMIT
        else:
            maximum_allowed, reason = max_replicas, TOO_MANY_REPLICAS
        if desired_replicas > maximum_allowed:
            return maximum_allowed, reason
    elif desired_replicas < current_replicas:
        limit = calculate_scale_down_limit_with_behaviors(
            current_replicas, scale_up_events, scale_down_events, scale_down_rules, now
        )
        limit = min(limit, current_replicas)
        if min_replicas < limit:
            minimum_allowed, reason = limit, SCALE_DOWN_LIMIT
        else:
            minimum_allowed, reason = min_replicas, TOO_FEW_REPLICAS
        if desired_replicas < minimum_allowed:
            return minimum_allowed, reason
    return desired_replicas, DESIRED_WITHIN_RANGE


def _store_event(
    events: tuple[ScaleEvent, ...], longest_period: int, change: int, now: float
) -> tuple[ScaleEvent, ...]:
    # markScaleEventsOutdated + reuse: every event older than the direction's longest period is flagged (the
    # flag sticks), and the last flagged one is overwritten; events are only appended when none is flagged.
    cutoff = now - longest_period
    marked = tuple(
        ScaleEvent(e.replica_change, e.timestamp, True) if (not e.outdated and e.timestamp < cutoff) else e
        for e in events
    )
    old_index = -1
    for i, e in enumerate(marked):
        if e.outdated:
            old_index = i
    new = ScaleEvent(change, now, False)
    if old_index < 0:
        return (*marked, new)
    return (*marked[:old_index], new, *marked[old_index + 1 :])


def store_scale_event(
    rules: tuple[ResolvedRules, ResolvedRules] | None,
    scale_up_events: tuple[ScaleEvent, ...],
    scale_down_events: tuple[ScaleEvent, ...],
    prev_replicas: int,
    new_replicas: int,
    now: float,
) -> tuple[tuple[ScaleEvent, ...], tuple[ScaleEvent, ...]]:
    """Record an applied change; without a behavior (``rules`` None) nothing is kept, as upstream."""
    if rules is None:
        return scale_up_events, scale_down_events
    up, down = rules
    if new_replicas > prev_replicas:
        return _store_event(scale_up_events, up.longest_period_seconds, new_replicas - prev_replicas, now), (
            scale_down_events
        )
    return scale_up_events, _store_event(
        scale_down_events, down.longest_period_seconds, prev_replicas - new_replicas, now
    )
