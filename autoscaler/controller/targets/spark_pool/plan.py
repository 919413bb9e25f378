"""What one pass over a Spark standalone worker pool (a StatefulSet) does: a pure function of what was read.

The StatefulSet removes its highest ordinals first, so the leavers of a scale-down from ``R`` to ``D``
replicas are the pods with ordinals ``D .. R-1``. A leaver may go once its Spark worker runs no
executor; replicas are lowered past the highest block of leavers that may go (a busy leaver holds the
ones below it).

**Pod → worker.** A pod's worker is the master's ``/json`` ``workers[]`` entry whose ``host`` (compared
without case) is the pod IP, the pod name, or starts with ``<pod name>.`` (the pod's FQDN under a
headless Service). Start workers with ``--host $(POD_IP)`` or ``--host $(hostname -f)`` so this holds;
a pod that matches no worker runs no executor. Several entries can match one pod (a restarted worker
process registers anew; the old entry turns DEAD): the ALIVE one wins, then DECOMMISSIONED, then the
others.

**Decommission** (``decommission: true``): every leaver whose worker is ALIVE is decommissioned on the
master (``POST /workers/kill/?host=``); it may go once the master lists it DECOMMISSIONED and no executor
runs on it. The master matches by host, so a host that another worker (a pod that stays, or a worker
outside the pool) shares is never sent: that leaver waits for idleness instead. The master's
``coresused`` of a DECOMMISSIONED worker never drops below what it was (Spark's ``Master`` forgets the
decommissioned worker's executors before they exit, so their exit is dropped as an "unknown executor";
observed with Spark 4.3): zero there is trusted, anything else is checked with the worker's own
``/json`` (``executors``), which the actuator reads into :class:`WorkerLoad`. A worker that cannot be
asked counts as busy: if its process is gone, the master soon lists it DEAD, which ends the wait.
Executors leave a decommissioned worker as soon as their running tasks end only when their application
sets ``spark.decommission.enabled=true``; other applications' executors take no new task there but stay
until the application ends, so the drain waits for that (or its timeout).

**Without decommission** a leaver may go when the master shows its worker idle (``coresused == 0``).
Nothing stops the master from handing an idle ALIVE worker a new executor between that read and the pod's
termination, so replicas are lowered in the very pass that sees the leavers idle, never later; an
executor placed in that window is lost, and Spark reruns its tasks elsewhere. Decommissioning closes the
window, because the master never places executors on a DECOMMISSIONED worker.

**Time.** A drain starts when a leaver is first seen; its start is kept in the pod annotation
``queuescale.io/drain-started`` (Unix seconds) so a restarted controller keeps the deadline. After
``timeoutSeconds`` a leaver still busy is removed anyway (``Force``, reporting the cores and executors
lost) or kept (``Abort``: its annotation is cleared and a later pass starts a new drain if the engine still
wants fewer workers). The drain's grace period is Trino's: Spark reports the facts, so none is waited.

**Back up.** When the engine wants a leaver again, a drain that only waited for idleness is aborted (the
annotation cleared). A worker already decommissioned cannot take executors again (Spark has no way back),
so once its executors have left its pod is deleted and the StatefulSet recreates it as a fresh worker.
Before a decommission request the pod is annotated ``queuescale.io/decommissioned``, so this holds even
when the master later forgets the worker (a restarted master, or one that drops drained workers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from autoscaler.controller.actuator import DRAIN_STARTED_ANNOTATION, ActuatorEvent, DrainEnd, format_time

__all__ = [
    "ALIVE",
    "DEAD",
    "DECOMMISSIONED",
    "DECOMMISSIONED_ANNOTATION",
    "LeaverStatus",
    "MasterWorker",
    "PoolPlan",
    "PoolPod",
    "PoolSettings",
    "WorkerLoad",
    "WorkersByHost",
    "match_worker",
    "ordinal_of",
    "parse_master_workers",
    "parse_worker_load",
    "plan_pool",
]

#: Annotation on a pod whose worker this controller decommissioned (Unix time): such a worker is never
#: put back to work, and a restarted controller knows it even when the master forgot.
DECOMMISSIONED_ANNOTATION = "queuescale.io/decommissioned"
ALIVE = "ALIVE"
DECOMMISSIONED = "DECOMMISSIONED"
DEAD = "DEAD"
_STATE_RANK = {ALIVE: 0, DECOMMISSIONED: 1}


@dataclass(frozen=True, slots=True)
class MasterWorker:
    """One entry of the master's ``/json`` ``workers[]``."""

    worker_id: str
    host: str
    port: int
    state: str
    cores: int
    cores_used: int
    webui: str = ""


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    """What a worker's own ``/json`` says runs on it."""

    executors: int
    cores_used: int


