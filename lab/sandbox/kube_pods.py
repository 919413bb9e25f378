"""Pure pod facts the simulated controllers use: readiness, names and hashes, and the order in which
the ReplicaSet controller picks pods to delete (``ActivePodsWithRanks`` in
kubernetes/kubernetes ``pkg/controller/controller_utils.go``)."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from lab.sandbox.kube_types import parse_time

Obj = dict[str, Any]

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""k8s.io/apimachinery ``util/rand``: no vowels, no look-alikes."""
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}
_INT32 = (-(2**31), 2**31 - 1)


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in text)


def template_hash(template: Mapping[str, Any], collision_count: int = 0) -> str:
    """A pod-template-hash: stable for equal templates, different (almost surely) for different ones."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    if collision_count:
        canonical += f"#{collision_count}"
    return safe_encode(str(fnv32a(canonical.encode())))


def condition(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    ready = condition(pod, "Ready")
    return ready is not None and ready.get("status") == "True"


def ready_time(pod: Mapping[str, Any]) -> float | None:
    """When the pod last became ready; None when it is not ready."""
    ready = condition(pod, "Ready")
    if ready is None or ready.get("status") != "True":
        return None
    return parse_time(str(ready.get("lastTransitionTime") or ""))


def phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_terminating(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_active(pod: Mapping[str, Any]) -> bool:
    """``controller.IsPodActive``: not finished and not being deleted."""
    return phase(pod) not in ("Succeeded", "Failed") and not is_terminating(pod)


def is_running_and_ready(pod: Mapping[str, Any]) -> bool:
    return phase(pod) == "Running" and is_ready(pod)


def is_available(pod: Mapping[str, Any], min_ready_seconds: float, now: float) -> bool:
    since = ready_time(pod)
    return since is not None and (min_ready_seconds <= 0 or since + min_ready_seconds <= now)


def deletion_cost(pod: Mapping[str, Any]) -> int:
    """The pod-deletion-cost annotation; absent or not an int32 counts as 0, as upstream."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST)
    if raw is None:
        return 0
    try:
        value = int(str(raw).strip())
    except ValueError:
        return 0
    return value if _INT32[0] <= value <= _INT32[1] else 0


def max_restarts(pod: Mapping[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def node_of(pod: Mapping[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def uid_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def created_at(obj: Mapping[str, Any]) -> float | None:
    return parse_time(str((obj.get("metadata") or {}).get("creationTimestamp") or ""))


def _log_rank(t: float, now: float) -> int:
    nanos = (now - t) * 1e9
    return int(math.log2(nanos)) if nanos > 0 else -1


def _newer_first(t1: float | None, t2: float | None, u1: str, u2: str, now: float | None) -> int:
    """Steps 6 and 8: a missing time first, then the more recent on a logarithmic scale
    (``LogarithmicScaleDown``), equal ranks in UID order."""
    if t1 is None or t2 is None or now is None:
        if t1 is None or t2 is None:
            return -1 if t1 is None else 1
        return -1 if t1 > t2 else 1
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return -1 if u1 < u2 else (1 if u1 > u2 else 0)
    return -1 if diff < 0 else 1


def deletion_order(pods: Sequence[Obj], related: Sequence[Obj] = (), now: float | None = None) -> list[Obj]:
    """``pods`` sorted so the ones the ReplicaSet controller deletes first come first.

    ``related`` are the pods of every ReplicaSet of the same owner; a pod on a node crowded with them
    goes earlier. ``now`` enables the logarithmic age comparison (None: plain newest first).
    """
    crowd: dict[str, int] = {}
    for pod in related or pods:
        if is_active(pod):
            crowd[node_of(pod)] = crowd.get(node_of(pod), 0) + 1

    def less(a: Obj, b: Obj) -> int:
        na, nb = node_of(a), node_of(b)
        if na != nb and (not na or not nb):
            return -1 if not na else 1
        pa, pb = _PHASE_ORDINAL.get(phase(a), 0), _PHASE_ORDINAL.get(phase(b), 0)
        if pa != pb:
            return -1 if pa < pb else 1
        ra, rb = is_ready(a), is_ready(b)
        if ra != rb:
            return -1 if not ra else 1
        ca, cb = deletion_cost(a), deletion_cost(b)
        if ca != cb:
            return -1 if ca < cb else 1
        ka, kb = crowd.get(na, 0), crowd.get(nb, 0)
        if ka != kb:
            return -1 if ka > kb else 1
        if ra and rb:
            ta, tb = ready_time(a), ready_time(b)
            if ta != tb:
                step = _newer_first(ta, tb, uid_of(a), uid_of(b), now)
                if step:
                    return step
        xa, xb = max_restarts(a), max_restarts(b)
        if xa != xb:
            return -1 if xa > xb else 1
        ta, tb = created_at(a), created_at(b)
        if ta != tb:
            return _newer_first(ta, tb, uid_of(a), uid_of(b), now)
        return 0

    return sorted(pods, key=functools.cmp_to_key(less))


def ordinal(pod_name: str, set_name: str) -> int | None:
    """The StatefulSet ordinal in ``<set>-<n>``; None for a name of another shape."""
    prefix = set_name + "-"
    if not pod_name.startswith(prefix):
        return None
    tail = pod_name[len(prefix) :]
    return int(tail) if tail.isdigit() and (tail == "0" or not tail.startswith("0")) else None


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None
