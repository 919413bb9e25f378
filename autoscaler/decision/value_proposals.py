"""Proposals of External and Prometheus metrics: the HPA's arithmetic on each reading (Value/AverageValue
targets, tolerance); a missing or stale reading proposes nothing.
"""

from __future__ import annotations

from autoscaler.decision import hpa
from autoscaler.decision.signals import Observation, ValueReading
from autoscaler.decision.state import Plan, Proposal

__all__ = ["value_proposals"]


def value_proposals(
    plan: Plan, obs: Observation, current: int, ready: int, out: list[Proposal | None]
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
