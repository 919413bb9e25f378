"""A pod as the actuators read it: the few fields they decide on, typed, taken once from the API's JSON.

Pods come from the informer cache or a LIST as JSON objects (the client's models cost more to build than
the request); :func:`pod_view` reads one into a :class:`PodView` so no actuator walks the raw document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PodView", "pod_view"]


@dataclass(frozen=True, slots=True)
class PodView:
    """``ready``: the Ready condition is True. ``deleting``: a deletionTimestamp is set. ``ports``: the
    containers' named ports, name → number (a later container naming the same port overrides an earlier
    one)."""

    name: str
    ip: str
    phase: str
    ready: bool
    deleting: bool
    annotations: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        """Running with an IP: a process that can be asked."""
        return self.phase == "Running" and bool(self.ip)

    @property
    def in_play(self) -> bool:
        """Not being deleted and not finished: a pod the workload still counts."""
        return not self.deleting and self.phase not in ("Succeeded", "Failed")


def pod_view(pod: Mapping[str, Any]) -> PodView:
    """The view of one pod (JSON form, as the API server sends it)."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    ready = False
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            ready = cond.get("status") == "True"
            break
    ports: dict[str, int] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        for entry in container.get("ports") or []:
            if entry.get("name") and entry.get("containerPort"):
                ports[str(entry["name"])] = int(entry["containerPort"])
    return PodView(
        name=str(meta.get("name") or ""),
        ip=str(status.get("podIP") or ""),
        phase=str(status.get("phase") or ""),
        ready=ready,
        deleting=bool(meta.get("deletionTimestamp")),
        annotations=dict(meta.get("annotations") or {}),
        ports=ports,
    )
