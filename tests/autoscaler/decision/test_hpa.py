"""The HPA emulation against upstream's own test cases (tests/data/hpa_cases.py) and replayed histories."""

from __future__ import annotations

import pytest

from autoscaler.decision.hpa import (
    Behavior,
    ExternalTarget,
    HpaState,
    RatePolicy,
    ScaleEvent,
    ScalingRules,
    TimestampedRecommendation,
    Tolerances,
    decide,
    default_behavior,
    external_metric_replicas,
    external_per_pod_metric_replicas,
    milli_value,
    recommend,
    step,
)
from autoscaler.decision.hpa_behavior import (
    calculate_scale_down_limit_with_behaviors,
    calculate_scale_up_limit_with_scaling_rules,
    convert_desired_replicas_with_behavior_rate,
    convert_desired_replicas_with_rules,
    replicas_change_per_period,
    resolve_behavior,
    stabilize_recommendation,
    stabilize_recommendation_with_behaviors,
    store_scale_event,
)
from tests.data.hpa_cases import (
    BEHAVIOR_STABILIZE_CASES,
    CALC_CASES,
    CONTROLLER_CASES,
    GO_TEST_SCALE_UP_FACTOR,
    LEGACY_CONVERT_CASES,
    LEGACY_STABILIZE_CASES,
    RATE_CASES,
    STORE_EVENTS_CASES,
    BehaviorStabilizeCase,
    CalcCase,
    ControllerCase,
    LegacyConvertCase,
    LegacyStabilizeCase,
    RateCase,
    StoreEventsCase,
    rules,
)

NOW = 100_000.0


def _events(pairs: tuple[tuple[int, float], ...]) -> tuple[ScaleEvent, ...]:
    return tuple(ScaleEvent(change, NOW - age) for change, age in pairs)


def _recs(pairs: tuple[tuple[int, float], ...]) -> tuple[TimestampedRecommendation, ...]:
    return tuple(TimestampedRecommendation(value, NOW - age) for value, age in pairs)


@pytest.mark.parametrize("case", RATE_CASES, ids=lambda c: c.name)
def test_scaling_with_rules(case: RateCase) -> None:
    up, down = resolve_behavior(Behavior(scale_up=case.up, scale_down=case.down))
    replicas, reason = convert_desired_replicas_with_behavior_rate(
        case.current,
        case.desired,
        case.min_replicas,
        case.max_replicas,
        up,
        down,
        _events(case.up_events),
        _events(case.down_events),
        NOW,
    )
    assert (replicas, reason) == (case.expected, case.reason)


@pytest.mark.parametrize("case", LEGACY_CONVERT_CASES, ids=lambda c: c.name)
def test_convert_desired_replicas_with_rules(case: LegacyConvertCase) -> None:
    got = convert_desired_replicas_with_rules(
        case.current, case.desired, case.min_replicas, case.max_replicas, scale_up_limit_factor=case.factor
    )
    assert got == (case.expected, case.reason)


@pytest.mark.parametrize("case", LEGACY_STABILIZE_CASES, ids=lambda c: c.name)
def test_normalize_desired_replicas_legacy(case: LegacyStabilizeCase) -> None:
    stabilized, history = stabilize_recommendation(_recs(case.recommendations), NOW, case.desired, 300)
    assert stabilized == case.expected
    assert len(history) == case.expected_log_length
    assert TimestampedRecommendation(case.desired, NOW) in history


@pytest.mark.parametrize("case", BEHAVIOR_STABILIZE_CASES, ids=lambda c: c.name)
def test_normalize_desired_replicas_with_behavior(case: BehaviorStabilizeCase) -> None:
    stabilized, _, history = stabilize_recommendation_with_behaviors(
        _recs(case.recommendations), NOW, case.current, case.desired, case.up_window, case.down_window
    )
    assert stabilized == case.expected
    if case.expected_stored is not None:
        assert tuple(r.recommendation for r in history) == case.expected_stored