@dataclass(frozen=True, slots=True)
class PoolPod:
    """A pod of the pool's StatefulSet with its annotations: ``drain_started`` (None: not draining) and
    ``decommissioned`` (when its worker was decommissioned; None: never)."""

    name: str
    ordinal: int
    ip: str = ""
    ready: bool = False
    drain_started: float | None = None
    decommissioned: float | None = None


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """The policy's drain settings; ``decommission`` False when the policy or the master refuses it."""

    decommission: bool
    timeout_seconds: float
    on_timeout: Literal["Abort", "Force"]
    executor_cores: int = 1


@dataclass(frozen=True, slots=True)
class LeaverStatus:
    """Why a leaver may or may not go this pass (for the detail and the tests)."""

    pod: str
    ordinal: int
    worker: str | None
    state: str
    cores_used: int
    done: bool
    why: str


@dataclass(frozen=True, slots=True)
class PoolPlan:
    """What to do this pass, in this order: annotate pods, decommission, delete pods, then scale.

    ``annotations`` are merge patches of pod annotations (None removes one), written before any
    decommission request so a restart finds what was started. ``drains_started`` counts the drains they
    start; ``ended`` the drains that end whatever the scale write does (aborted, kept), ``removed`` those
    that end when ``replicas`` is written, of which ``removed_new`` started in this very pass.
    """

    replicas: int | None = None
    annotations: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    decommission: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    drains_started: int = 0
    ended: tuple[DrainEnd, ...] = ()
    removed: tuple[DrainEnd, ...] = ()
    removed_new: int = 0
    draining: int = 0
    lost_cores: int = 0
    lost_executors: int = 0
    leavers: tuple[LeaverStatus, ...] = ()
    events: tuple[ActuatorEvent, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        return "; ".join(self.notes)


# ---------------------------------------------------------------------- reading the documents


def parse_master_workers(doc: Any) -> tuple[MasterWorker, ...]:
    """The ``workers[]`` of the master's ``/json/``; ValueError on a document Spark would not send."""
    if not isinstance(doc, Mapping):
        raise ValueError("the master's /json/ is not an object")
    rows = doc.get("workers")
    if not isinstance(rows, list):
        raise ValueError("the master's /json/ has no workers list")
    out = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise ValueError("a worker entry is not an object")
        out.append(
            MasterWorker(
                worker_id=_text(row, "id"),
                host=_text(row, "host"),
                port=_count(row, "port"),
                state=_text(row, "state").upper(),
                cores=_count(row, "cores"),
                cores_used=_count(row, "coresused"),
                webui=str(row.get("webuiaddress") or ""),
            )
        )
    return tuple(out)


def parse_worker_load(doc: Any) -> WorkerLoad:
    """A worker's own ``/json/`` (``executors`` running now, ``coresused``)."""
    if not isinstance(doc, Mapping):
        raise ValueError("the worker's /json/ is not an object")
    executors = doc.get("executors")
    if not isinstance(executors, list):
        raise ValueError("the worker's /json/ has no executors list")
    return WorkerLoad(executors=len(executors), cores_used=_count(doc, "coresused"))


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} is missing or not a string: {value!r}")
    return value


def _count(row: Mapping[str, Any], key: str) -> int:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"field {key!r} is missing or not a count: {value!r}")
    return value


# ---------------------------------------------------------------------- pods and workers


def ordinal_of(pod_name: str, set_name: str) -> int | None:
    """The ordinal of ``<set>-<n>``; None for a pod of another shape (not one of the set's)."""
    prefix = set_name + "-"
    if not pod_name.startswith(prefix):
        return None
    tail = pod_name[len(prefix) :]
    if not tail.isdigit() or (len(tail) > 1 and tail.startswith("0")):
        return None
    return int(tail)


