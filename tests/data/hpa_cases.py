"""Test cases ported as data from kubernetes/kubernetes ``pkg/controller/podautoscaler`` tests.

Sources: ``horizontal_test.go`` (TestScalingWithRules, TestConvertDesiredReplicasWithRules,
TestNormalizeDesiredReplicas, TestNormalizeDesiredReplicasWithBehavior, TestStoreScaleEvents,
TestCalculateScale{Up,Down}Limit..., the External-metric controller tests) and ``replica_calculator_test.go``
(the External and per-pod External cases, TestReplicaCalcConfigurableTolerance*). Values the Go tests give
in milli-units are kept in milli-units here and divided by 1000 where used. Times are "seconds ago".
"""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.decision.hpa import RatePolicy, ScalingRules

# The Go tests raise the legacy scale-up factor to 8 so that it does not get in their way.
GO_TEST_SCALE_UP_FACTOR = 8.0


def rules(pods: int, pods_period: int, percent: int, percent_period: int, window: int) -> ScalingRules:
    """``generateScalingRules``: selectPolicy Max, a zero value leaves that policy out (none: defaults)."""
    policies: list[RatePolicy] = []
    if pods:
        policies.append(RatePolicy("Pods", pods, pods_period))
    if percent:
        policies.append(RatePolicy("Percent", percent, percent_period))
    return ScalingRules(
        stabilization_window_seconds=window,
        select_policy="Max",
        policies=tuple(policies) if policies else None,
    )


def uniform_events(changes: list[int], period_seconds: int) -> tuple[tuple[int, float], ...]:
    """``generateEventsUniformDistribution``: one event in the middle of each equal slice of the period.

    Returns ``(change, seconds ago)``; Go truncates the offset to whole seconds.
    """
    segment = period_seconds / len(changes)
    return tuple(
        (change, float(int(period_seconds - segment * (i + 1) + segment / 2)))
        for i, change in enumerate(changes)
    )


@dataclass(frozen=True)
class RateCase:
    """One row of TestScalingWithRules (convertDesiredReplicasWithBehaviorRate after defaulting)."""

    name: str
    current: int
    desired: int
    min_replicas: int
    max_replicas: int
    expected: int
    reason: str
    up: ScalingRules | None = None
    down: ScalingRules | None = None
    up_events: tuple[tuple[int, float], ...] = ()
    down_events: tuple[tuple[int, float], ...] = ()