@pytest.mark.parametrize("case", STORE_EVENTS_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("direction", ["up", "down"])
def test_store_scale_events(case: StoreEventsCase, direction: str) -> None:
    previous = _events(case.previous)
    assert replicas_change_per_period(60, previous, NOW) == case.expected_change_last_60s
    resolved = None
    if case.rules is not None:
        behavior = Behavior(scale_up=case.rules) if direction == "up" else Behavior(scale_down=case.rules)
        resolved = resolve_behavior(behavior)
    if direction == "up":
        stored, untouched = store_scale_event(resolved, previous, (), 10, 15, NOW)
    else:
        untouched, stored = store_scale_event(resolved, (), previous, 10, 5, NOW)
    assert untouched == ()
    assert tuple((e.replica_change, e.outdated) for e in stored) == case.expected_after


def test_calculate_limits_with_min_select_policy() -> None:
    # TestCalculateScaleUpLimitWithScalingRules / TestCalculateScaleDownLimitWithBehaviors: Min picks the
    # smaller change, i.e. min(1 + 2, ceil(1.5)) up and max(5 − 2, int(2.5)) down.
    min_rules = ScalingRules(
        stabilization_window_seconds=300,
        select_policy="Min",
        policies=(RatePolicy("Pods", 2, 60), RatePolicy("Percent", 50, 60)),
    )
    up, down = resolve_behavior(Behavior(scale_up=min_rules, scale_down=min_rules))
    assert calculate_scale_up_limit_with_scaling_rules(1, (), (), up, NOW) == 2
    assert calculate_scale_down_limit_with_behaviors(5, (), (), down, NOW) == 3


def test_disabled_select_policy_never_moves() -> None:
    frozen = ScalingRules(select_policy="Disabled")
    up, down = resolve_behavior(Behavior(scale_up=frozen, scale_down=frozen))
    assert convert_desired_replicas_with_behavior_rate(5, 50, 1, 100, up, down, (), (), NOW) == (
        5,
        "ScaleUpLimit",
    )
    assert convert_desired_replicas_with_behavior_rate(5, 1, 1, 100, up, down, (), (), NOW) == (
        5,
        "ScaleDownLimit",
    )


@pytest.mark.parametrize("case", CALC_CASES, ids=lambda c: c.name)
def test_external_replica_calculator(case: CalcCase) -> None:
    tolerances = Tolerances(scale_down=case.tolerance_down, scale_up=case.tolerance_up)
    usage, target = case.usage_milli / 1000, case.target_milli / 1000
    if case.kind == "Value":
        ready = case.current if case.ready is None else case.ready
        got = external_metric_replicas(usage, target, case.current, ready, tolerances)
    else:
        got = external_per_pod_metric_replicas(usage, target, case.current, tolerances)
    assert got == case.expected


def test_per_pod_from_zero_status_replicas() -> None:
    # Go divides by zero status replicas: +Inf (work waiting) is outside tolerance, NaN (none) too.
    assert external_per_pod_metric_replicas(5.0, 2.0, 0, Tolerances()) == 3
    assert external_per_pod_metric_replicas(0.0, 2.0, 0, Tolerances()) == 0


@pytest.mark.parametrize(
    ("up_tolerance", "expected"),
    [
        # KEP-4951 per-direction tolerance from behavior.scaleUp.tolerance: 1.011 is outside 1 %.
        (0.01, 4),
        # The controller-wide 10 % keeps 3.
        (None, 3),
    ],
)
def test_recommend_takes_tolerance_from_behavior(up_tolerance: float | None, expected: int) -> None:
    behavior = Behavior(scale_up=ScalingRules(tolerance=up_tolerance))
    result = recommend([(ExternalTarget("Value", 8.8), 8.9)], 3, 3, behavior=behavior)
    assert result.replicas == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Exact decimals convert exactly despite binary floats.
        (0.1, 100),
        # REFERENCE §1: 1.5 is 1500m.
        (1.5, 1500),
        # 8.6 × 1000 is 8600.000000000002 in binary: still 8600.
        (8.6, 8600),
        # Sub-milli values round up, as MilliValue() does.
        (0.0001, 1),
        # A nano value still rounds up to one milli.
        (1e-9, 1),
        # Zero stays zero.
        (0.0, 0),
    ],
)
def test_milli_value(value: float, expected: int) -> None:
    assert milli_value(value) == expected


def _initial_state(recommendations: tuple[tuple[int, float], ...] | None) -> HpaState:
    if recommendations is None:
        return HpaState()
    return HpaState(recommendations=_recs(recommendations), initialized=True)


