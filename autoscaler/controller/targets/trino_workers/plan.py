"""Which Trino workers leave, which come back, and when replicas may drop: the drain decision, pure.

The reconcile loop gives a desired worker count; this module turns it, with what the cluster shows now
(pods, their Trino state and running tasks, the annotations earlier passes wrote), into the changes of one
pass. Everything a later pass needs is on the pods (``queuescale.io/drain-started``, the deletion cost),
so a restarted controller computes the same plan and resumes where the last one stopped.

Rules (``tests/autoscaler/controller/test_controller_trino_plan.py`` has a case for each):

- A *leaver* is a pod carrying ``queuescale.io/drain-started``. Pods in DRAINING/DRAINED/SHUTTING_DOWN
  without it are leaving on someone else's account: never touched nor chosen, and not capacity either,
  so each holds one replica (a StatefulSet adopts such a pod when it is among the ordinals to remove).
- Trino >= 468: a leaver is put DRAINING and is done once it reports DRAINED (Trino itself waits one grace
  period, then for its tasks, then another grace period). A drain can be undone (back to ACTIVE).
- Trino < 468: only SHUTTING_DOWN exists and it is one-way; the worker exits by itself after grace, tasks,
  grace, and its container would then restart ACTIVE in the same pod. A leaver is done once it reports
  SHUTTING_DOWN with no task left after the policy's grace period (the coordinator has stopped scheduling
  on it), or once it stops answering with its pod not ready (it has exited). Replicas are lowered inside
  the second grace period, before the process exits, so no restarted worker ever takes work; the
  policy's ``gracePeriodSeconds`` should equal the workers' ``shutdown.grace-period`` and the
  controller's pass interval be well under half of it. A shutdown that ran out anyway leaves a worker
  that restarted ACTIVE: it is asked to shut down again.
- Deployment: leavers are the pods with the least running work (pods not yet running first); each gets
  ``controller.kubernetes.io/pod-deletion-cost`` below every other pod's (done leavers lower still), so
  the ReplicaSet, which ranks unscheduled < pending < not ready < lower cost, removes exactly them.
  Replicas drop only when no pod with a live Trino ranks with or before the done leavers; a cost written
  in this pass takes effect in the next one, and no new drain starts in a pass that lowers replicas.
- StatefulSet: the leavers are always the highest ordinals (the StatefulSet controller removes those);
  replicas drop by the run of done leavers counted from the top.
- Load returns (desired above the pods not leaving): drains are undone, those with most work to do
  first; only when that is not enough are replicas raised, at once. Trino < 468 shutdowns cannot be
  undone, so new pods are added instead (their count stays above desired until the leavers are gone).
- Every wait is bounded by the policy's drain timeout, counted from the annotation, including an idle
  leaver's wait for other pods. ``Abort``: the worker is put back to ACTIVE (Trino < 468: left to finish
  its shutdown, which cannot be cancelled) and marked ``queuescale.io/drain-kept`` so it is not chosen
  again for one timeout; ``Force``: it is removed with whatever still runs on it, and the killed tasks
  are reported.
- A Deployment leaver's original deletion cost is not kept: an undone drain removes the annotation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from autoscaler.controller.actuator import (
    DRAIN_STARTED_ANNOTATION,
    POD_DELETION_COST,
    format_time,
)
from autoscaler.policy.models import Drain

__all__ = [
    "DRAINING_SINCE",
    "DRAIN_KEPT_ANNOTATION",
    "ChangeKind",
    "DrainPlan",
    "DrainSettings",
    "Ended",
    "PodChange",
    "WorkerView",
    "plan_drain",
]

#: First Trino release with DRAINING/DRAINED (``NodeStateManager``).
DRAINING_SINCE = 468
#: Unix time a drain was given up under ``onTimeout: Abort``; the worker is not chosen again for one timeout.
DRAIN_KEPT_ANNOTATION = "queuescale.io/drain-kept"

LEAVING_STATES = frozenset({"DRAINING", "DRAINED", "SHUTTING_DOWN"})
INT32_MIN = -(2**31)
#: Distance between the other pods' lowest deletion cost, a leaver's cost and a done leaver's cost.
COST_STEP = 1000

WorkloadKind = Literal["Deployment", "StatefulSet"]
ChangeKind = Literal["start", "resume", "undrain", "release", "annotate"]
Outcome = Literal["completed", "aborted", "timeout_removed", "timeout_kept"]


@dataclass(frozen=True, slots=True)
class WorkerView:
    """One pod of the workload as seen this pass.

    ``running``: the pod has an IP and is in phase Running, so a Trino process may be serving on it.
    ``state``: what ``GET /v1/info/state`` answered (None: no answer). ``work``: tasks on the worker
    (None: unknown). ``drain_started``/``kept_at``: the annotations, parsed; ``started_invalid``: the
    drain-started annotation exists but is unreadable (it is rewritten with this pass's time).
    """

    pod: str
    ordinal: int | None = None
    running: bool = True
    ready: bool = True
    state: str | None = "ACTIVE"
    work: int | None = 0
    drain_started: float | None = None
    started_invalid: bool = False
    deletion_cost: int | None = None
    kept_at: float | None = None

    @property
    def leaving(self) -> bool:
        return self.drain_started is not None

    @property
    def cost(self) -> int:
        """The deletion cost the ReplicaSet uses (0 when the annotation is absent)."""
        return 0 if self.deletion_cost is None else self.deletion_cost


@dataclass(frozen=True, slots=True)
class DrainSettings:
    grace_seconds: float = 120.0
    timeout_seconds: float = 3600.0
    on_timeout: Literal["Abort", "Force"] = "Abort"

    @classmethod
    def of(cls, drain: Drain) -> DrainSettings:
        return cls(float(drain.grace_period_seconds), float(drain.timeout_seconds), drain.on_timeout)


@dataclass(frozen=True, slots=True)
class Ended:
    """A drain that ends once its change (or the replicas write) is done; ``work``: tasks killed."""

    pod: str
    outcome: Outcome
    seconds: float
    work: int | None = None


@dataclass(frozen=True, slots=True)
class PodChange:
    """One pod's change. ``start``: annotate, then PUT ``state``; ``resume``: PUT ``state``;
    ``undrain``: PUT ``state`` (ACTIVE), then annotate; ``release`` and ``annotate``: annotate only."""

    pod: str
    kind: ChangeKind
    annotations: Mapping[str, str | None] = field(default_factory=dict)
    state: str | None = None
    ended: Ended | None = None


@dataclass(frozen=True, slots=True)
class DrainPlan:
    """The changes of one pass, then ``replicas`` to write (None: unchanged) and the drains that end
    when it is written. ``leavers``: pods still leaving afterwards; ``notes``: why something waits."""

    changes: tuple[PodChange, ...] = ()
    replicas: int | None = None
    removed: tuple[Ended, ...] = ()
    leavers: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(slots=True)
class _Leaver:
    worker: WorkerView
    done: bool
    """Nothing left to wait for: idle, or timed out under Force."""
    forced: bool
    """Timed out under Force while still busy: removed with its work."""
    unabortable: bool
    overdue: bool = False
    """Idle but still not removed by its deadline (other pods hold the replica count)."""


def plan_drain(
    workers: Sequence[WorkerView],
    *,
    desired: int,
    replicas: int,
    kind: WorkloadKind,
    version: int,
    settings: DrainSettings,
    now: float,
) -> DrainPlan:
    """The drain decision for one pass; ``replicas`` is the scale's ``spec.replicas``."""
    return _Planner(workers, desired, replicas, kind, version, settings, now).plan()


class _Planner:
    def __init__(
        self,
        workers: Sequence[WorkerView],
        desired: int,
        replicas: int,
        kind: WorkloadKind,
        version: int,
        settings: DrainSettings,
        now: float,
    ) -> None:
        if kind == "StatefulSet" and any(w.ordinal is None for w in workers):
            raise ValueError("every StatefulSet pod needs its ordinal")
        self.workers = sorted(workers, key=lambda w: (w.ordinal if w.ordinal is not None else -1, w.pod))
        self.desired = max(0, desired)
        self.replicas = replicas
        self.kind = kind
        self.legacy = version < DRAINING_SINCE
        self.drain_state = "SHUTTING_DOWN" if self.legacy else "DRAINING"
        self.settings = settings
        self.now = now
        self.changes: list[PodChange] = []
        self.notes: list[str] = []
        # Pods whose drain timed out in this pass and were kept (Abort): not chosen again in it either.
        self.kept_now: set[str] = set()
        # Trino < 468 pods released in this pass: still shutting down, no longer ours.
        self.released: set[str] = set()

    # ------------------------------------------------------------------ classification

    def _seconds(self, w: WorkerView) -> float:
        return max(0.0, self.now - (w.drain_started if w.drain_started is not None else self.now))

    def _is_done(self, w: WorkerView) -> bool:
        if not w.running:
            return True  # no Trino process on the pod: nothing to drain
        if not self.legacy:
            return w.state == "DRAINED" and not (w.work or 0) > 0
        assert w.drain_started is not None
        past_grace = self.now >= w.drain_started + self.settings.grace_seconds
        idle = w.state == "SHUTTING_DOWN" and w.work == 0
        exited = w.state is None and not w.ready
        return past_grace and (idle or exited)

    def _unabortable(self, w: WorkerView) -> bool:
        """A Trino < 468 worker whose shutdown may be under way cannot be put back to ACTIVE."""
        return self.legacy and w.running and w.state in ("SHUTTING_DOWN", None)

    def _cooling(self, w: WorkerView) -> bool:
        if w.pod in self.kept_now:
            return True
        return w.kept_at is not None and self.now < w.kept_at + self.settings.timeout_seconds

    def _foreign(self) -> list[WorkerView]:
        """Pods leaving without being ours (drained by someone else, or released): not capacity."""
        return [
            w
            for w in self.workers
            if w.pod in self.released or (not w.leaving and w.running and w.state in LEAVING_STATES)
        ]

    def _timeouts(self, leavers: list[WorkerView]) -> list[_Leaver]:
        """Leavers that go on, after the drains that ran out of time are kept (Abort) or forced (Force)."""
        out: list[_Leaver] = []
        for w in leavers:
            done = self._is_done(w)
            assert w.drain_started is not None
            late = self.now >= w.drain_started + self.settings.timeout_seconds
            timed_out = late and not done
            if timed_out and self.settings.on_timeout == "Abort":
                self._give_up(w)
                continue
            if timed_out:
                self.notes.append(
                    f"{w.pod}: drain timed out after {self._seconds(w):.0f}s, removing it with "
                    f"{_tasks(w.work)} (onTimeout: Force)"
                )
            out.append(_Leaver(w, done or timed_out, timed_out, self._unabortable(w), overdue=late and done))
        return out

    def _give_up_overdue(self, keep: list[_Leaver], removed: Sequence[Ended]) -> list[_Leaver]:
        """Under Abort, idle leavers that could not be removed by their deadline go back to work."""
        if self.settings.on_timeout != "Abort":
            return keep
        gone = {e.pod for e in removed}
        out = []
        for lv in keep:
            if lv.overdue and lv.worker.pod not in gone:
                self._give_up(lv.worker)
            else:
                out.append(lv)
        return out

    def _give_up(self, w: WorkerView) -> None:
        self.kept_now.add(w.pod)
        ended = Ended(w.pod, "timeout_kept", self._seconds(w), w.work)
        clear: dict[str, str | None] = {
            DRAIN_STARTED_ANNOTATION: None,
            DRAIN_KEPT_ANNOTATION: format_time(self.now),
        }
        if self.kind == "Deployment":
            clear[POD_DELETION_COST] = None
        if self._unabortable(w):
            self.notes.append(
                f"{w.pod}: drain timed out after {self._seconds(w):.0f}s; Trino < {DRAINING_SINCE} cannot "
                "cancel a shutdown, so it finishes its tasks, exits and restarts ACTIVE in its pod"
            )
            self.changes.append(PodChange(w.pod, "release", clear, ended=ended))
            self.released.add(w.pod)
            return
        self.notes.append(
            f"{w.pod}: drain timed out after {self._seconds(w):.0f}s with {_tasks(w.work)}, "
            "kept ACTIVE (onTimeout: Abort)"
        )
        self.changes.append(PodChange(w.pod, "undrain", clear, state=self._active_put(w), ended=ended))

    def _active_put(self, w: WorkerView) -> str | None:
        if self.legacy or not w.running or w.state == "ACTIVE":
            return None
        return "ACTIVE"

    def _abort(self, leaver: _Leaver, why: str) -> None:
        w = leaver.worker
        clear: dict[str, str | None] = {DRAIN_STARTED_ANNOTATION: None}
        if self.kind == "Deployment":
            clear[POD_DELETION_COST] = None
        ended = Ended(w.pod, "aborted", self._seconds(w), w.work)
        self.changes.append(PodChange(w.pod, "undrain", clear, state=self._active_put(w), ended=ended))
        self.notes.append(f"{w.pod}: drain aborted ({why})")

    def _start(self, w: WorkerView, cost: int | None) -> None:
        marks: dict[str, str | None] = {DRAIN_STARTED_ANNOTATION: format_time(self.now)}
        if w.kept_at is not None:
            marks[DRAIN_KEPT_ANNOTATION] = None
        if cost is not None:
            marks[POD_DELETION_COST] = str(cost)
        # Only an ACTIVE worker is asked; one already leaving on its own is adopted as it is.
        state = self.drain_state if w.running and w.state == "ACTIVE" else None
        self.changes.append(PodChange(w.pod, "start", marks, state=state))

    def _follow_up(self, leaver: _Leaver, cost: int | None) -> None:
        """Keep a continuing leaver on course: ask again if it is ACTIVE, fix its annotations."""
        w = leaver.worker
        marks: dict[str, str | None] = {}
        if w.started_invalid:
            marks[DRAIN_STARTED_ANNOTATION] = format_time(self.now)
        if cost is not None and w.deletion_cost != cost:
            marks[POD_DELETION_COST] = str(cost)
        if not leaver.done and w.running and w.state == "ACTIVE":
            # A crash between annotating and asking, or a Trino < 468 worker that restarted.
            self.changes.append(PodChange(w.pod, "resume", marks, state=self.drain_state))
        elif marks:
            self.changes.append(PodChange(w.pod, "annotate", marks))
        if not leaver.done and w.running and w.state is None:
            self.notes.append(f"{w.pod}: its Trino does not answer; waiting")

    # ------------------------------------------------------------------ plan

    def plan(self) -> DrainPlan:
        leavers = self._timeouts([w for w in self.workers if w.leaving])
        if self.kind == "Deployment":
            return self._deployment(leavers)
        return self._statefulset(leavers)

    def _finish(self, replicas: int | None, removed: list[Ended], leavers: list[str]) -> DrainPlan:
        return DrainPlan(
            changes=tuple(self.changes),
            replicas=replicas,
            removed=tuple(removed),
            leavers=tuple(sorted(leavers)),
            notes=tuple(self.notes),
        )

    def _candidates(self) -> list[WorkerView]:
        foreign = {w.pod for w in self._foreign()}
        pool = [w for w in self.workers if not w.leaving and w.pod not in foreign]
        cooling = [w.pod for w in pool if self._cooling(w)]
        if cooling:
            self.notes.append(f"not draining {', '.join(cooling)} again yet: kept after a drain timeout")
        return [w for w in pool if not self._cooling(w)]

    # ------------------------------------------------------------------ Deployment

    def _deployment(self, leavers: list[_Leaver]) -> DrainPlan:
        unabortable = [lv for lv in leavers if lv.unabortable]
        held = len(self._foreign())
        if held:
            self.notes.append(f"{held} worker(s) leaving outside queuescale do not count as capacity")
        target = max(self.replicas, self.desired + len(unabortable) + held)
        # Keep the leavers that cannot come back, then the finished ones, then those with least work.
        ranked = sorted(
            leavers,
            key=lambda lv: (not lv.unabortable, not lv.done, _work_key(lv.worker.work), lv.worker.pod),
        )
        free = max(0, self.replicas - len(self.workers))  # replicas whose pod does not exist yet
        wanted = max(len(unabortable), target - self.desired - held - free)
        keep, extra = ranked[:wanted], ranked[wanted:]
        returned = self.desired > self.replicas - len(leavers) - held
        for lv in extra:
            self._abort(lv, "load returned" if returned else "not needed")
        costs = self._costs({lv.worker.pod for lv in keep})
        if target > self.replicas:
            if unabortable:
                self.notes.append(
                    f"{len(unabortable)} worker(s) shutting down cannot return on Trino < {DRAINING_SINCE}: "
                    f"adding new pods instead ({self.replicas} -> {target})"
                )
            self._follow_ups(keep, costs)
            return self._finish(target, [], [lv.worker.pod for lv in keep])

        new: list[WorkerView] = []
        need = wanted - len(keep)
        if need > 0:
            candidates = sorted(
                self._candidates(),
                key=lambda w: (w.running, w.work is None, _work_key(w.work), w.ready, w.pod),
            )
            new = candidates[:need]
            if len(new) < need:
                self.notes.append(f"{need - len(new)} more worker(s) to drain, none can be chosen now")

        done = [lv for lv in keep if lv.done]
        lowered, removed = self._deployment_lowering(done, keep, free)
        keep = self._give_up_overdue(keep, removed)
        leaving = [lv.worker.pod for lv in keep]
        if lowered is not None:
            if new:
                self.notes.append("new drains wait for the next pass: replicas are being lowered")
            gone = {e.pod for e in removed}
            self._follow_ups([lv for lv in keep if lv.worker.pod not in gone], costs)
            return self._finish(lowered, removed, [p for p in leaving if p not in gone])
        for w in new:
            self._start(w, costs[1])
        self._follow_ups(keep, costs)
        return self._finish(None, [], leaving + [w.pod for w in new])

    def _costs(self, leaving: set[str]) -> tuple[int, int]:
        """(done, in progress) deletion costs: below every pod that is not a leaver."""
        others = [w.cost for w in self.workers if w.pod not in leaving]
        base = min([0, *others])
        in_progress = max(INT32_MIN + 1, base - COST_STEP)
        return max(INT32_MIN, in_progress - COST_STEP), in_progress

    def _follow_ups(self, keep: list[_Leaver], costs: tuple[int, int]) -> None:
        for lv in keep:
            self._follow_up(lv, costs[0] if lv.done else costs[1])

    def _deployment_lowering(
        self, done: list[_Leaver], keep: list[_Leaver], free: int
    ) -> tuple[int | None, list[Ended]]:
        """Replicas to write now and the drains that end with it, or (None, []) to wait."""
        if not done and free == 0:
            return None, []
        if done:
            done_pods = {lv.worker.pod for lv in done}
            highest = max(lv.worker.cost for lv in done)
            any_ready = any(lv.worker.ready for lv in done)
            # Pods with a live Trino that the ReplicaSet would rank with or before a done leaver.
            blockers = [
                w
                for w in self.workers
                if w.pod not in done_pods
                and w.running
                and (w.state is not None or w.ready)
                and ((not w.ready and any_ready) or (w.ready == any_ready and w.cost <= highest))
            ]
            leaving = {lv.worker.pod for lv in keep}
            late = any(lv.overdue or lv.forced for lv in done)
            force = self.settings.on_timeout == "Force" and late
            names = ", ".join(w.pod for w in blockers)
            if blockers and force and not any(w.pod in leaving for w in blockers):
                self.notes.append(
                    f"drain deadline passed (onTimeout: Force): lowering replicas although {names} "
                    "may be removed first"
                )
            elif blockers:
                self.notes.append(f"replicas wait: {names} would be removed before the drained worker(s)")
                if free == 0:
                    return None, []
                done = []
        removed = [self._removal(lv) for lv in done]
        return self.replicas - free - len(done), removed

    def _removal(self, lv: _Leaver) -> Ended:
        w = lv.worker
        if lv.forced:
            return Ended(w.pod, "timeout_removed", self._seconds(w), w.work)
        return Ended(w.pod, "completed", self._seconds(w), 0)

    # ------------------------------------------------------------------ StatefulSet

    def _statefulset(self, leavers: list[_Leaver]) -> DrainPlan:
        # Shutdowns that cannot be undone below the new top stay where they are; each holds one more
        # replica until its worker has restarted, so the new top ordinals are not drained for it.
        stuck = sorted(
            [lv.worker.ordinal or 0 for lv in leavers if lv.unabortable]
            + [w.ordinal or 0 for w in self._foreign()]
        )
        floor = self.desired
        while True:
            stranded = sum(1 for o in stuck if o < floor)
            if self.desired + stranded == floor:
                break
            floor = self.desired + stranded
        target = max(self.replicas, floor)
        keep: list[_Leaver] = []
        for lv in leavers:
            ordinal = lv.worker.ordinal or 0
            if floor <= ordinal < target or lv.unabortable:
                keep.append(lv)
            else:
                self._abort(lv, "load returned" if target > self.replicas else "not among the top ordinals")
        if stranded:
            self.notes.append(
                f"{stranded} worker(s) below the top are leaving and cannot be removed or put back: "
                f"keeping {stranded} more replica(s) until they serve again"
            )
        for lv in keep:
            self._follow_up(lv, None)
        if target > self.replicas:
            return self._finish(target, [], [lv.worker.pod for lv in keep])

        by_ordinal = {w.ordinal: w for w in self.workers}
        kept = {lv.worker.ordinal: lv for lv in keep}
        # The StatefulSet removes from the top: lower past every finished leaver (or missing pod) there.
        lowered = self.replicas
        removed: list[Ended] = []
        for ordinal in range(self.replicas - 1, floor - 1, -1):
            if ordinal not in by_ordinal:
                lowered = ordinal
                continue
            top = kept.get(ordinal)
            if top is None or not top.done:
                break
            removed.append(self._removal(top))
            lowered = ordinal
        keep = self._give_up_overdue(keep, removed)
        kept = {lv.worker.ordinal: lv for lv in keep}

        new: list[WorkerView] = []
        for ordinal in range(lowered - 1, floor - 1, -1):
            pod = by_ordinal.get(ordinal)
            if pod is None or ordinal in kept:
                continue
            if self._cooling(pod):
                # Pods below it could not leave before it does: draining them now only idles them.
                self.notes.append(f"{pod.pod}: kept after a drain timeout; not draining it again yet")
                break
            new.append(pod)
        for w in new:
            self._start(w, None)

        leaving = [lv.worker.pod for lv in keep] + [w.pod for w in new]
        gone = {e.pod for e in removed}
        return self._finish(
            lowered if lowered < self.replicas else None, removed, [p for p in leaving if p not in gone]
        )


def _work_key(work: int | None) -> float:
    return math.inf if work is None else float(work)


def _tasks(work: int | None) -> str:
    return "an unknown number of tasks" if work is None else f"{work} task(s)"