# fmt: off
# columns: name, current, desired, min, max, expected replicas, expected reason, then rules and events
RATE_CASES: list[RateCase] = [
    # REFERENCE §2 / "scaleUp with default behavior": +100 % per 15 s beats +4 pods.
    RateCase("scaleUp with default behavior", 10, 50, 1, 1000, 20, "ScaleUpLimit"),
    # REFERENCE §2: +100 pods per 60 s beats +100 %.
    RateCase("scaleUp with pods policy larger than percent policy", 10, 500, 1, 1000, 110, "ScaleUpLimit", up=rules(100, 60, 100, 60, 0)),
    # +100 % beats +2 pods.
    RateCase("scaleUp with percent policy larger than pods policy", 10, 500, 1, 1000, 20, "ScaleUpLimit", up=rules(2, 60, 100, 60, 0)),
    # The +100 pods allowance is more than needed.
    RateCase("scaleUp with spec MaxReplicas limitation with large pod policy", 10, 50, 1, 1000, 50, "DesiredWithinRange", up=rules(100, 60, 0, 0, 0)),
    # +10000 pods is more than needed too.
    RateCase("scaleUp with spec MaxReplicas limitation with large percent policy", 10, 50, 1, 1000, 50, "DesiredWithinRange", up=rules(10000, 60, 0, 0, 0)),
    # +30 pods per minute caps 10 → 50 at 40.
    RateCase("scaleUp with pod policy limitation", 10, 50, 1, 1000, 40, "ScaleUpLimit", up=rules(30, 60, 0, 0, 0)),
    # +200 % caps 10 → 50 at 30.
    RateCase("scaleUp with percent policy limitation", 10, 50, 1, 1000, 30, "ScaleUpLimit", up=rules(0, 0, 200, 60, 0)),
    # REFERENCE §2: −20 pods beats −1 % (which truncates to 99).
    RateCase("scaleDown with percent policy larger than pod policy", 100, 2, 1, 1000, 80, "ScaleDownLimit", down=rules(20, 60, 1, 60, 300)),
    # −2 pods (98) beats −1 % (99): Max picks the larger change.
    RateCase("scaleDown with pod policy larger than percent policy", 100, 2, 1, 1000, 98, "ScaleDownLimit", down=rules(2, 60, 1, 60, 300)),
    # −100 pods would go below zero: minReplicas (the defaulted 1) takes over.
    RateCase("scaleDown with spec MinReplicas=nil limitation with large pod policy", 10, 0, 1, 1000, 1, "TooFewReplicas", down=rules(100, 60, 0, 0, 300)),
    # Same with an explicit minReplicas of 1.
    RateCase("scaleDown with spec MinReplicas limitation with large pod policy", 10, 0, 1, 1000, 1, "TooFewReplicas", down=rules(100, 60, 0, 0, 300)),
    # REFERENCE §2: −100 % allows 0, minReplicas 5 holds.
    RateCase("scaleDown with spec MinReplicas limitation with large percent policy", 10, 2, 5, 1000, 5, "TooFewReplicas", down=rules(0, 0, 100, 60, 300)),
    # −5 pods per minute.
    RateCase("scaleDown with pod policy limitation", 10, 2, 1, 1000, 5, "ScaleDownLimit", down=rules(5, 60, 0, 0, 300)),
    # −50 % allows exactly the desired 5.
    RateCase("scaleDown with percent policy limitation", 10, 5, 1, 1000, 5, "DesiredWithinRange", down=rules(0, 0, 50, 60, 300)),
    # 200 < 100 − 15 + 300: maxReplicas binds, not the policy.
    RateCase("scaleUp with spec MaxReplicas limitation with large pod policy and events", 100, 500, 1, 200, 200, "TooManyReplicas", up=rules(300, 60, 0, 0, 0), up_events=uniform_events([1, 5, 9], 120)),
    # Same with a +10000 % policy.
    RateCase("scaleUp with spec MaxReplicas limitation with large percent policy and events", 100, 500, 1, 200, 200, "TooManyReplicas", up=rules(0, 0, 10000, 60, 0), up_events=uniform_events([1, 5, 9], 120)),
    # Period start 85 + 5 = 90 < 100: the limit never shrinks below the current count.
    RateCase("scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent scale up events", 100, 500, 1, 1000, 100, "ScaleUpLimit", up=rules(5, 120, 0, 0, 0), up_events=uniform_events([1, 5, 9], 120)),
    # 100 − 15 + 150.
    RateCase("scaleUp with pod policy and previous scale up events", 100, 500, 1, 1000, 235, "ScaleUpLimit", up=rules(150, 120, 0, 0, 0), up_events=uniform_events([1, 5, 9], 120)),
    # (100 − 15) × 3.
    RateCase("scaleUp with percent policy and previous scale up events", 100, 500, 1, 1000, 255, "ScaleUpLimit", up=rules(0, 0, 200, 120, 0), up_events=uniform_events([1, 5, 9], 120)),
    # Period start 6 − 4 + 2 = 4, +300 % = 16: scale-down events count too.
    RateCase("scaleUp with percent policy and previous scale up and down events", 6, 24, 1, 1000, 16, "ScaleUpLimit", up=rules(0, 0, 300, 300, 0), up_events=uniform_events([4], 120), down_events=uniform_events([2], 120)),
    # Default −100 % per 15 s: past events do not matter.
    RateCase("scaleDown with default policy and previous events", 10, 5, 1, 1000, 5, "DesiredWithinRange", down_events=uniform_events([1, 5, 9], 120)),
    # 100 + 15 − 115 = 0 < minReplicas 1.
    RateCase("scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events", 100, 0, 1, 1000, 1, "TooFewReplicas", down=rules(115, 120, 0, 0, 300), down_events=uniform_events([1, 5, 9], 120)),
    # 100 + 15 − 130 < minReplicas 5.
    RateCase("scaleDown with spec MinReplicas limitation with large pod policy and previous events", 100, 0, 5, 1000, 5, "TooFewReplicas", down=rules(130, 120, 0, 0, 300), down_events=uniform_events([1, 5, 9], 120)),
    # −100 % always reaches 0, so minReplicas binds.
    RateCase("scaleDown with spec MinReplicas limitation with large percent policy and previous events", 100, 2, 5, 1000, 5, "TooFewReplicas", down=rules(0, 0, 100, 120, 300), down_events=uniform_events([1, 5, 9], 120)),
    # 100 + 15 − 5 = 110 > 100: hold at the current count.
    RateCase("scaleDown with pod policy limitation and previous events", 100, 2, 1, 1000, 100, "ScaleDownLimit", down=rules(5, 120, 0, 0, 300), down_events=uniform_events([1, 5, 9], 120)),
    # (100 + 12) × 50 %.
    RateCase("scaleDown with percent policy limitation and previous events", 100, 0, 1, 1000, 56, "ScaleDownLimit", down=rules(0, 0, 50, 120, 300), down_events=uniform_events([2, 4, 6], 120)),
    # Period start 10 − 2 + 4 = 12, −50 % = 6.
    RateCase("scaleDown with percent policy and previous scale up and down events", 10, 1, 1, 1000, 6, "ScaleDownLimit", down=rules(0, 0, 50, 180, 0), up_events=uniform_events([2], 120), down_events=uniform_events([4], 120)),
    # (100 + 30) − 10 % = 117 > 100: keep 100.
    RateCase("scaleDown with previous events preventing further scale down", 100, 0, 1, 1000, 100, "ScaleDownLimit", down=rules(0, 0, 10, 120, 300), down_events=uniform_events([10, 10, 10], 120)),
    # (10 + 30) − 1000 % = −360: the desired 5 is within reach.
    RateCase("scaleDown with with previous events still allowing more scale down", 10, 5, 1, 1000, 5, "DesiredWithinRange", down=rules(0, 0, 1000, 120, 300), down_events=uniform_events([10, 10, 10], 120)),
    # Only events inside the 60 s period reduce the +1000 allowance.
    RateCase("check 'outdated' flag for events for one behavior for up", 100, 200, 1, 1000, 200, "DesiredWithinRange", up=rules(1000, 60, 0, 0, 0), up_events=uniform_events([8, 12, 9, 11], 120)),
    # Two policies with different periods on the same events.
    RateCase("check that events were not marked 'outdated' for two different policies in the behavior for up", 100, 200, 1, 1000, 200, "DesiredWithinRange", up=rules(1000, 120, 100, 60, 0), up_events=uniform_events([8, 12, 9, 11], 120)),
    # Same with a 30 s pods period.
    RateCase("check that events were marked 'outdated' for two different policies in the behavior for up", 100, 200, 1, 1000, 200, "DesiredWithinRange", up=rules(1000, 30, 100, 60, 0), up_events=uniform_events([8, 12, 9, 11], 120)),
    # The scale-down mirror of the first 'outdated' case.
    RateCase("check 'outdated' flag for events for one behavior for down", 100, 5, 1, 1000, 5, "DesiredWithinRange", down=rules(1000, 60, 0, 0, 300), down_events=uniform_events([8, 12, 9, 11], 120)),
    # Scale-down with two policies of different periods.
    RateCase("check that events were not marked 'outdated' for two different policies in the behavior for down", 100, 5, 1, 1000, 5, "DesiredWithinRange", down=rules(1000, 120, 100, 60, 300), down_events=uniform_events([8, 12, 9, 11], 120)),
    # Same with a 30 s pods period.
    RateCase("check that events were marked 'outdated' for two different policies in the behavior for down", 100, 5, 1, 1000, 5, "DesiredWithinRange", down=rules(1000, 30, 100, 60, 300), down_events=uniform_events([8, 12, 9, 11], 120)),
    # Within range with the default policies.
    RateCase("prenormalized desired replicas within range", 5, 7, 3, 8, 7, "DesiredWithinRange"),
    # Below minReplicas.
    RateCase("prenormalized desired replicas < minReplicas", 3, 1, 2, 8, 2, "TooFewReplicas"),
    # Zero is allowed when minReplicas is 0.
    RateCase("prenormalized desired replicas within range when minReplicas is 0", 1, 0, 0, 10, 0, "DesiredWithinRange"),
    # maxReplicas below the rate limit (20 → 40 allowed, max 10).
    RateCase("maxReplicas is the limit because maxReplicas < scaleUpLimit", 20, 1000, 1, 10, 10, "TooManyReplicas"),
    # maxReplicas binds on a big jump.
    RateCase("desired replica count is more than the maximum replica count", 100, 1000, 100, 150, 150, "TooManyReplicas"),
    # +1 % of 3 rounds up to one more pod.
    RateCase("scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies", 3, 1000, 1, 2000, 4, "ScaleUpLimit", up=rules(0, 0, 1, 60, 0)),
    # −20 pods (upstream skips this row with testThis; the arithmetic is the same as its neighbours).
    RateCase("scaleDownLimit is the limit because scaleDownLimit > minReplicas with user defined policies", 1000, 3, 3, 2000, 980, "ScaleDownLimit", down=rules(20, 60, 0, 0, 0)),
]
# fmt: on