@pytest.mark.parametrize("case", CONTROLLER_CASES, ids=lambda c: c.name)
def test_controller_pass(case: ControllerCase) -> None:
    if case.raw_override is not None:
        raw: int | None = case.raw_override
    else:
        metrics = [
            (
                ExternalTarget(m.kind, m.target_milli / 1000),  # type: ignore[arg-type]
                None if m.reading_milli is None else m.reading_milli / 1000,
            )
            for m in case.metrics
        ]
        ready = case.spec_replicas if case.ready_pods is None else case.ready_pods
        raw = recommend(metrics, case.spec_replicas, ready, status_replicas=case.status_replicas).replicas
    behavior = Behavior(scale_up=case.behavior_up) if case.behavior_up is not None else None
    replicas, _, reason = step(
        _initial_state(case.recommendations),
        NOW,
        case.spec_replicas,
        raw,
        case.min_replicas,
        case.max_replicas,
        behavior,
        scale_up_limit_factor=GO_TEST_SCALE_UP_FACTOR,
    )
    assert (replicas, reason) == (case.expected, case.reason)


@pytest.mark.parametrize(
    ("behavior", "current", "raw", "min_replicas", "expected", "reason"),
    [
        # REFERENCE §2: 10 → 50 with the default behavior gives 20.
        (default_behavior(), 10, 50, 1, 20, "ScaleUpLimit"),
        # REFERENCE §2: up(100 pods/60 s, 100 %/60 s) 10 → 500 gives 110.
        (Behavior(scale_up=rules(100, 60, 100, 60, 0)), 10, 500, 1, 110, "ScaleUpLimit"),
        # REFERENCE §2: down(20 pods/60 s, 1 %/60 s) 100 → 2 gives 80.
        (Behavior(scale_down=rules(20, 60, 1, 60, 300)), 100, 2, 1, 80, "ScaleDownLimit"),
        # REFERENCE §2: min 5 with down(100 %/60 s) 10 → 2 gives 5.
        (Behavior(scale_down=rules(0, 0, 100, 60, 300)), 10, 2, 5, 5, "TooFewReplicas"),
    ],
)
def test_reference_examples_through_step(
    behavior: Behavior, current: int, raw: int, min_replicas: int, expected: int, reason: str
) -> None:
    replicas, state, got_reason = step(
        HpaState(initialized=True), NOW, current, raw, min_replicas, 1000, behavior
    )
    assert (replicas, got_reason) == (expected, reason)
    # The applied change is remembered for the next period, in its own direction.
    events = state.scale_up_events if expected > current else state.scale_down_events
    assert events == (ScaleEvent(abs(expected - current), NOW),)


def test_legacy_path_uses_production_factor_two_by_default() -> None:
    # No behavior: at most max(2 × 10, 4) = 20, the same as the default behavior but via the legacy rule.
    assert step(HpaState(), NOW, 10, 50, 1, 1000, None)[:1] == (20,)
    # The Go tests' factor 8 lets 50 through.
    assert step(HpaState(), NOW, 10, 50, 1, 1000, None, scale_up_limit_factor=8)[:1] == (50,)
    # The legacy path keeps no scale events.
    assert step(HpaState(), NOW, 10, 50, 1, 1000, None)[1].scale_up_events == ()


def _target(value: float, name: str, kind: str = "Value") -> ExternalTarget:
    return ExternalTarget(kind, value, name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("readings", "current", "expected", "winner", "condition"),
    [
        # The largest proposal wins: queued 8/1 × 2 = 16 beats running 3/1 × 2 = 6.
        ((3.0, 8.0), 2, 16, 1, "ValidMetricFound"),
        # One metric unreadable, the other proposes a scale-up: allowed.
        ((None, 8.0), 2, 16, 1, "ValidMetricFound"),
        # One metric unreadable, the other proposes a scale-down: refused (no scaling at all this pass).
        ((None, 0.5), 4, None, None, "FailedGetExternalMetric"),
        # One unreadable, the other is on target (holds the current count): not a scale-down, so it stands.
        ((None, 1.0), 4, 4, 1, "ValidMetricFound"),
        # Every metric unreadable: nothing.
        ((None, None), 4, None, None, "FailedGetExternalMetric"),
        # Two zero proposals: upstream's "replicas == 0 ||" lets the last one win.
        ((0.0, 0.0), 4, 0, 1, "ValidMetricFound"),
    ],
)
def test_several_metrics(
    readings: tuple[float | None, float | None],
    current: int,
    expected: int | None,
    winner: int | None,
    condition: str,
) -> None:
    targets = (_target(1.0, "running"), _target(1.0, "queued"))
    result = recommend(list(zip(targets, readings, strict=True)), current, current)
    assert (result.replicas, result.metric_index, result.condition) == (expected, winner, condition)
    assert result.invalid_metrics == sum(r is None for r in readings)
    if winner is not None:
        assert targets[winner].metric in result.reason
    else:
        assert "invalid metrics" in result.reason


