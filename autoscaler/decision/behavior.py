"""A policy's ``behavior`` as the HPA maths takes it (:mod:`autoscaler.decision.hpa`)."""

from __future__ import annotations

from autoscaler.decision.hpa import Behavior, ScalingRules
from autoscaler.decision.hpa_behavior import RatePolicy as HpaPolicy
from autoscaler.policy.models import HPABehavior, HPAScalingRules

__all__ = ["to_hpa_behavior"]


def _rules(rules: HPAScalingRules | None) -> ScalingRules | None:
    if rules is None:
        return None
    policies = (
        tuple(HpaPolicy(p.type, p.value, p.period_seconds) for p in rules.policies)
        if rules.policies is not None
        else None
    )
    return ScalingRules(
        stabilization_window_seconds=rules.stabilization_window_seconds,
        select_policy=rules.select_policy,
        policies=policies,
        tolerance=float(rules.tolerance) if rules.tolerance is not None else None,
    )


def to_hpa_behavior(behavior: HPABehavior | None) -> Behavior | None:
    """The behavior for :mod:`autoscaler.decision.hpa`; ``None`` (no behavior) selects the HPA's legacy path.

    Unset fields stay ``None`` so the emulation applies the upstream defaults field by field, as the
    API server's defaulting does.
    """
    if behavior is None:
        return None
    return Behavior(scale_up=_rules(behavior.scale_up), scale_down=_rules(behavior.scale_down))
