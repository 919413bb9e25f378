"""The demo's ScalingPolicies: read, pointed at the sandbox, and put on the controller's clock.

A policy file is written in cluster seconds (the clock of the emulated cluster and of the simulator).
:func:`for_sandbox` fills in where the sandbox is (Trino cluster name and coordinator URL, Spark pool name
and master URL, the selectors of External metrics) and drops what a compressed day cannot honour: cron
schedules (a replayed day has no wall-clock hours) and the forecast (no seasons to learn in minutes). That
document is what the simulator runs. The controller runs on the wall clock, so :func:`for_wall_clock`
divides every duration of it by the cluster speed (rounded to whole seconds, as the fields are integers),
after writing the HPA's default scaling rules out explicitly so that no 15 s default escapes the scaling.
The engine's own settings (its 300 s rate window) are the controller's, not the policy's, and stay in wall
seconds.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoscaler.decision.behavior import to_hpa_behavior
from autoscaler.decision.hpa_behavior import default_behavior, resolve_behavior
from autoscaler.policy.loading import load_policies
from autoscaler.policy.models import ScalingPolicy
from core.errors import ConfigError

__all__ = [
    "DEFAULT_SPARK_POLICY",
    "DEFAULT_TRINO_POLICY",
    "Adapted",
    "for_sandbox",
    "for_wall_clock",
    "read_policy",
]

Doc = dict[str, Any]

DEFAULT_TRINO_POLICY = Path(__file__).parent / "policies" / "trino-workers.yaml"
DEFAULT_SPARK_POLICY = Path(__file__).parent / "policies" / "spark-pool.yaml"


def read_policy(path: Path, kind: str) -> Doc:
    """The first policy of ``kind`` in ``path`` as the YAML document (validated); ConfigError otherwise."""
    for policy, doc in load_policies(path):
        if policy.spec.target.kind == kind and isinstance(doc.data, dict):
            return copy.deepcopy(doc.data)
    raise ConfigError(f"{path}: no {kind} policy in the file")


@dataclass(frozen=True)
class Adapted:
    """A policy document ready to apply, its parsed form and what was changed to get there."""

    doc: Doc
    policy: ScalingPolicy
    notes: tuple[str, ...]


def _validated(doc: Doc, where: str) -> ScalingPolicy:
    try:
        return ScalingPolicy.model_validate(doc)
    except ValueError as exc:
        raise ConfigError(f"{where}: the policy adapted to the sandbox is invalid: {exc}") from exc


def for_sandbox(doc: Doc, *, name: str, url: str, where: str) -> Adapted:
    """``doc`` aimed at the sandbox's Trino cluster (``url`` its coordinator) or Spark pool (``url`` its
    master), named ``name`` in the adapter's labels; schedules and forecast removed."""
    out = copy.deepcopy(doc)
    spec = out.setdefault("spec", {})
    target = spec.setdefault("target", {})
    notes: list[str] = []
    label = "cluster"
    if target.get("kind") == "TrinoWorkers":
        trino = target.setdefault("trino", {})
        trino["cluster"] = name
        trino["coordinatorUrl"] = url
        if trino.pop("credentialsSecret", None) is not None:
            notes.append("credentialsSecret removed (the sandbox coordinator needs no password)")
    else:
        spark = target.setdefault("spark", {})
        spark["pool"] = name
        spark["masterUrl"] = url
        label = "pool"
    for metric in spec.get("metrics") or []:
        external = metric.get("external") if isinstance(metric, dict) else None
        selector = ((external or {}).get("metric") or {}).get("selector") or {}
        labels = selector.get("matchLabels")
        if isinstance(labels, dict) and label in labels:
            labels[label] = name
    if spec.pop("schedules", None):
        notes.append("schedules removed (a day replayed in minutes has no wall-clock hours)")
    forecast = spec.pop("forecast", None)
    if isinstance(forecast, dict) and forecast.get("enabled"):
        notes.append("forecast removed (no seasons to learn within the replay)")
    return Adapted(out, _validated(out, where), tuple(notes))


def _shrink(seconds: float, factor: float, *, least: int) -> int:
    return max(least, round(seconds / factor))


def _rules_doc(rules: Any, factor: float, least_period: int = 1) -> Doc:
    doc: Doc = {
        "stabilizationWindowSeconds": _shrink(rules.stabilization_window_seconds, factor, least=0),
        "selectPolicy": rules.select_policy,
        "policies": [
            {
                "type": p.type,
                "value": p.value,
                "periodSeconds": _shrink(p.period_seconds, factor, least=least_period),
            }
            for p in rules.policies
        ],
    }
    if rules.tolerance is not None:
        doc["tolerance"] = f"{rules.tolerance:g}"
    return doc


def for_wall_clock(adapted: Adapted, cluster_speed: float, *, where: str) -> Adapted:
    """The same policy for a controller on the wall clock: every duration divided by ``cluster_speed``."""
    out = copy.deepcopy(adapted.doc)
    spec = out["spec"]
    target = spec["target"]
    target["startupSeconds"] = _shrink(adapted.policy.spec.target.startup_seconds, cluster_speed, least=0)
    behavior = to_hpa_behavior(adapted.policy.spec.behavior) or default_behavior()
    up, down = resolve_behavior(behavior)
    spec["behavior"] = {
        "scaleUp": _rules_doc(up, cluster_speed),
        "scaleDown": _rules_doc(down, cluster_speed),
    }
    drain = adapted.policy.spec.drain
    grace = _shrink(drain.grace_period_seconds, cluster_speed, least=0)
    spec["drain"] = {
        **(spec.get("drain") or {}),
        "gracePeriodSeconds": grace,
        "timeoutSeconds": _shrink(drain.timeout_seconds, cluster_speed, least=max(1, grace)),
    }
    for metric in spec.get("metrics") or []:
        wait = metric.get("queueWait") if isinstance(metric, dict) else None
        if isinstance(wait, dict):
            for key in ("targetSeconds", "sloSeconds"):
                if key in wait:
                    wait[key] = float(wait[key]) / cluster_speed
    notes = (
        *adapted.notes,
        f"durations divided by the cluster speed ({cluster_speed:g}) for the controller, which runs on the "
        "wall clock",
    )
    return Adapted(out, _validated(out, where), notes)
