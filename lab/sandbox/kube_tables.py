"""Server-side printing: the ``meta.k8s.io/v1`` Table kubectl asks for with
``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``, with the columns kube-apiserver's printers
give the served built-in types and a CRD's additionalPrinterColumns for custom resources."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lab.sandbox.kube_pods import is_terminating
from lab.sandbox.kube_selectors import selector_string
from lab.sandbox.kube_types import (
    CONFIGMAPS,
    DEPLOYMENTS,
    EVENTS,
    HPAS,
    LEASES,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    TypeKey,
    parse_time,
)

Obj = dict[str, Any]
Column = tuple[str, str, str, int]
"""(name, type, format, priority); priority 1 columns show with ``-o wide`` only."""
Cells = Callable[[Obj, float], list[Any]]


def wants_table(accept: str) -> bool:
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery ``duration.HumanDuration``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // (24 * 365)}y{rest}d" if rest else f"{hours // (24 * 365)}y"
    return f"{hours // (24 * 365)}y"


def _age(obj: Mapping[str, Any], now: float) -> str:
    created = parse_time(str((obj.get("metadata") or {}).get("creationTimestamp") or ""))
    return "<unknown>" if created is None else human_duration(now - created)


def _get(obj: Any, path: Sequence[str]) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _containers(obj: Obj) -> tuple[str, str]:
    containers = _get(obj, ("spec", "template", "spec", "containers")) or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def _pod_status(pod: Obj) -> str:
    if is_terminating(pod):
        return "Terminating"
    for cs in _get(pod, ("status", "containerStatuses")) or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    return str(_get(pod, ("status", "phase")) or "Unknown")


def _pod(pod: Obj, now: float) -> list[Any]:
    statuses = _get(pod, ("status", "containerStatuses")) or []
    total = len(_get(pod, ("spec", "containers")) or [])
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        _pod_status(pod),
        restarts,
        _age(pod, now),
        _get(pod, ("status", "podIP")) or "<none>",
        _get(pod, ("spec", "nodeName")) or "<none>",
        "<none>",
        "<none>",
    ]


def _deployment(d: Obj, now: float) -> list[Any]:
    names, images = _containers(d)
    status = d.get("status") or {}
    return [
        d["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{_get(d, ('spec', 'replicas')) or 0}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(d, now),
        names,
        images,
        selector_string(_get(d, ("spec", "selector"))),
    ]


def _statefulset(s: Obj, now: float) -> list[Any]:
    names, images = _containers(s)
    status = s.get("status") or {}
    return [
        s["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{_get(s, ('spec', 'replicas')) or 0}",
        _age(s, now),
        names,
        images,
    ]


def _replicaset(r: Obj, now: float) -> list[Any]:
    names, images = _containers(r)
    status = r.get("status") or {}
    return [
        r["metadata"]["name"],
        _get(r, ("spec", "replicas")) or 0,
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(r, now),
        names,
        images,
        selector_string(_get(r, ("spec", "selector"))),
    ]


def _hpa(h: Obj, now: float) -> list[Any]:
    ref = _get(h, ("spec", "scaleTargetRef")) or {}
    return [
        h["metadata"]["name"],
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        f"{len(_get(h, ('spec', 'metrics')) or [])} metric(s)",
        _get(h, ("spec", "minReplicas")) or 1,
        _get(h, ("spec", "maxReplicas")) or 0,
        _get(h, ("status", "currentReplicas")) or 0,
        _age(h, now),
    ]


def _event(e: Obj, now: float) -> list[Any]:
    last = parse_time(str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    involved = e.get("involvedObject") or {}
    return [
        "<unknown>" if last is None else human_duration(now - last),
        e.get("type", ""),
        e.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        e.get("message", ""),
    ]


_BUILT_IN: dict[TypeKey, tuple[list[Column], Cells]] = {
    PODS.key: (
        [
            ("Name", "string", "name", 0),
            ("Ready", "string", "", 0),
            ("Status", "string", "", 0),
            ("Restarts", "string", "", 0),
            ("Age", "string", "", 0),
            ("IP", "string", "", 1),
            ("Node", "string", "", 1),
            ("Nominated Node", "string", "", 1),
            ("Readiness Gates", "string", "", 1),
        ],
        _pod,
    ),
    DEPLOYMENTS.key: (
        [
            ("Name", "string", "name", 0),
            ("Ready", "string", "", 0),
            ("Up-to-date", "integer", "", 0),
            ("Available", "integer", "", 0),
            ("Age", "string", "", 0),
            ("Containers", "string", "", 1),
            ("Images", "string", "", 1),
            ("Selector", "string", "", 1),
        ],
        _deployment,
    ),
    STATEFULSETS.key: (
        [
            ("Name", "string", "name", 0),
            ("Ready", "string", "", 0),
            ("Age", "string", "", 0),
            ("Containers", "string", "", 1),
            ("Images", "string", "", 1),
        ],
        _statefulset,
    ),
    REPLICASETS.key: (
        [
            ("Name", "string", "name", 0),
            ("Desired", "integer", "", 0),
            ("Current", "integer", "", 0),
            ("Ready", "integer", "", 0),
            ("Age", "string", "", 0),
            ("Containers", "string", "", 1),
            ("Images", "string", "", 1),
            ("Selector", "string", "", 1),
        ],
        _replicaset,
    ),
    HPAS.key: (
        [
            ("Name", "string", "name", 0),
            ("Reference", "string", "", 0),
            ("Targets", "string", "", 0),
            ("MinPods", "string", "", 0),
            ("MaxPods", "string", "", 0),
            ("Replicas", "string", "", 0),
            ("Age", "string", "", 0),
        ],
        _hpa,
    ),
    LEASES.key: (
        [("Name", "string", "name", 0), ("Holder", "string", "", 0), ("Age", "string", "", 0)],
        lambda o, now: [o["metadata"]["name"], _get(o, ("spec", "holderIdentity")) or "", _age(o, now)],
    ),
    CONFIGMAPS.key: (
        [("Name", "string", "name", 0), ("Data", "integer", "", 0), ("Age", "string", "", 0)],
        lambda o, now: [o["metadata"]["name"], len(o.get("data") or {}), _age(o, now)],
    ),
    EVENTS.key: (
        [
            ("Last Seen", "string", "", 0),
            ("Type", "string", "", 0),
            ("Reason", "string", "", 0),
            ("Object", "string", "", 0),
            ("Message", "string", "", 0),
        ],
        _event,
    ),
}


def _json_path(obj: Any, path: str) -> Any:
    """The simple ``.a.b[0].c`` JSONPaths of additionalPrinterColumns."""
    current = obj
    for part in filter(None, path.replace("[", ".[").split(".")):
        if part.startswith("[") and part.endswith("]") and part[1:-1].isdigit():
            index = int(part[1:-1])
            current = current[index] if isinstance(current, list) and index < len(current) else None
        else:
            current = current.get(part) if isinstance(current, dict) else None
    return current


def _custom_columns(printer_columns: Sequence[Mapping[str, Any]]) -> tuple[list[Column], Cells]:
    columns: list[Column] = [("Name", "string", "name", 0)]
    for spec in printer_columns:
        kind = str(spec.get("type", "string"))
        columns.append((str(spec["name"]), kind, str(spec.get("format", "")), int(spec.get("priority", 0))))

    def cells(obj: Obj, now: float) -> list[Any]:
        row: list[Any] = [obj["metadata"]["name"]]
        for spec in printer_columns:
            value = _json_path(obj, str(spec["jsonPath"]))
            if spec.get("type") == "date" and isinstance(value, str):
                when = parse_time(value)
                value = human_duration(now - when) if when is not None else value
            row.append(value)
        return row

    return columns, cells


def _default() -> tuple[list[Column], Cells]:
    return (
        [("Name", "string", "name", 0), ("Created At", "date", "", 0)],
        lambda o, now: [o["metadata"]["name"], (o.get("metadata") or {}).get("creationTimestamp")],
    )


def table(
    key: TypeKey,
    objects: Sequence[Obj],
    now: float,
    resource_version: str,
    printer_columns: Sequence[Mapping[str, Any]] | None = None,
    include_object: str = "Metadata",
) -> Obj:
    """A Table of ``objects`` (stored form) for a type; ``printer_columns`` for a custom resource."""
    if printer_columns:
        columns, cells = _custom_columns(printer_columns)
    elif printer_columns is not None:
        columns, cells = _custom_columns(
            [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
        )
    else:
        columns, cells = _BUILT_IN.get(key) or _default()
    rows = []
    for obj in objects:
        row: Obj = {"cells": cells(obj, now)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata") or {},
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}
            for name, kind, fmt, priority in columns
        ],
        "rows": rows,
    }