@dataclass(frozen=True)
class LegacyConvertCase:
    """One row of TestConvertDesiredReplicasWithRules (legacy clamp)."""

    name: str
    current: int
    desired: int
    min_replicas: int
    max_replicas: int
    expected: int
    reason: str
    factor: float = GO_TEST_SCALE_UP_FACTOR


# fmt: off
# columns: name, current, desired, min, max, expected replicas, expected reason
LEGACY_CONVERT_CASES: list[LegacyConvertCase] = [
    # Nothing binds.
    LegacyConvertCase("prenormalized desired replicas within range", 5, 7, 3, 8, 7, "DesiredWithinRange"),
    # minReplicas binds.
    LegacyConvertCase("prenormalized desired replicas < minReplicas", 3, 1, 2, 8, 2, "TooFewReplicas"),
    # Zero is fine with minReplicas 0.
    LegacyConvertCase("prenormalized desired zeroed replicas within range", 1, 0, 0, 10, 0, "DesiredWithinRange"),
    # maxReplicas (10) is below 8 × 20.
    LegacyConvertCase("maxReplicas is the limit because maxReplicas < scaleUpLimit", 20, 1000, 1, 10, 10, "TooManyReplicas"),
    # calculateScaleUpLimit(3) with the test factor: 8 × 3.
    LegacyConvertCase("scaleUpLimit is the limit because scaleUpLimit < maxReplicas", 3, 1000, 1, 2000, 24, "ScaleUpLimit"),
    # Production factor 2: max(2 × 3, 4).
    LegacyConvertCase("production factor: max(2 x current, 4)", 3, 1000, 1, 2000, 6, "ScaleUpLimit", factor=2.0),
    # Production factor 2 from one replica: the minimum of 4 applies.
    LegacyConvertCase("production factor: minimum of 4 from 1 replica", 1, 1000, 1, 2000, 4, "ScaleUpLimit", factor=2.0),
]
# fmt: on


