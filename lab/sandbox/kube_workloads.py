"""The controllers a cluster runs behind the workloads queuescale scales, simulated on the sandbox's store:
the Deployment controller (one ReplicaSet per pod template; a template change replaces the pods at once),
the ReplicaSet controller (creates pods, deletes the ones ``deletion_order`` ranks first), the
StatefulSet controller (``<name>-<ordinal>`` pods; OrderedReady creates upwards one ready pod at a
time and deletes from the highest ordinal, Parallel does both at once), the garbage collector, a
scheduler with an optional pod capacity and a kubelet that starts pods after a start-up delay.

Time comes from the transitions themselves: a pod due to start at t becomes Running and Ready with
``lastTransitionTime`` t however late the sandbox notices, so a run is the same for the same clock.

Per workload (annotation on the Deployment/StatefulSet, or on its pod template):
``sandbox.queuescale.io/startup-seconds`` (Pending to Running and Ready),
``sandbox.queuescale.io/termination-seconds`` (how long a deleted pod stays Terminating, at most its
grace period) and ``sandbox.queuescale.io/readiness: external`` (Running but not Ready until
:meth:`Workloads.set_ready`).
"""

from __future__ import annotations

import copy
import heapq
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lab.sandbox.kube_pods import (
    SAFE_ALPHABET,
    controller_ref,
    created_at,
    deletion_order,
    is_active,
    is_available,
    is_ready,
    is_running_and_ready,
    is_terminating,
    ordinal,
    ready_time,
    template_hash,
)
from lab.sandbox.kube_store import ObjectStore
from lab.sandbox.kube_types import (
    DEPLOYMENTS,
    EVENTS,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    TypeKey,
    parse_time,
    rfc3339,
)
from lab.sandbox.kube_watch import DELETED, Change

log = logging.getLogger(__name__)

Obj = dict[str, Any]

STARTUP_ANNOTATION = "sandbox.queuescale.io/startup-seconds"
TERMINATION_ANNOTATION = "sandbox.queuescale.io/termination-seconds"
READINESS_ANNOTATION = "sandbox.queuescale.io/readiness"
PORT_ANNOTATION = "sandbox.queuescale.io/port"
"""Free for a world to record the port of the process that stands for a pod."""
NODE_NAME = "sandbox-node"
REVISION = "deployment.kubernetes.io/revision"
_MAX_ROUNDS = 200


@dataclass(frozen=True)
class Timing:
    startup: float
    termination: float
    external_readiness: bool


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    what: str = field(compare=False)
    """"start" or "remove" a pod, or "sync" a workload whose availability changes with time alone."""
    namespace: str = field(compare=False)
    name: str = field(compare=False)
    uid: str = field(compare=False)
    key: TypeKey = field(compare=False, default=PODS.key)


_OWNER_KEYS = {"ReplicaSet": REPLICASETS.key, "Deployment": DEPLOYMENTS.key, "StatefulSet": STATEFULSETS.key}


def _float_annotation(annotations: Mapping[str, Any], key: str) -> float | None:
    raw = annotations.get(key)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value >= 0 else None