class WorkersByHost:
    """The master's workers looked up by host, so matching a pool's pods costs a few dict reads, not a
    scan of every worker the master knows (a shared master may list thousands)."""

    def __init__(self, workers: Sequence[MasterWorker]) -> None:
        self._by_host: dict[str, list[MasterWorker]] = {}
        for worker in workers:
            host = worker.host.lower()
            self._by_host.setdefault(host, []).append(worker)
            # Every proper dotted prefix of the host, for a pod name that begins its FQDN (a pod name
            # may itself hold dots).
            for at, char in enumerate(host):
                if char == ".":
                    self._by_host.setdefault(host[:at] + ".", []).append(worker)

    def match(self, pod: PoolPod) -> MasterWorker | None:
        """The pod's worker by the rule in the module documentation; None when none matches."""
        name = pod.name.lower()
        found: list[MasterWorker] = [*self._by_host.get(name, ()), *self._by_host.get(name + ".", ())]
        ip = pod.ip.lower()
        if ip and ip != name:
            found += [w for w in self._by_host.get(ip, ()) if not any(w is f for f in found)]
        if not found:
            return None
        # Later registrations have later ids (worker-<yyyyMMddHHmmss>-host-port): newest first on a tie.
        found.sort(key=lambda w: w.worker_id, reverse=True)
        return min(found, key=lambda w: _STATE_RANK.get(w.state, 2))


def match_worker(pod: PoolPod, workers: Sequence[MasterWorker] | WorkersByHost) -> MasterWorker | None:
    """The pod's worker by the rule in the module documentation; None when none matches."""
    index = workers if isinstance(workers, WorkersByHost) else WorkersByHost(workers)
    return index.match(pod)


# ---------------------------------------------------------------------- the plan


def _executors_left(worker: MasterWorker, load: WorkerLoad | None) -> tuple[bool, int, str]:
    """For a DECOMMISSIONED worker: (none left, cores still used, why)."""
    if worker.cores_used == 0:
        return True, 0, "decommissioned, no executor left"
    if load is None:
        return False, worker.cores_used, f"decommissioned, the master counts {worker.cores_used} cores used"
    if load.executors == 0:
        return True, 0, "decommissioned, the worker runs no executor"
    return False, load.cores_used, f"decommissioned, {load.executors} executor(s) still running"


