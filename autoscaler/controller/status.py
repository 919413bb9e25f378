"""The ScalingPolicy ``status`` and the Kubernetes Events the controller writes, built apart from I/O.

Conditions follow metav1.Condition: ``lastTransitionTime`` moves only when a condition's status flips, so
a status rewritten every pass does not look like constant change. A status is written only when
something a reader would care about changed (see :func:`status_changed`), which keeps a thousand policies
from turning into a thousand writes per pass.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import kubernetes.client

from autoscaler.controller.actuator import ActuatorEvent
from autoscaler.controller.kube_api import KubeError
from autoscaler.controller.kube_api import call as kube_call
from autoscaler.controller.policies import GROUP, PLURAL, VERSION, PolicyEntry

__all__ = ["Cond", "EventRecorder", "StatusWriter", "build_status", "event_body", "rfc3339", "status_changed"]

log = logging.getLogger(__name__)

COMPONENT = "queuescale-controller"
WRITTEN_KEPT = 1000
CONDITION_TYPES = ("Ready", "ScalingActive", "ScalingLimited", "Draining")


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Cond:
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""


def _conditions(
    wanted: Sequence[Cond], previous: Sequence[Mapping[str, Any]], now: float, generation: int | None
) -> list[dict[str, Any]]:
    before = {str(c.get("type")): c for c in previous}
    out: list[dict[str, Any]] = []
    for cond in wanted:
        old = before.get(cond.type)
        moved = old is None or old.get("status") != cond.status
        at = (
            rfc3339(now)
            if moved or not old or not old.get("lastTransitionTime")
            else str(old["lastTransitionTime"])
        )
        item: dict[str, Any] = {
            "type": cond.type,
            "status": cond.status,
            "reason": cond.reason,
            "message": cond.message[:32768],
            "lastTransitionTime": at,
        }
        if generation is not None:
            item["observedGeneration"] = generation
        out.append(item)
    return out


def build_status(
    previous: Mapping[str, Any] | None,
    conditions: Sequence[Cond],
    now: float,
    *,
    generation: int | None,
    current: int | None = None,
    desired: int | None = None,
    reason: str | None = None,
    scaled: bool = False,
) -> dict[str, Any]:
    """The new ``status`` from the previous one: conditions keep their transition times, the last scale
    time moves only when ``scaled``."""
    prev = dict(previous or {})
    status: dict[str, Any] = {
        "conditions": _conditions(conditions, prev.get("conditions") or [], now, generation),
    }
    if generation is not None:
        status["observedGeneration"] = generation
    if current is not None:
        status["currentReplicas"] = current
    if desired is not None:
        status["desiredReplicas"] = desired
    if reason is not None:
        status["lastDecision"] = {"reason": reason[:4096], "at": rfc3339(now)}
    last_scale = rfc3339(now) if scaled else prev.get("lastScaleTime")
    if last_scale:
        status["lastScaleTime"] = last_scale
    return status


def status_changed(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], now: float, refresh_seconds: float
) -> bool:
    """Whether ``new`` is worth a write: any field but the decision time differs, or the written decision
    time is older than ``refresh_seconds`` (so readers can see the controller is alive)."""
    if not old:
        return True

    def strip(doc: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(doc)
        decision = out.get("lastDecision")
        if isinstance(decision, dict):
            out["lastDecision"] = {k: v for k, v in decision.items() if k != "at"}
        return out

    if strip(old) != strip(new):
        return True
    at = (old.get("lastDecision") or {}).get("at")
    if not at:
        return True
    try:
        written = datetime.strptime(str(at), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return True
    return now - written >= refresh_seconds


_serial = itertools.count()


def event_body(
    entry: PolicyEntry, event: ActuatorEvent, now: float, *, instance: str, count: int = 1
) -> dict[str, Any]:
    """A core/v1 Event about the policy (named like client-go's recorder: ``<object>.<unique hex>``)."""
    namespace, name = entry.key
    suffix = f"{int(now * 1e9):x}{next(_serial):x}"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{suffix}"[:253], "namespace": namespace},
        "involvedObject": {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ScalingPolicy",
            "name": name,
            "namespace": namespace,
            **({"uid": entry.uid} if entry.uid else {}),
        },
        "reason": event.reason,
        "message": event.message[:1024],
        "type": event.type,
        "count": count,
        "firstTimestamp": rfc3339(now),
        "lastTimestamp": rfc3339(now),
        "eventTime": rfc3339_micro(now),
        "action": event.reason,
        "source": {"component": COMPONENT},
        "reportingComponent": f"{GROUP}/controller",
        "reportingInstance": instance[:128],
    }


class EventRecorder:
    """Writes Events; a failure is logged, never raised (an Event is a courtesy, not a duty)."""

    def __init__(self, api: kubernetes.client.ApiClient | None, instance: str | None = None) -> None:
        self.core = kubernetes.client.CoreV1Api(api) if api is not None else None
        self.instance = instance or os.environ.get("HOSTNAME") or COMPONENT
        # The latest Events written, newest last (for tests and live views); bounded, as the controller
        # runs for months and writes an Event on every scale and drain.
        self.written: deque[dict[str, Any]] = deque(maxlen=WRITTEN_KEPT)

    async def record(self, entry: PolicyEntry, event: ActuatorEvent, now: float) -> None:
        log.info(
            "%s/%s: %s: %s",
            entry.key[0],
            entry.key[1],
            event.reason,
            event.message,
            extra={"policy": f"{entry.key[0]}/{entry.key[1]}", "reason": event.reason},
        )
        if self.core is None or not entry.from_cluster:
            return
        body = event_body(entry, event, now, instance=self.instance)
        model = kubernetes.client.CoreV1Event.from_dict(body)
        assert model is not None
        try:
            await kube_call(self._create, self.core, entry.key[0], model)
        except KubeError as exc:
            log.warning("event for %s/%s not written: %s", *entry.key, exc.brief)
            return
        self.written.append(body)

    @staticmethod
    def _create(
        core: kubernetes.client.CoreV1Api, namespace: str, model: kubernetes.client.CoreV1Event
    ) -> None:
        # Nothing uses the answer: read it to the end (the connection goes back to the pool), build no model.
        response: Any = core.create_namespaced_event(namespace, model, _preload_content=False)
        response.drain_conn()


class StatusWriter:
    """Patches ``/status`` of ScalingPolicy custom resources (a merge patch of the whole status)."""

    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(api)

    async def write(self, entry: PolicyEntry, status: Mapping[str, Any]) -> bool:
        namespace, name = entry.key
        body = {"status": dict(status)}
        try:
            await kube_call(self._patch, namespace, name, body)
        except KubeError as exc:
            log.warning("status of %s/%s not written: %s", namespace, name, exc.brief)
            return False
        return True

    def _patch(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        # The answer is not needed, so it is left unparsed; it is still read to its end, which gives the
        # connection back to the pool (an unread answer would hold it until garbage collection).
        answer: Any = self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, body, _preload_content=False
        )
        answer.data  # noqa: B018