def _annotations(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def _meta(obj: Mapping[str, Any]) -> Obj:
    return dict(obj.get("metadata") or {})


def _owner_ref(kind: str, obj: Mapping[str, Any]) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _cond(kind: str, status: bool, at: float, reason: str | None = None, message: str | None = None) -> Obj:
    out: Obj = {
        "type": kind,
        "status": "True" if status else "False",
        "lastProbeTime": None,
        "lastTransitionTime": rfc3339(at),
    }
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


class Workloads:
    """Reconciles Deployments, ReplicaSets and StatefulSets into pods on ``store``."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        startup_seconds: float = 0.0,
        termination_seconds: float = 0.0,
        pod_ip: str | None = None,
        pod_capacity: int | None = None,
        record_events: bool = True,
        event_ttl_seconds: float = 3600.0,
    ) -> None:
        self.store = store
        self.startup_seconds = startup_seconds
        self.termination_seconds = termination_seconds
        self.pod_ip = pod_ip
        self.pod_capacity = pod_capacity
        self.record_events = record_events
        self.event_ttl_seconds = event_ttl_seconds
        self._events_checked = self.store.clock()
        self._now = store.clock()
        self._dirty: set[tuple[TypeKey, str, str]] = set()
        self._gone_uids: set[str] = set()
        self._due: list[_Due] = []
        self._seq = 0
        self._next_ip = 0
        self._settling = False
        self._schedule_waiting = False
        self._wakes: set[tuple[TypeKey, str, str, float]] = set()
        store.listeners.append(self._on_change)

    # ----- reacting to writes -----

    def _on_change(self, change: Change) -> None:
        meta = change.obj.get("metadata") or {}
        ns, name = meta.get("namespace") or "", meta.get("name") or ""
        if change.key in (DEPLOYMENTS.key, REPLICASETS.key, STATEFULSETS.key):
            self._dirty.add((change.key, ns, name))
        ref = controller_ref(change.obj)
        if ref is not None:
            key = _OWNER_KEYS.get(str(ref.get("kind")))
            if key is not None:
                self._dirty.add((key, ns, str(ref.get("name"))))
        if change.type == DELETED:
            self._gone_uids.add(str(meta.get("uid") or ""))
            if change.key == PODS.key:
                self._schedule_waiting = True

    def advance(self, now: float) -> None:
        """Carry out every transition due by ``now`` in time order, reconciling after each."""
        if self._settling:
            return
        while self._due and self._due[0].at <= now:
            due = heapq.heappop(self._due)
            self._now = max(self._now, due.at)
            if due.what == "sync":
                self._wakes.discard((due.key, due.namespace, due.name, due.at))
                self._dirty.add((due.key, due.namespace, due.name))
                self.settle()
                continue
            pod = self.store.get(PODS.key, due.namespace, due.name)
            if pod is None or pod["metadata"].get("uid") != due.uid:
                continue
            if due.what == "start":
                self._start(pod)
            else:
                self._remove_pod(pod)
            self.settle()
        self._now = max(self._now, now)
        self.settle()
        self._expire_events()

    def _expire_events(self) -> None:
        """Drop Events not written for the TTL (kube-apiserver's --event-ttl), checked once a minute."""
        if self._now - self._events_checked < min(60.0, self.event_ttl_seconds):
            return
        self._events_checked = self._now
        cutoff = self._now - self.event_ttl_seconds
        for event in self.store.items(EVENTS.key):
            written = [created_at(event), parse_time(str(event.get("lastTimestamp") or ""))]
            latest = max((t for t in written if t is not None), default=None)
            if latest is not None and latest < cutoff:
                self.store.remove(EVENTS.key, event["metadata"].get("namespace"), event["metadata"]["name"])

    def settle(self) -> None:
        """Reconcile until nothing changes (each write marks what it affects dirty again)."""
        if self._settling:
            return
        self._settling = True
        try:
            for _ in range(_MAX_ROUNDS):
                if self._gone_uids:
                    gone, self._gone_uids = self._gone_uids, set()
                    self._collect_garbage(gone)
                if self._schedule_waiting:
                    self._schedule_waiting = False
                    self._schedule_pending()
                if not self._dirty:
                    return
                dirty, self._dirty = sorted(self._dirty), set()
                for key, ns, name in dirty:
                    if key == DEPLOYMENTS.key:
                        self._sync_deployment(ns, name)
                    elif key == REPLICASETS.key:
                        self._sync_replicaset(ns, name)
                    elif key == STATEFULSETS.key:
                        self._sync_statefulset(ns, name)
            log.error("sandbox controllers did not settle after %d rounds: %s", _MAX_ROUNDS, self._dirty)
        finally:
            self._settling = False

    # ----- timing -----

    def timing(self, pod: Mapping[str, Any]) -> Timing:
        """Start-up and termination of a pod: its own annotations, then its workload's, then the default."""
        sources = [_annotations(pod)]
        ref = controller_ref(pod)
        ns = pod["metadata"].get("namespace")
        while ref is not None:
            key = _OWNER_KEYS.get(str(ref.get("kind")))
            owner = self.store.get(key, ns, str(ref.get("name"))) if key else None
            if owner is None:
                break
            sources.append(_annotations(owner))
            ref = controller_ref(owner)
        startup, termination, readiness = self.startup_seconds, self.termination_seconds, ""
        # The workload first, the pod last: the nearest setting wins.
        for found_in in reversed(sources):
            found = _float_annotation(found_in, STARTUP_ANNOTATION)
            startup = found if found is not None else startup
            found = _float_annotation(found_in, TERMINATION_ANNOTATION)
            termination = found if found is not None else termination
            readiness = str(found_in.get(READINESS_ANNOTATION, readiness))
        return Timing(startup, termination, readiness == "external")

    def _at(self, when: float, what: str, obj: Mapping[str, Any], key: TypeKey = PODS.key) -> None:
        self._seq += 1
        meta = obj["metadata"]
        due = _Due(when, self._seq, what, meta.get("namespace") or "", meta["name"], meta["uid"], key)
        heapq.heappush(self._due, due)

    def _recheck_availability(self, key: TypeKey, owner: Obj, pods: list[Obj], min_ready: float) -> None:
        """Availability changes with time alone: wake the workload when its next pod becomes available."""
        if min_ready <= 0:
            return
        upcoming = [
            since + min_ready
            for since in (ready_time(p) for p in pods)
            if since is not None and since + min_ready > self._now
        ]
        wake = (
            key,
            owner["metadata"].get("namespace") or "",
            owner["metadata"]["name"],
            min(upcoming, default=0.0),
        )
        if upcoming and wake not in self._wakes:
            self._wakes.add(wake)
            self._at(wake[3], "sync", owner, key)

    # ----- pods -----

    def _allocate_ip(self) -> str:
        if self.pod_ip is not None:
            return self.pod_ip
        self._next_ip += 1
        n = self._next_ip
        return f"10.244.{(n >> 8) & 0xFF}.{n & 0xFF}"

    def _scheduled_count(self) -> int:
        return sum(
            1 for p in self.store.items(PODS.key) if p.get("spec", {}).get("nodeName") and is_active(p)
        )

    def _new_pod(
        self, owner_kind: str, owner: Obj, template: Mapping[str, Any], name: str, labels: Mapping[str, str]
    ) -> Obj:
        tmeta = template.get("metadata") or {}
        meta: Obj = {
            "name": name,
            "namespace": owner["metadata"]["namespace"],
            "labels": {**(tmeta.get("labels") or {}), **labels},
            "ownerReferences": [_owner_ref(owner_kind, owner)],
            "creationTimestamp": rfc3339(self._now),
        }
        if tmeta.get("annotations"):
            meta["annotations"] = dict(tmeta["annotations"])
        if owner_kind == "ReplicaSet":
            meta["generateName"] = owner["metadata"]["name"] + "-"
        spec = copy.deepcopy(template.get("spec") or {})
        spec.setdefault("containers", [{"name": "main", "image": "sandbox:latest"}])
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": spec,
            "status": {"phase": "Pending"},
        }
        if owner_kind == "StatefulSet":
            spec["hostname"] = name
            if owner.get("spec", {}).get("serviceName"):
                spec["subdomain"] = owner["spec"]["serviceName"]
        capacity_left = self.pod_capacity is None or self._scheduled_count() < self.pod_capacity
        pod = self._with_schedule(pod) if capacity_left else self._unschedulable(pod)
        created = self.store.create(PODS.key, pod)
        if capacity_left:
            self._at(self._now + self.timing(created).startup, "start", created)
        return created

    def _unschedulable(self, pod: Obj) -> Obj:
        message = f"0/1 nodes are available: 1 Too many pods (capacity {self.pod_capacity})."
        pod["status"] = {
            "phase": "Pending",
            "conditions": [_cond("PodScheduled", False, self._now, "Unschedulable", message)],
            "qosClass": "BestEffort",
        }
        return pod

    def _with_schedule(self, pod: Obj) -> Obj:
        pod = copy.deepcopy(pod)
        ip = self._allocate_ip()
        pod["spec"]["nodeName"] = NODE_NAME
        pod["status"] = {
            "phase": "Pending",
            "conditions": [
                _cond("PodReadyToStartContainers", False, self._now),
                _cond("Initialized", True, self._now),
                _cond("Ready", False, self._now, "ContainersNotReady", "containers with unready status"),
                _cond(
                    "ContainersReady",
                    False,
                    self._now,
                    "ContainersNotReady",
                    "containers with unready status",
                ),
                _cond("PodScheduled", True, self._now),
            ],
            "hostIP": "127.0.0.1" if self.pod_ip == "127.0.0.1" else "10.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1" if self.pod_ip == "127.0.0.1" else "10.0.0.1"}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": rfc3339(self._now),
            "qosClass": "BestEffort",
            "containerStatuses": [
                {
                    "name": c.get("name", "main"),
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                    "lastState": {},
                }
                for c in pod["spec"].get("containers") or []
            ],
        }
        return pod

    def _schedule_pending(self) -> None:
        if self.pod_capacity is None:
            return
        waiting = [
            p for p in self.store.items(PODS.key) if not p.get("spec", {}).get("nodeName") and is_active(p)
        ]
        waiting.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
        free = self.pod_capacity - self._scheduled_count()
        for pod in waiting[: max(0, free)]:
            scheduled = self.store.update(PODS.key, self._with_schedule(pod))
            self._at(self._now + self.timing(scheduled).startup, "start", scheduled)

    def _start(self, pod: Obj) -> None:
        if is_terminating(pod) or not pod.get("spec", {}).get("nodeName"):
            return
        ready = not self.timing(pod).external_readiness
        started = copy.deepcopy(pod)
        status = started["status"]
        status["phase"] = "Running"
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        conditions["PodReadyToStartContainers"] = _cond("PodReadyToStartContainers", True, self._now)
        for kind in ("Ready", "ContainersReady"):
            conditions[kind] = (
                _cond(kind, True, self._now) if ready else conditions.get(kind, _cond(kind, False, self._now))
            )
        status["conditions"] = [
            conditions[k]
            for k in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
            if k in conditions
        ]
        for index, cs in enumerate(status.get("containerStatuses") or []):
            cs["ready"] = ready
            cs["started"] = True
            cs["state"] = {"running": {"startedAt": rfc3339(self._now)}}
            cs["containerID"] = f"containerd://{template_hash({'pod': pod['metadata']['uid'], 'c': index})}"
        self.store.update(PODS.key, started)

    def set_ready(self, namespace: str, name: str, ready: bool) -> Obj:
        """Flip a running pod's Ready condition (for ``readiness: external`` workloads, or to fail one)."""
        pod = self.store.get(PODS.key, namespace, name)
        if pod is None:
            raise KeyError(f"pod {namespace}/{name} does not exist")
        if is_ready(pod) == ready:
            return pod
        changed = copy.deepcopy(pod)
        status = changed.setdefault("status", {})
        conditions = status.setdefault("conditions", [])
        for kind in ("Ready", "ContainersReady"):
            found = next((c for c in conditions if c.get("type") == kind), None)
            fresh = _cond(kind, ready, self._now)
            if found is None:
                conditions.append(fresh)
            else:
                found.update(fresh)
                found.pop("reason", None)
                found.pop("message", None)
        for cs in status.get("containerStatuses") or []:
            cs["ready"] = ready
        updated = self.store.update(PODS.key, changed)
        self.settle()
        return updated

    def delete_pod(self, namespace: str, name: str, grace_seconds: float | None = None) -> tuple[Obj, bool]:
        """Delete like the API: a scheduled pod with a termination time stays Terminating that long.

        Returns the pod as the API answers it and whether it is gone already.
        """
        pod = self.store.get(PODS.key, namespace, name)
        if pod is None:
            raise KeyError(f"pod {namespace}/{name} does not exist")
        if is_terminating(pod):
            return pod, False
        grace = grace_seconds
        if grace is None:
            grace = float(pod.get("spec", {}).get("terminationGracePeriodSeconds", 30))
        linger = min(self.timing(pod).termination, grace)
        if linger <= 0 or not pod.get("spec", {}).get("nodeName"):
            if pod["metadata"].get("finalizers") or []:
                return self._mark_deleted(pod, 0), False
            return self._remove_pod(pod), True
        marked = self._mark_deleted(pod, grace)
        self._at(self._now + linger, "remove", marked)
        return marked, False

    def _mark_deleted(self, pod: Obj, grace: float) -> Obj:
        marked = copy.deepcopy(pod)
        marked["metadata"]["deletionTimestamp"] = rfc3339(self._now + grace)
        marked["metadata"]["deletionGracePeriodSeconds"] = int(grace)
        return self.store.update(PODS.key, marked)

    def _remove_pod(self, pod: Obj) -> Obj:
        if pod["metadata"].get("finalizers"):
            return pod
        gone = self.store.remove(PODS.key, pod["metadata"].get("namespace"), pod["metadata"]["name"])
        return gone if gone is not None else pod

    # ----- events -----

    def _event(self, obj: Obj, kind: str, reason: str, message: str, warning: bool = False) -> None:
        if not self.record_events:
            return
        meta = obj["metadata"]
        at = rfc3339(self._now)
        suffix = "".join(self.store.rng.choice("0123456789abcdef") for _ in range(16))
        event: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{suffix}", "namespace": meta.get("namespace") or "default"},
            "involvedObject": {
                "kind": kind,
                "namespace": meta.get("namespace"),
                "name": meta["name"],
                "uid": meta.get("uid"),
                "apiVersion": obj.get("apiVersion", "apps/v1"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "source": {"component": f"{kind.lower()}-controller"},
            "firstTimestamp": at,
            "lastTimestamp": at,
            "count": 1,
            "type": "Warning" if warning else "Normal",
            "eventTime": None,
            "reportingComponent": f"{kind.lower()}-controller",
            "reportingInstance": "",
        }
        self.store.create(EVENTS.key, event)

    # ----- Deployment -----

    def _owned(self, key: TypeKey, namespace: str, owner: Obj) -> list[Obj]:
        uid = owner["metadata"]["uid"]
        return [o for o in self.store.items(key, namespace) if (controller_ref(o) or {}).get("uid") == uid]

    def _sync_deployment(self, ns: str, name: str) -> None:
        d = self.store.get(DEPLOYMENTS.key, ns, name)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        spec = d.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        pod_hash = template_hash(template, int((d.get("status") or {}).get("collisionCount") or 0))
        rs_name = f"{name}-{pod_hash}"
        owned = self._owned(REPLICASETS.key, ns, d)
        current = next((rs for rs in owned if rs["metadata"]["name"] == rs_name), None)
        revisions = [int(_annotations(rs).get(REVISION, "0") or 0) for rs in owned]
        if current is None:
            revision = max(revisions, default=0) + 1
            labels = {**((template.get("metadata") or {}).get("labels") or {}), "pod-template-hash": pod_hash}
            selector = copy.deepcopy(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
            rs_template = copy.deepcopy(template)
            rs_template.setdefault("metadata", {})["labels"] = labels
            rs: Obj = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": rs_name,
                    "namespace": ns,
                    "labels": labels,
                    "annotations": {
                        REVISION: str(revision),
                        "deployment.kubernetes.io/desired-replicas": str(replicas),
                        "deployment.kubernetes.io/max-replicas": str(replicas + 1),
                    },
                    "ownerReferences": [_owner_ref("Deployment", d)],
                    "creationTimestamp": rfc3339(self._now),
                    "generation": 1,
                },
                "spec": {
                    "replicas": replicas,
                    "minReadySeconds": int(spec.get("minReadySeconds", 0)),
                    "selector": selector,
                    "template": rs_template,
                },
                "status": {"replicas": 0},
            }
            current = self.store.create(REPLICASETS.key, rs)
            self._event(
                d, "Deployment", "ScalingReplicaSet", f"Scaled up replica set {rs_name} from 0 to {replicas}"
            )
            owned.append(current)
        for rs in owned:
            want = replicas if rs is current else 0
            if int(rs["spec"].get("replicas", 0)) != want:
                changed = copy.deepcopy(rs)
                before = int(changed["spec"].get("replicas", 0))
                changed["spec"]["replicas"] = want
                changed["metadata"]["generation"] = int(changed["metadata"].get("generation", 1)) + 1
                if rs is current:
                    changed["metadata"].setdefault("annotations", {})[
                        "deployment.kubernetes.io/desired-replicas"
                    ] = str(want)
                self.store.update(REPLICASETS.key, changed)
                way = "up" if want > before else "down"
                self._event(
                    d,
                    "Deployment",
                    "ScalingReplicaSet",
                    f"Scaled {way} replica set {rs['metadata']['name']} from {before} to {want}",
                )
        owned = self._owned(REPLICASETS.key, ns, d)
        current = next(rs for rs in owned if rs["metadata"]["name"] == rs_name)
        statuses = [rs.get("status") or {} for rs in owned]
        total = sum(int(s.get("replicas", 0)) for s in statuses)
        ready = sum(int(s.get("readyReplicas", 0)) for s in statuses)
        available = sum(int(s.get("availableReplicas", 0)) for s in statuses)
        updated = int((current.get("status") or {}).get("replicas", 0))
        status: Obj = {
            "observedGeneration": int(d["metadata"].get("generation", 1)),
            "replicas": total,
            "updatedReplicas": updated,
        }
        if ready:
            status["readyReplicas"] = ready
        if available:
            status["availableReplicas"] = available
        if replicas - available > 0:
            status["unavailableReplicas"] = replicas - available
        old_conditions = {c["type"]: c for c in (d.get("status") or {}).get("conditions") or []}
        has_min = available >= replicas - _max_unavailable(spec, replicas)
        complete = updated == replicas and available >= replicas and total == replicas
        status["conditions"] = [
            self._keep_time(
                old_conditions.get("Available"),
                "Available",
                has_min,
                "MinimumReplicasAvailable" if has_min else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if has_min
                else "Deployment does not have minimum availability.",
            ),
            self._keep_time(
                old_conditions.get("Progressing"),
                "Progressing",
                True,
                "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" has successfully progressed.'
                if complete
                else f'ReplicaSet "{rs_name}" is progressing.',
            ),
        ]
        self._write_status(DEPLOYMENTS.key, d, status)

    def _keep_time(
        self, old: Mapping[str, Any] | None, kind: str, status: bool, reason: str, message: str
    ) -> Obj:
        """A Deployment condition; lastTransitionTime moves only when status does, lastUpdateTime with reason."""
        value = "True" if status else "False"
        now = rfc3339(self._now)
        transition = old.get("lastTransitionTime", now) if old and old.get("status") == value else now
        update = (
            old.get("lastUpdateTime", now)
            if old and old.get("reason") == reason and old.get("status") == value
            else now
        )
        return {
            "type": kind,
            "status": value,
            "lastUpdateTime": update,
            "lastTransitionTime": transition,
            "reason": reason,
            "message": message,
        }

    def _write_status(self, key: TypeKey, obj: Obj, status: Obj) -> None:
        if (obj.get("status") or {}) == status:
            return
        changed = copy.deepcopy(obj)
        changed["status"] = status
        self.store.update(key, changed)

    # ----- ReplicaSet -----

    def _sync_replicaset(self, ns: str, name: str) -> None:
        rs = self.store.get(REPLICASETS.key, ns, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        spec = rs.get("spec") or {}
        want = int(spec.get("replicas", 1))
        pods = [p for p in self._owned(PODS.key, ns, rs) if is_active(p)]
        if len(pods) < want:
            template = spec.get("template") or {}
            for _ in range(want - len(pods)):
                pod_name = self._free_name(ns, name)
                pod = self._new_pod("ReplicaSet", rs, template, pod_name, {})
                self._event(rs, "ReplicaSet", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        elif len(pods) > want:
            related = pods
            owner = controller_ref(rs)
            if owner is not None:
                siblings = [
                    r
                    for r in self.store.items(REPLICASETS.key, ns)
                    if (controller_ref(r) or {}).get("uid") == owner.get("uid")
                ]
                related = [p for r in siblings for p in self._owned(PODS.key, ns, r) if is_active(p)]
            for pod in deletion_order(pods, related, self._now)[: len(pods) - want]:
                self.delete_pod(ns, pod["metadata"]["name"])
                self._event(rs, "ReplicaSet", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
        pods = [p for p in self._owned(PODS.key, ns, rs) if is_active(p)]
        min_ready = float(spec.get("minReadySeconds", 0))
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        status: Obj = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(
                1 for p in pods if template_labels.items() <= (p["metadata"].get("labels") or {}).items()
            ),
            "readyReplicas": sum(1 for p in pods if is_ready(p)),
            "availableReplicas": sum(1 for p in pods if is_available(p, min_ready, self._now)),
            "observedGeneration": int(rs["metadata"].get("generation", 1)),
        }
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        self._write_status(REPLICASETS.key, rs, status)
        self._recheck_availability(REPLICASETS.key, rs, pods, min_ready)

    def _free_name(self, ns: str, prefix: str) -> str:
        while True:
            suffix = "".join(self.store.rng.choice(SAFE_ALPHABET) for _ in range(5))
            name = f"{prefix}-{suffix}"
            if self.store.get(PODS.key, ns, name) is None:
                return name

    # ----- StatefulSet -----

    def _sync_statefulset(self, ns: str, name: str) -> None:
        sts = self.store.get(STATEFULSETS.key, ns, name)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        spec = sts.get("spec") or {}
        want = int(spec.get("replicas", 1))
        parallel = spec.get("podManagementPolicy") == "Parallel"
        template = spec.get("template") or {}
        revision = f"{name}-{template_hash(template)}"
        pods: dict[int, Obj] = {}
        for pod in self._owned(PODS.key, ns, sts):
            index = ordinal(pod["metadata"]["name"], name)
            if index is not None:
                pods[index] = pod
        blocked = False
        for index in range(want):
            existing = pods.get(index)
            if existing is None:
                labels = {
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": f"{name}-{index}",
                    "apps.kubernetes.io/pod-index": str(index),
                }
                pods[index] = self._new_pod("StatefulSet", sts, template, f"{name}-{index}", labels)
                self._event(
                    sts,
                    "StatefulSet",
                    "SuccessfulCreate",
                    f"create Pod {name}-{index} in StatefulSet {name} successful",
                )
                if not parallel:
                    blocked = True
                    break
            elif not parallel and (is_terminating(existing) or not is_running_and_ready(existing)):
                blocked = True
                break
        if not blocked:
            condemned = sorted((i for i in pods if i >= want), reverse=True)
            for index in condemned:
                pod = pods[index]
                if is_terminating(pod):
                    if parallel:
                        continue
                    break
                self.delete_pod(ns, pod["metadata"]["name"])
                self._event(
                    sts,
                    "StatefulSet",
                    "SuccessfulDelete",
                    f"delete Pod {pod['metadata']['name']} in StatefulSet {name} successful",
                )
                if not parallel:
                    blocked = True
                    break
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        if not blocked and strategy == "RollingUpdate":
            partition = int(
                ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition", 0)
            )
            live = [pods[i] for i in range(want) if i in pods]
            if all(is_running_and_ready(p) and not is_terminating(p) for p in live):
                stale = [
                    i
                    for i in range(want)
                    if i in pods
                    and i >= partition
                    and pods[i]["metadata"].get("labels", {}).get("controller-revision-hash") != revision
                ]
                if stale:
                    self.delete_pod(ns, pods[max(stale)]["metadata"]["name"])
        current = [p for p in self._owned(PODS.key, ns, sts) if not is_terminating(p)]
        min_ready = float(spec.get("minReadySeconds", 0))
        updated = sum(
            1 for p in current if p["metadata"].get("labels", {}).get("controller-revision-hash") == revision
        )
        old_status = sts.get("status") or {}
        current_revision = old_status.get("currentRevision") or revision
        if updated == len(current) and len(current) == want:
            current_revision = revision
        status: Obj = {
            "observedGeneration": int(sts["metadata"].get("generation", 1)),
            "replicas": len(current),
            "readyReplicas": sum(1 for p in current if is_ready(p)),
            "currentReplicas": sum(
                1
                for p in current
                if p["metadata"].get("labels", {}).get("controller-revision-hash") == current_revision
            ),
            "updatedReplicas": updated,
            "availableReplicas": sum(1 for p in current if is_available(p, min_ready, self._now)),
            "currentRevision": current_revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        status = {
            k: v
            for k, v in status.items()
            if v or k in ("replicas", "availableReplicas", "observedGeneration", "collisionCount")
        }
        self._write_status(STATEFULSETS.key, sts, status)
        self._recheck_availability(STATEFULSETS.key, sts, current, min_ready)

    # ----- garbage collection -----

    def _collect_garbage(self, gone: set[str]) -> None:
        """Background deletion of dependents whose owners are all gone (ownerReferences by uid)."""
        alive: set[str] | None = None
        for key in list(self.store.types):
            for obj in list(self.store.items(key)):
                refs = obj.get("metadata", {}).get("ownerReferences") or []
                if not refs or not any(r.get("uid") in gone for r in refs):
                    continue
                if alive is None:
                    alive = {
                        str(o["metadata"].get("uid")) for k in self.store.types for o in self.store.items(k)
                    }
                if any(r.get("uid") in alive for r in refs):
                    continue
                meta = obj["metadata"]
                if key == PODS.key:
                    if not is_terminating(obj):
                        self.delete_pod(meta.get("namespace") or "", meta["name"])
                elif meta.get("finalizers"):
                    if not meta.get("deletionTimestamp"):
                        marked = copy.deepcopy(obj)
                        marked["metadata"]["deletionTimestamp"] = rfc3339(self._now)
                        self.store.update(key, marked)
                else:
                    self.store.remove(key, meta.get("namespace"), meta["name"])

    def orphan(self, owner: Obj) -> None:
        """``propagationPolicy: Orphan``: dependents lose their reference to ``owner`` and stay."""
        uid = owner["metadata"]["uid"]
        for key in list(self.store.types):
            for obj in list(self.store.items(key)):
                refs = obj.get("metadata", {}).get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    changed = copy.deepcopy(obj)
                    kept = [r for r in refs if r.get("uid") != uid]
                    if kept:
                        changed["metadata"]["ownerReferences"] = kept
                    else:
                        changed["metadata"].pop("ownerReferences", None)
                    self.store.update(key, changed)


def _max_unavailable(spec: Mapping[str, Any], replicas: int) -> int:
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0
    raw = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if isinstance(raw, str) and raw.endswith("%"):
        return int(replicas * int(raw[:-1]) / 100)
    return int(raw)


def workload_manifest(
    kind: str,
    name: str,
    replicas: int,
    *,
    labels: Mapping[str, str] | None = None,
    image: str = "sandbox:latest",
    startup_seconds: float | None = None,
    termination_seconds: float | None = None,
    external_readiness: bool = False,
    pod_management: str | None = None,
) -> Obj:
    """A minimal apps/v1 Deployment or StatefulSet whose pods carry ``labels`` (default ``app: name``)."""
    selected = dict(labels or {"app": name})
    annotations: dict[str, str] = {}
    if startup_seconds is not None:
        annotations[STARTUP_ANNOTATION] = str(startup_seconds)
    if termination_seconds is not None:
        annotations[TERMINATION_ANNOTATION] = str(termination_seconds)
    if external_readiness:
        annotations[READINESS_ANNOTATION] = "external"
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": dict(selected)},
        "template": {
            "metadata": {"labels": dict(selected)},
            "spec": {"containers": [{"name": "main", "image": image}]},
        },
    }
    if kind == "StatefulSet":
        spec["serviceName"] = name
        if pod_management:
            spec["podManagementPolicy"] = pod_management
    metadata: Obj = {"name": name}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata, "spec": spec}