@dataclass(frozen=True)
class LegacyStabilizeCase:
    """One row of TestNormalizeDesiredReplicas (legacy 5-minute down-stabilisation)."""

    name: str
    recommendations: tuple[tuple[int, float], ...]
    desired: int
    expected: int
    expected_log_length: int


# fmt: off
# columns: name, (recommendation, seconds ago)..., desired, expected, length of the history afterwards
LEGACY_STABILIZE_CASES: list[LegacyStabilizeCase] = [
    # An empty log just records the new recommendation.
    LegacyStabilizeCase("empty log", (), 5, 5, 1),
    # The highest of the last 5 minutes (5) wins over 3.
    LegacyStabilizeCase("stabilize", ((4, 120), (5, 60)), 3, 5, 3),
    # Lower recent recommendations do not hold a higher desired count back.
    LegacyStabilizeCase("no stabilize", ((1, 120), (2, 60)), 3, 3, 3),
    # Recommendations older than the window are ignored, one of them is recycled.
    LegacyStabilizeCase("no stabilize - old recommendations", ((10, 600), (9, 540)), 3, 3, 2),
    # Mixed old and recent entries: 5 wins, the last old slot is recycled.
    LegacyStabilizeCase("stabilize - old recommendations", ((10, 600), (4, 60), (5, 120), (9, 540)), 3, 5, 4),
]
# fmt: on