@dataclass
class _Acc:
    stamp: str
    patches: dict[str, dict[str, str | None]] = field(default_factory=dict)
    decommission: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    ended: list[DrainEnd] = field(default_factory=list)
    removed: list[DrainEnd] = field(default_factory=list)
    removed_new: int = 0
    events: list[ActuatorEvent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: int = 0
    draining: int = 0

    def annotate(self, pod: str, key: str, value: str | None) -> None:
        self.patches.setdefault(pod, {})[key] = value

    def start(self, pod: PoolPod) -> None:
        self.annotate(pod.name, DRAIN_STARTED_ANNOTATION, self.stamp)
        self.started += 1

    def clear(self, pod: PoolPod, *, decommissioned: bool) -> None:
        if pod.drain_started is not None:
            self.annotate(pod.name, DRAIN_STARTED_ANNOTATION, None)
        if decommissioned and pod.decommissioned is not None:
            self.annotate(pod.name, DECOMMISSIONED_ANNOTATION, None)


def plan_pool(
    replicas: int,
    desired: int,
    pods: Sequence[PoolPod],
    workers: Sequence[MasterWorker],
    settings: PoolSettings,
    now: float,
    loads: Mapping[str, WorkerLoad] | None = None,
) -> PoolPlan:
    """One pass: ``replicas`` is the scale's ``spec.replicas``, ``desired`` the engine's count, ``loads``
    the worker-reported load by worker id (read for DECOMMISSIONED workers the master still counts busy)."""
    loads = loads or {}
    desired = max(0, desired)
    acc = _Acc(format_time(now))
    by_ordinal = {p.ordinal: p for p in pods if p.ordinal < replicas}
    index = WorkersByHost(workers)
    matched = {p.name: index.match(p) for p in by_ordinal.values()}
    new_replicas: int | None = desired if desired > replicas else None

    for ordinal in sorted(o for o in by_ordinal if o < desired):
        pod = by_ordinal[ordinal]
        _stayer(pod, matched[pod.name], settings, now, loads, acc)

    leavers: list[LeaverStatus] = []
    lost_cores = lost_executors = 0
    if desired < replicas:
        leaving = [by_ordinal[o] for o in range(desired, replicas) if o in by_ordinal]
        leaver_ids = {w.worker_id for p in leaving if (w := matched[p.name]) is not None}
        # A DECOMMISSIONED twin on the same host cannot be harmed by one more decommission.
        shared = {
            w.host.lower()
            for w in workers
            if w.state not in (DEAD, DECOMMISSIONED) and w.worker_id not in leaver_ids
        }
        removable: dict[int, tuple[str, float, int]] = {}
        for pod in leaving:
            status, outcome, lost = _leaver(pod, matched[pod.name], settings, now, loads, shared, acc)
            leavers.append(status)
            if outcome is not None:
                started = pod.drain_started if pod.drain_started is not None else now
                removable[pod.ordinal] = (outcome, max(0.0, now - started), lost)
        lowest = replicas
        for ordinal in range(replicas - 1, desired - 1, -1):
            if ordinal in by_ordinal and ordinal not in removable:
                break
            lowest = ordinal
        for ordinal, (outcome, seconds, lost) in sorted(removable.items()):
            pod = by_ordinal[ordinal]
            if ordinal >= lowest:
                acc.removed.append(DrainEnd(outcome, seconds))
                lost_cores += lost
                lost_executors += math.ceil(lost / settings.executor_cores)
                if pod.drain_started is None:
                    acc.removed_new += 1
            else:
                # May go, but a busy leaver above it holds it: it keeps draining.
                acc.draining += 1
                if pod.drain_started is None:
                    acc.start(pod)
        if lowest < replicas:
            new_replicas = lowest
            why = {status.pod: status.why for status in leavers}
            gone = ", ".join(
                f"{by_ordinal[o].name} ({why[by_ordinal[o].name]})" for o in sorted(by_ordinal) if o >= lowest
            )
            acc.notes.append(f"scaling {replicas} → {lowest}: {gone or 'no pod left'} may go")
        if lowest > desired:
            acc.notes.append(f"{lowest - desired} worker(s) still draining before {lowest} → {desired}")
        if lost_cores:
            acc.events.append(
                ActuatorEvent(
                    "DrainTimeoutForced",
                    f"drain timeout ({settings.timeout_seconds:g} s) passed: removing workers anyway, "
                    f"killing {lost_executors} executor(s) on {lost_cores} core(s); Spark reruns their tasks",
                    "Warning",
                )
            )
    elif new_replicas is not None:
        acc.notes.append(f"scaling {replicas} → {new_replicas}")

    order = {p.name: p.ordinal for p in by_ordinal.values()}
    return PoolPlan(
        replicas=new_replicas,
        annotations={name: acc.patches[name] for name in sorted(acc.patches, key=order.__getitem__)},
        decommission=tuple(dict.fromkeys(acc.decommission)),
        delete=tuple(acc.delete),
        drains_started=acc.started,
        ended=tuple(acc.ended),
        removed=tuple(acc.removed),
        removed_new=acc.removed_new,
        draining=acc.draining,
        lost_cores=lost_cores,
        lost_executors=lost_executors,
        leavers=tuple(leavers),
        events=tuple(acc.events),
        notes=tuple(acc.notes),
    )


def _stayer(
    pod: PoolPod,
    worker: MasterWorker | None,
    settings: PoolSettings,
    now: float,
    loads: Mapping[str, WorkerLoad],
    acc: _Acc,
) -> None:
    """A pod the engine wants (again): abort its drain, or recycle a worker decommissioned before."""
    seconds = max(0.0, now - pod.drain_started) if pod.drain_started is not None else 0.0
    state = worker.state if worker is not None else None
    ours = pod.decommissioned is not None or (
        state == DECOMMISSIONED and (settings.decommission or pod.drain_started is not None)
    )
    if ours and state != ALIVE:
        if worker is None or state == DEAD:
            left, why = True, "its worker is gone"
        elif state == DECOMMISSIONED:
            left, _, why = _executors_left(worker, loads.get(worker.worker_id))
        else:
            left, why = False, f"worker state {state}"
        if left:
            acc.delete.append(pod.name)
            if pod.drain_started is not None:
                acc.ended.append(DrainEnd("aborted", seconds))
            acc.notes.append(f"{pod.name}: {why}; recreating its pod as a fresh worker")
            acc.events.append(
                ActuatorEvent(
                    "RecyclingWorker",
                    f"{pod.name} is wanted again but its worker was decommissioned (Spark cannot undo "
                    "that): its pod is deleted so the StatefulSet starts a fresh worker",
                )
            )
        else:
            acc.draining += 1
            acc.notes.append(f"{pod.name}: wanted again, {why}; recreated once they leave")
        return
    if pod.drain_started is not None or pod.decommissioned is not None:
        # Not decommissioned after all (an ALIVE worker: the master never did it, or forgot it).
        acc.clear(pod, decommissioned=True)
        if pod.drain_started is not None:
            acc.ended.append(DrainEnd("aborted", seconds))
        acc.notes.append(f"{pod.name}: wanted again, drain aborted")
        acc.events.append(ActuatorEvent("DrainAborted", f"{pod.name} is wanted again: its drain is aborted"))


def _leaver(
    pod: PoolPod,
    worker: MasterWorker | None,
    settings: PoolSettings,
    now: float,
    loads: Mapping[str, WorkerLoad],
    shared_hosts: set[str],
    acc: _Acc,
) -> tuple[LeaverStatus, str | None, int]:
    """(status, outcome if it may go this pass, cores it would lose)."""
    new = pod.drain_started is None
    if worker is None or worker.state == DEAD:
        why = "no worker registered" if worker is None else "its worker is DEAD"
        worker_id = worker.worker_id if worker is not None else None
        return LeaverStatus(pod.name, pod.ordinal, worker_id, "gone", 0, True, why), "completed", 0
    decommission = settings.decommission
    if decommission and worker.host.lower() in shared_hosts:
        decommission = False
        if new:
            acc.events.append(
                ActuatorEvent(
                    "DecommissionUnsafe",
                    f"{pod.name}: host {worker.host} also runs other workers and the master decommissions "
                    "by host, so waiting for its worker to be idle instead",
                    "Warning",
                )
            )
    done, used, why = False, worker.cores_used, ""
    if worker.state == DECOMMISSIONED:
        done, used, why = _executors_left(worker, loads.get(worker.worker_id))
    elif worker.state == ALIVE and decommission:
        acc.decommission.append(worker.host)
        if pod.decommissioned is None:
            acc.annotate(pod.name, DECOMMISSIONED_ANNOTATION, acc.stamp)
        why = f"decommissioning (ALIVE, {worker.cores_used} cores used)"
    elif worker.state == ALIVE:
        done = worker.cores_used == 0
        why = "idle" if done else f"busy: {worker.cores_used} cores used"
    else:
        why = f"worker state {worker.state}: waiting"
    status = LeaverStatus(pod.name, pod.ordinal, worker.worker_id, worker.state, used, done, why)
    if done:
        return status, "completed", 0
    started = now if pod.drain_started is None else pod.drain_started
    if now - started >= settings.timeout_seconds:
        if settings.on_timeout == "Force":
            acc.notes.append(f"{pod.name}: drain timeout, removed anyway ({why})")
            return status, "timeout_removed", used
        acc.clear(pod, decommissioned=False)
        acc.ended.append(DrainEnd("timeout_kept", now - started))
        acc.notes.append(f"{pod.name}: drain timeout, kept ({why})")
        acc.events.append(
            ActuatorEvent(
                "DrainTimeoutKept",
                f"{pod.name} still busy after the drain timeout ({settings.timeout_seconds:g} s): kept ({why})",
                "Warning",
            )
        )
        return status, None, 0
    acc.draining += 1
    acc.notes.append(f"{pod.name}: {why}")
    if new:
        acc.start(pod)
    return status, None, 0
