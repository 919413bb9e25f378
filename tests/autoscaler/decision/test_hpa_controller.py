"""HpaController gives, pass after pass, the replica counts of the pure step() it stands in for, and
recommended_replicas the count of recommend()."""

from __future__ import annotations

import math
import random

import pytest

from autoscaler.decision.hpa import (
    ExternalTarget,
    HpaController,
    HpaState,
    recommend,
    recommended_replicas,
    step,
)
from autoscaler.decision.hpa_behavior import Behavior, RatePolicy, ScalingRules, default_behavior
from autoscaler.sim.baselines import EXAMPLE_HPA_BEHAVIOR, EXAMPLE_KEDA_BEHAVIOR


def _rules(rng: random.Random) -> ScalingRules | None:
    if rng.random() < 0.2:
        return None
    policies = tuple(
        RatePolicy(rng.choice(("Pods", "Percent")), rng.randint(1, 200), rng.choice((15, 30, 60, 120)))
        for _ in range(rng.randint(1, 3))
    )
    return ScalingRules(
        stabilization_window_seconds=rng.choice((None, 0, 15, 60, 300, 600)),
        select_policy=rng.choice((None, "Max", "Min", "Disabled")),
        policies=rng.choice((None, policies)),
    )


BEHAVIORS: list[Behavior | None] = [
    None,
    default_behavior(),
    Behavior(),
    EXAMPLE_HPA_BEHAVIOR,
    EXAMPLE_KEDA_BEHAVIOR,
    *(Behavior(_rules(random.Random(i)), _rules(random.Random(1000 + i))) for i in range(40)),
]


@pytest.mark.parametrize("index", range(len(BEHAVIORS)))
def test_the_controller_gives_what_step_gives(index: int) -> None:
    behavior = BEHAVIORS[index]
    rng = random.Random(index)
    for _ in range(30):
        low = rng.choice((0, 1, 2))
        high = rng.choice((low + 1, 5, 20, 100))
        window = rng.choice((0, 60, 300))
        controller = HpaController(low, high, behavior, downscale_stabilization_seconds=window)
        state = HpaState()
        now = rng.choice((0.0, 1e6))
        current = rng.randint(0, high + 2)
        for _ in range(300):
            # Regular passes mostly, now and then a pause or two passes at one instant.
            now += rng.choice((15.0, 15.0, 15.0, 0.0, 7.5, 45.0, 400.0))
            raw = None if rng.random() < 0.05 else rng.randint(0, high + 5)
            want, state, _ = step(
                state, now, current, raw, low, high, behavior, downscale_stabilization_seconds=window
            )
            assert controller.step(now, current, raw) == want
            # The workload follows the HPA, but not always at once (or something else scales it).
            current = want if rng.random() < 0.9 else rng.randint(0, high + 2)


def test_the_controller_refuses_time_going_back() -> None:
    controller = HpaController(1, 10, None)
    controller.step(30.0, 1, 2)
    with pytest.raises(ValueError, match="back in time"):
        controller.step(15.0, 2, 2)


def test_the_count_alone_is_recommends_count() -> None:
    rng = random.Random(7)
    targets = [
        ExternalTarget(kind, value) for kind in ("Value", "AverageValue") for value in (0.5, 1.0, 4.0, 50.0)
    ]
    for _ in range(5000):
        values = [
            (
                rng.choice(targets),
                rng.choice((None, math.nan, math.inf, 0.0, rng.uniform(0, 200), rng.randint(0, 40))),
            )
            for _ in range(rng.randint(0, 3))
        ]
        current, ready = rng.randint(0, 30), rng.randint(0, 30)
        tolerance = rng.choice((0.0, 0.1, 0.5))
        behavior = rng.choice(BEHAVIORS)
        status = rng.choice((None, rng.randint(0, 30)))
        want = recommend(
            values, current, ready, tolerance, behavior=behavior, status_replicas=status
        ).replicas
        got = recommended_replicas(
            values, current, ready, tolerance, behavior=behavior, status_replicas=status
        )
        assert got == want, (values, current, ready, tolerance, behavior, status)