@dataclass(frozen=True)
class BehaviorStabilizeCase:
    """One row of TestNormalizeDesiredReplicasWithBehavior (stabilizeRecommendationWithBehaviors)."""

    name: str
    recommendations: tuple[tuple[int, float], ...]
    current: int
    desired: int
    expected: int
    expected_stored: tuple[int, ...] | None
    up_window: int = 0
    down_window: int = 0


# fmt: off
# columns: name, (recommendation, seconds ago)..., current, desired, expected, stored values afterwards
BEHAVIOR_STABILIZE_CASES: list[BehaviorStabilizeCase] = [
    # Nothing to stabilise against.
    BehaviorStabilizeCase("empty recommendations for scaling down", (), 100, 5, 5, (5,)),
    # The highest of the last 3 minutes (5) holds the scale-down.
    BehaviorStabilizeCase("simple scale down stabilization", ((4, 120), (5, 60)), 100, 3, 5, (4, 5, 3), down_window=180),
    # The lowest of the last 5 minutes (4) holds the scale-up.
    BehaviorStabilizeCase("simple scale up stabilization", ((4, 120), (5, 60)), 1, 7, 4, (4, 5, 7), up_window=300),
    # Lower history does not block a scale-down with no down window.
    BehaviorStabilizeCase("no scale down stabilization", ((1, 120), (2, 60)), 100, 3, 3, (1, 2, 3), up_window=300),
    # Higher history does not block a scale-up with no up window.
    BehaviorStabilizeCase("no scale up stabilization", ((4, 120), (5, 60)), 1, 3, 3, (4, 5, 3), down_window=300),
    # Both windows 0: the last old entry is recycled.
    BehaviorStabilizeCase("no scale down stabilization, reuse recommendation element", ((10, 600), (9, 540)), 100, 3, 3, (10, 3)),
    # Same for a scale-up.
    BehaviorStabilizeCase("no scale up stabilization, reuse recommendation element", ((10, 600), (9, 540)), 1, 100, 100, (10, 100)),
    # Entries out of the 3-minute window are ignored; the last of them is recycled.
    BehaviorStabilizeCase("scale down stabilization, reuse one of obsolete recommendation element", ((10, 600), (4, 60), (5, 120), (9, 540)), 100, 3, 5, (10, 4, 5, 3), down_window=180),
    # Only the first entry is outside both windows (up 300 s, down 0 s here), so only it is recycled.
    BehaviorStabilizeCase("scale up stabilization, reuse one of obsolete recommendation element", ((10, 6000), (6, 60), (5, 120), (9, 180)), 1, 100, 5, (100, 6, 5, 9), up_window=300),
    # Going down while a recent 3 stands: hold at the current 2.
    BehaviorStabilizeCase("scale up and down stabilization, do not scale up when prenormalized rec goes down", ((2, 6000), (3, 180)), 2, 1, 2, None, up_window=300, down_window=300),
    # Going up while a recent 1 stands: hold at the current 2.
    BehaviorStabilizeCase("scale up and down stabilization, do not scale down when prenormalized rec goes up", ((2, 6000), (1, 180)), 2, 3, 2, None, up_window=300, down_window=300),
]
# fmt: on