def test_no_metric_specs_is_an_error() -> None:
    assert recommend([], 3, 3).replicas is None


def test_value_and_average_value_mix() -> None:
    # AverageValue judges tolerance against status replicas (a surge pod here) and ignores readiness.
    metrics = [(_target(10.0, "queued", "AverageValue"), 35.0), (_target(10.0, "running"), 10.0)]
    result = recommend(metrics, 3, 1, status_replicas=4)
    assert result.proposals == (4, 3)
    assert (result.replicas, result.metric_index) == (4, 0)


def test_failed_metrics_record_nothing() -> None:
    state = HpaState(recommendations=_recs(((5, 30),)), initialized=True)
    replicas, new_state, reason = step(state, NOW, 5, None, 1, 10, default_behavior())
    assert (replicas, reason) == (5, "FailedComputeMetricsReplicas")
    assert new_state == state


def test_decide_reports_both_conditions() -> None:
    # TestScaleDownStabilizeInitialSize: AbleToScale says ScaleDownStabilized, ScalingLimited DesiredWithinRange.
    decision = decide(HpaState(), NOW, 5, 3, 2, 6, None)
    assert (decision.replicas, decision.able_to_scale, decision.scaling_limited) == (
        5,
        "ScaleDownStabilized",
        "DesiredWithinRange",
    )
    assert decision.stabilized == 5


def test_defaults_mirror_upstream() -> None:
    up, down = resolve_behavior(default_behavior())
    assert (up.stabilization_window_seconds, up.select_policy) == (0, "Max")
    assert up.policies == (RatePolicy("Pods", 4, 15), RatePolicy("Percent", 100, 15))
    # The scale-down window comes from the controller flag, 300 s unless overridden.
    assert (down.stabilization_window_seconds, down.select_policy) == (300, "Max")
    assert down.policies == (RatePolicy("Percent", 100, 15),)
    assert resolve_behavior(default_behavior(), 120)[1].stabilization_window_seconds == 120
    # A partial rule keeps the defaults for what it leaves unset.
    partial_up, _ = resolve_behavior(Behavior(scale_up=ScalingRules(stabilization_window_seconds=60)))
    assert (partial_up.stabilization_window_seconds, partial_up.policies) == (60, up.policies)


