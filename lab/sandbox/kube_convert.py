"""Types served in two API versions from one store, converted like kube-apiserver converts them:
``events.k8s.io/v1`` Events over core ``v1`` Events, and ``autoscaling/v1`` over ``autoscaling/v2``
HorizontalPodAutoscalers (what v1 cannot say travels in the ``autoscaling.alpha.kubernetes.io/*``
annotations, so a read-modify-write through v1 keeps a v2 HPA's metrics)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from lab.sandbox.kube_types import EVENTS_V1, HPAS_V1, TypeKey

Obj = dict[str, Any]
Converter = Callable[[Obj], Obj]

# core v1 field <-> events.k8s.io/v1 field
_EVENT_RENAMES = (
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
)
_EVENT_SAME = ("eventTime", "series", "action", "reason", "related", "type", "reportingInstance")


def event_to_v1(core: Obj) -> Obj:
    out: Obj = {"metadata": copy.deepcopy(core.get("metadata") or {})}
    for old, new in _EVENT_RENAMES:
        if core.get(old) not in (None, "", 0):
            out[new] = copy.deepcopy(core[old])
    for name in _EVENT_SAME:
        if core.get(name) is not None:
            out[name] = copy.deepcopy(core[name])
    if isinstance(out.get("series"), dict):
        out["series"].pop("state", None)
    return out


def event_from_v1(events: Obj) -> Obj:
    out: Obj = {"metadata": copy.deepcopy(events.get("metadata") or {})}
    for old, new in _EVENT_RENAMES:
        if events.get(new) is not None:
            out[old] = copy.deepcopy(events[new])
    for name in _EVENT_SAME:
        if events.get(name) is not None:
            out[name] = copy.deepcopy(events[name])
    out.setdefault("involvedObject", {})
    return out


METRICS = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"


def _is_cpu_utilization(metric: Any) -> bool:
    resource = metric.get("resource") if isinstance(metric, dict) else None
    return (
        isinstance(resource, dict)
        and metric.get("type") == "Resource"
        and resource.get("name") == "cpu"
        and (resource.get("target") or resource.get("current") or {}).get("averageUtilization") is not None
    )


def hpa_to_v1(v2: Obj) -> Obj:
    meta = copy.deepcopy(v2.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    spec2: Obj = v2.get("spec") or {}
    status2: Obj = v2.get("status") or {}
    spec: Obj = {
        k: copy.deepcopy(spec2[k]) for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec2
    }
    others = []
    for metric in spec2.get("metrics") or []:
        if _is_cpu_utilization(metric) and "targetCPUUtilizationPercentage" not in spec:
            spec["targetCPUUtilizationPercentage"] = metric["resource"]["target"]["averageUtilization"]
        else:
            others.append(metric)
    if others:
        annotations[METRICS] = json.dumps(others)
    if spec2.get("behavior"):
        annotations[BEHAVIOR] = json.dumps(spec2["behavior"])
    # v1 has no omitempty on the replica counts: they show as 0.
    status: Obj = {"currentReplicas": 0, "desiredReplicas": 0}
    status.update(
        {
            k: copy.deepcopy(status2[k])
            for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
            if k in status2
        }
    )
    current_others = []
    for metric in status2.get("currentMetrics") or []:
        if _is_cpu_utilization(metric):
            status["currentCPUUtilizationPercentage"] = metric["resource"]["current"]["averageUtilization"]
        else:
            current_others.append(metric)
    if current_others:
        annotations[CURRENT_METRICS] = json.dumps(current_others)
    if status2.get("conditions"):
        annotations[CONDITIONS] = json.dumps(status2["conditions"])
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": spec, "status": status}


def _lift(annotations: dict[str, str], key: str) -> Any:
    raw = annotations.pop(key, None)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def hpa_from_v1(v1: Obj) -> Obj:
    meta = copy.deepcopy(v1.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    spec1: Obj = v1.get("spec") or {}
    status1: Obj = v1.get("status") or {}
    spec: Obj = {
        k: copy.deepcopy(spec1[k]) for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec1
    }
    metrics = []
    if spec1.get("targetCPUUtilizationPercentage") is not None:
        metrics.append(
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": spec1["targetCPUUtilizationPercentage"],
                    },
                },
            }
        )
    metrics.extend(_lift(annotations, METRICS) or [])
    if metrics:
        spec["metrics"] = metrics
    behavior = _lift(annotations, BEHAVIOR)
    if behavior:
        spec["behavior"] = behavior
    status: Obj = {
        k: copy.deepcopy(status1[k])
        for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
        if k in status1
    }
    current = []
    if status1.get("currentCPUUtilizationPercentage") is not None:
        current.append(
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "current": {"averageUtilization": status1["currentCPUUtilizationPercentage"]},
                },
            }
        )
    current.extend(_lift(annotations, CURRENT_METRICS) or [])
    if current:
        status["currentMetrics"] = current
    conditions = _lift(annotations, CONDITIONS)
    if conditions:
        status["conditions"] = conditions
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return {"metadata": meta, "spec": spec, "status": status}


CONVERSIONS: dict[TypeKey, tuple[Converter, Converter]] = {
    EVENTS_V1.key: (event_to_v1, event_from_v1),
    HPAS_V1.key: (hpa_to_v1, hpa_from_v1),
}
"""View type -> (stored object to view, view to stored object)."""