@dataclass(frozen=True)
class StoreEventsCase:
    """One row of TestStoreScaleEvents; run for both directions like upstream."""

    name: str
    previous: tuple[tuple[int, float], ...]
    rules: ScalingRules | None
    expected_change_last_60s: int
    expected_after: tuple[tuple[int, bool], ...]


# fmt: off
# columns: name, (change, seconds ago)..., rules, change in the last 60 s, (change, outdated)... afterwards
STORE_EVENTS_CASES: list[StoreEventsCase] = [
    # No behavior: nothing is stored.
    StoreEventsCase("empty entries with default behavior", (), None, 0, ()),
    # With a behavior the first event is appended.
    StoreEventsCase("empty entries with two-policy-behavior", (), rules(10, 60, 100, 60, 0), 0, ((5, False),)),
    # Without a behavior even an outdated event stays as it is.
    StoreEventsCase("one outdated entry to be kept untouched without behavior", ((7, 61),), None, 0, ((7, False),)),
    # An event older than the longest period is overwritten.
    StoreEventsCase("one outdated entry to be replaced with behavior", ((7, 61),), rules(10, 60, 100, 60, 0), 0, ((5, False),)),
    # A recent event is kept and the new one appended.
    StoreEventsCase("one actual entry to be not touched with behavior", ((7, 58),), rules(10, 60, 100, 60, 0), 7, ((7, False), (5, False))),
    # The outdated one of two is overwritten in place.
    StoreEventsCase("two entries, one of them to be replaced", ((7, 61), (6, 59)), rules(10, 60, 0, 0, 0), 6, ((5, False), (6, False))),
    # Two outdated: both flagged, the last one overwritten, the other keeps its flag.
    StoreEventsCase("replace one entry, use policies with different periods", ((8, 29), (6, 59), (7, 61), (9, 61)), rules(10, 60, 100, 30, 0), 14, ((8, False), (6, False), (7, True), (5, False))),
    # The longest period is 120 s: nothing is outdated.
    StoreEventsCase("two entries, both actual", ((7, 58), (6, 59)), rules(10, 120, 100, 30, 0), 13, ((7, False), (6, False), (5, False))),
]
# fmt: on


@dataclass(frozen=True)
class CalcCase:
    """One External-metric replica calculation (replica_calculator_test.go)."""

    name: str
    kind: str
    usage_milli: int
    target_milli: int
    current: int
    expected: int
    ready: int | None = None
    tolerance_down: float = 0.1
    tolerance_up: float = 0.1


# fmt: off
# columns: name, target kind, sum (milli), target (milli), current replicas, expected replicas
CALC_CASES: list[CalcCase] = [
    # TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods: only 1 of 3 pods ready → ceil(1.95 × 1).
    CalcCase("scale up ignores unready pods", "Value", 8600, 4400, 3, 2, ready=1),
    # TestReplicaCalcScaleUpPerPodCMExternal: ceil(8600 / 2150).
    CalcCase("per-pod scale up", "AverageValue", 8600, 2150, 3, 4),
    # TestReplicaCalcScaleDownCMExternal: ceil(0.59997 × 5).
    CalcCase("scale down", "Value", 8600, 14334, 5, 3),
    # TestReplicaCalcScaleDownPerPodCMExternal: ceil(8600 / 2867).
    CalcCase("per-pod scale down", "AverageValue", 8600, 2867, 5, 3),
    # TestReplicaCalcToleranceCMExternal: ratio 0.968 is within 10 %.
    CalcCase("tolerance", "Value", 8600, 8888, 3, 3),
    # TestReplicaCalcTolerancePerPodCMExternal: 8600 / (2900 × 3) = 0.989.
    CalcCase("per-pod tolerance", "AverageValue", 8600, 2900, 3, 3),
    # TestReplicaCalcConfigurableToleranceCMExternal: 1.011 is outside a 1 % scale-up tolerance.
    CalcCase("configurable scale-up tolerance", "Value", 8900, 8800, 3, 4, tolerance_up=0.01),
    # TestReplicaCalcConfigurableTolerancePerPodCMExternal: 8600 / (2800 × 3) = 1.024 > 1.01.
    CalcCase("configurable per-pod scale-up tolerance", "AverageValue", 8600, 2800, 3, 4, tolerance_up=0.01),
    # TestExternalPerPodMetricReplicaOverflow: the count is capped at MaxInt32.
    CalcCase("per-pod replica overflow", "AverageValue", 2**63 - 1, 1, 1, 2**31 - 1),
    # TestExternalPerPodMetricUsageOverflow: usage equal to the per-pod target keeps 1.
    CalcCase("per-pod usage overflow", "AverageValue", 2**63 - 1, 2**63 - 1, 1, 1),
    # From zero replicas there is no tolerance: ceil(20000 / 15000) (TestScaleUpFromZeroCMObject, same path).
    CalcCase("from zero", "Value", 20000, 15000, 0, 2, ready=0),
    # A ratio of exactly 1 from zero gives one replica (TestScaleUpFromZeroIgnoresToleranceCMObject).
    CalcCase("from zero ignores tolerance", "Value", 1000, 1000, 0, 1, ready=0),
    # Nothing waiting, minReplicas 0: down to zero (TestScaleDownToZeroCMExternal).
    CalcCase("to zero", "Value", 0, 14400, 5, 0),
]
# fmt: on