@pytest.mark.parametrize(
    "build",
    [
        # Unknown policy type.
        lambda: RatePolicy("Replicas", 1, 15),  # type: ignore[arg-type]
        # Zero value.
        lambda: RatePolicy("Pods", 0, 15),
        # Period beyond the API's 1800 s.
        lambda: RatePolicy("Pods", 1, 1801),
        # Window beyond the API's 3600 s.
        lambda: ScalingRules(stabilization_window_seconds=3601),
        # Negative tolerance.
        lambda: ScalingRules(tolerance=-0.1),
        # Non-positive target.
        lambda: ExternalTarget("Value", 0.0),
        # Max below min.
        lambda: step(HpaState(), NOW, 3, 3, 5, 4, None),
    ],
)
def test_invalid_inputs_are_refused(build: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        build()  # type: ignore[operator]


def _replay(
    raw_by_time: list[tuple[float, int]],
    current: int,
    min_replicas: int,
    max_replicas: int,
    behavior: Behavior | None,
    state: HpaState | None = None,
) -> tuple[list[tuple[float, int, str]], HpaState]:
    """Feed each applied count back as the next current count, like a target that scales instantly."""
    state = HpaState() if state is None else state
    out: list[tuple[float, int, str]] = []
    for now, raw in raw_by_time:
        current, state, reason = step(state, now, current, raw, min_replicas, max_replicas, behavior)
        out.append((now, current, reason))
    return out, state


def test_replay_legacy_down_stabilization_window() -> None:
    # Load drops at t=15; the legacy path keeps the highest recommendation that is not older than 300 s:
    # the 10 recorded at t=0 still counts at t=300 (not *before* the cutoff) and is gone at t=315.
    timeline = [(0.0, 10)] + [(15.0 * k, 2) for k in range(1, 30)]
    out, _ = _replay(timeline, 10, 1, 20, None)
    by_time = {t: (n, r) for t, n, r in out}
    assert by_time[300.0] == (10, "ScaleDownStabilized")
    assert by_time[315.0] == (2, "DesiredWithinRange")
    assert all(n == 10 for t, n, _ in out if t < 315)


def test_replay_default_behavior_scale_up_at_five_second_steps() -> None:
    # Default scale-up: max(+4, +100 %) per 15 s, counted from the replicas at the period start. Steps every
    # 5 s do not speed it up: the event at t=0 leaves the period only when it is strictly older than 15 s.
    timeline = [(5.0 * k, 50) for k in range(0, 16)]
    out, state = _replay(timeline, 1, 1, 100, default_behavior(), HpaState(initialized=True))
    counts = [n for _, n, _ in out]
    assert counts == [5, 5, 5, 10, 10, 10, 20, 20, 20, 40, 40, 40, 50, 50, 50, 50]
    assert [r for _, _, r in out][:3] == ["ScaleUpLimit"] * 3
    assert out[-1][2] == "DesiredWithinRange"
    # Events older than the 15 s period were recycled instead of piling up.
    assert len(state.scale_up_events) <= 2


def test_replay_default_behavior_scale_down_waits_for_the_window() -> None:
    # At 50 until t=95, then the load falls to 5. The highest recommendation of the last 300 s (50 at t=95)
    # holds the count until t=395, when that entry is no longer strictly inside the window.
    timeline = [(5.0 * k, 50) for k in range(0, 20)] + [(5.0 * k, 5) for k in range(20, 90)]
    out, _ = _replay(timeline, 50, 1, 100, default_behavior(), HpaState(initialized=True))
    by_time = {t: n for t, n, _ in out}
    assert by_time[390.0] == 50
    assert by_time[395.0] == 5


def test_replay_pods_per_minute_scale_down() -> None:
    # One pod per 60 s, no stabilisation: each removal must leave the 60 s period before the next one.
    behavior = Behavior(scale_down=rules(1, 60, 0, 0, 0))
    timeline = [(15.0 * k, 2) for k in range(0, 17)]
    out, _ = _replay(timeline, 10, 1, 20, behavior, HpaState(initialized=True))
    by_time = {t: n for t, n, _ in out}
    assert [by_time[t] for t in (0.0, 45.0, 60.0, 120.0, 180.0, 240.0)] == [9, 9, 8, 7, 6, 5]


def test_replay_new_hpa_does_not_scale_down_before_the_window() -> None:
    # A never-seen HPA records its current size first (recordInitialRecommendation).
    timeline = [(15.0 * k, 1) for k in range(0, 22)]
    out, _ = _replay(timeline, 6, 1, 10, None)
    by_time = {t: n for t, n, _ in out}
    assert by_time[300.0] == 6
    assert by_time[315.0] == 1


def test_history_stays_bounded_over_a_long_replay() -> None:
    # One day at the controller's 15 s period with a load that swings: the stored history must not grow.
    raws = [1 + (k * 7) % 40 for k in range(5760)]
    _, state = _replay([(15.0 * k, r) for k, r in enumerate(raws)], 5, 1, 50, default_behavior())
    assert len(state.recommendations) <= 300 // 15 + 2
    assert len(state.scale_up_events) <= 3
    assert len(state.scale_down_events) <= 3
    _, legacy_state = _replay([(15.0 * k, r) for k, r in enumerate(raws)], 5, 1, 50, None)
    assert len(legacy_state.recommendations) <= 300 // 15 + 2
    assert any(r.timestamp == 15.0 * 5759 for r in state.recommendations)