@dataclass(frozen=True)
class Metric:
    """One External metric of a controller case: target kind/value in milli, reading in milli or None."""

    kind: str
    target_milli: int
    reading_milli: int | None


@dataclass(frozen=True)
class ControllerCase:
    """One controller pass from horizontal_test.go with the Go tests' scale-up factor of 8.

    The legacy path unless ``behavior_up`` is set; ``raw_override`` stands for what upstream computes from a CPU
    fixture (outside this module), given as the raw desired count.
    """

    name: str
    min_replicas: int
    max_replicas: int
    spec_replicas: int
    metrics: tuple[Metric, ...]
    expected: int
    reason: str
    # None: the controller has never seen the HPA (nil history); () an empty known history.
    recommendations: tuple[tuple[int, float], ...] | None = None
    status_replicas: int | None = None
    ready_pods: int | None = None
    behavior_up: ScalingRules | None = None
    raw_override: int | None = None


# fmt: off
# columns: name, min, max, spec replicas, metrics, expected replicas, expected reason
CONTROLLER_CASES: list[ControllerCase] = [
    # TestScaleUpCMExternal: ceil(8.6 / 6.666 × 3) = 4.
    ControllerCase("TestScaleUpCMExternal", 2, 6, 3, (Metric("Value", 6666, 8600),), 4, "DesiredWithinRange"),
    # TestScaleUpPerPodCMExternal: ceil(8.6 / 2.222) = 4.
    ControllerCase("TestScaleUpPerPodCMExternal", 2, 6, 3, (Metric("AverageValue", 2222, 8600),), 4, "DesiredWithinRange"),
    # TestScaleDownCMExternal: ceil(8.6 / 14.4 × 5) = 3 with an empty history.
    ControllerCase("TestScaleDownCMExternal", 2, 6, 5, (Metric("Value", 14400, 8600),), 3, "DesiredWithinRange", recommendations=()),
    # TestScaleDownToZeroCMExternal: nothing waiting and minReplicas 0.
    ControllerCase("TestScaleDownToZeroCMExternal", 0, 6, 5, (Metric("Value", 14400, 0),), 0, "DesiredWithinRange", recommendations=()),
    # TestScaleDownPerPodCMExternal: ceil(8.6 / 3) = 3.
    ControllerCase("TestScaleDownPerPodCMExternal", 2, 6, 5, (Metric("AverageValue", 3000, 8600),), 3, "DesiredWithinRange", recommendations=()),
    # TestToleranceCMExternal: 8.6 / 8.666 is within tolerance.
    ControllerCase("TestToleranceCMExternal", 2, 6, 4, (Metric("Value", 8666, 8600),), 4, "DesiredWithinRange"),
    # TestTolerancePerPodCMExternal: 8.6 / (2.2 × 4) is within tolerance.
    ControllerCase("TestTolerancePerPodCMExternal", 2, 6, 4, (Metric("AverageValue", 2200, 8600),), 4, "DesiredWithinRange"),
    # TestScaleUpOneMetricEmpty, External for CPU: ceil(1.33 × 3) = 4, the broken one cannot veto a scale-up.
    ControllerCase("TestScaleUpOneMetricEmpty", 2, 6, 3, (Metric("Value", 3000, 4000), Metric("Value", 100, None)), 4, "DesiredWithinRange"),
    # TestNoScaleDownOneMetricEmpty, External for CPU: ceil(0.56 × 5) = 3 < 5 and the other failed: hold.
    ControllerCase("TestNoScaleDownOneMetricEmpty", 2, 6, 5, (Metric("Value", 5000, 2800), Metric("Value", 1000, None)), 5, "FailedComputeMetricsReplicas", recommendations=()),
    # TestScaleUpBothMetricsEmpty, for External: no metric readable, no change.
    ControllerCase("TestScaleUpBothMetricsEmpty", 2, 6, 3, (Metric("Value", 1000, None),), 3, "FailedComputeMetricsReplicas"),
    # TestScaleUpFromZeroCMObject through an External Value target: ceil(20 / 15) from zero.
    ControllerCase("scale up from zero", 0, 6, 0, (Metric("Value", 15000, 20000),), 2, "DesiredWithinRange", ready_pods=0),
    # TestZeroReplicas: a target at zero with minReplicas 3 is left alone.
    ControllerCase("TestZeroReplicas", 3, 5, 0, (Metric("Value", 1000, 5000),), 0, "ScalingDisabled"),
    # TestTooFewReplicas: below minReplicas, raised before any metric is read.
    ControllerCase("TestTooFewReplicas", 3, 5, 2, (Metric("Value", 1000, None),), 3, "BelowMinReplicas"),
    # TestTooManyReplicas: above maxReplicas, lowered before any metric is read.
    ControllerCase("TestTooManyReplicas", 3, 5, 10, (Metric("Value", 1000, None),), 5, "AboveMaxReplicas"),
    # TestScaleDownStabilizeInitialSize: a never-seen HPA remembers its size, so 5 → ceil(0.6 × 5) = 3 waits.
    ControllerCase("TestScaleDownStabilizeInitialSize", 2, 6, 5, (Metric("Value", 5000, 3000),), 5, "ScaleDownStabilized"),
    # TestStabilizeDownscale: ceil(0.5 × 3 ready) = 2, but a 4 one minute ago holds (the 10 is ten minutes old).
    ControllerCase("TestStabilizeDownscale", 1, 5, 4, (Metric("Value", 2000, 1000),), 4, "ScaleDownStabilized", recommendations=((10, 600), (4, 60)), ready_pods=3),
    # TestMinReplicas: the CPU fixture gives 1, minReplicas 2.
    ControllerCase("TestMinReplicas", 2, 5, 3, (), 2, "TooFewReplicas", recommendations=(), raw_override=1),
    # TestZeroMinReplicasDesiredZero: 0 is allowed with minReplicas 0.
    ControllerCase("TestZeroMinReplicasDesiredZero", 0, 5, 3, (), 0, "DesiredWithinRange", recommendations=(), raw_override=0),
    # TestMaxReplicas: the CPU fixture gives 21, maxReplicas 5.
    ControllerCase("TestMaxReplicas", 2, 5, 3, (), 5, "TooManyReplicas", raw_override=21),
    # TestUpscaleCap: the CPU fixture gives 60, scale-up +700 % per minute caps it at 24.
    ControllerCase("TestUpscaleCap", 1, 100, 3, (), 24, "ScaleUpLimit", behavior_up=rules(0, 0, 700, 60, 0), raw_override=60),
    # TestUpscaleCapGreaterThanMaxReplicas: same with maxReplicas 20.
    ControllerCase("TestUpscaleCapGreaterThanMaxReplicas", 1, 20, 3, (), 20, "TooManyReplicas", behavior_up=rules(0, 0, 700, 60, 0), raw_override=60),
]
# fmt: on
