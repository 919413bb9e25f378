"""The drain planner as data: which workers leave, which come back, when replicas drop."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.controller.actuator import (
    DRAIN_STARTED_ANNOTATION,
    POD_DELETION_COST,
    format_time,
    parse_time,
)
from autoscaler.controller.targets.trino_workers.plan import (
    DRAIN_KEPT_ANNOTATION,
    DrainPlan,
    DrainSettings,
    WorkerView,
    plan_drain,
)
from autoscaler.policy.models import Drain

NOW = 10_000.0
GRACE = 30.0
TIMEOUT = 600.0
ABORT = DrainSettings(GRACE, TIMEOUT, "Abort")
FORCE = DrainSettings(GRACE, TIMEOUT, "Force")
LEAVER = -1000  # the cost a leaver gets when no other pod has a cost
DONE = -2000


def W(pod: str, **kw: Any) -> WorkerView:
    """A worker; StatefulSet pods are named ``w-<ordinal>``."""
    if pod.startswith("w-") and "ordinal" not in kw:
        kw["ordinal"] = int(pod[2:])
    return WorkerView(pod=pod, **kw)


def leaving(pod: str, state: str = "DRAINING", since: float = 100.0, **kw: Any) -> WorkerView:
    """A leaver whose drain started ``since`` seconds ago."""
    return W(pod, state=state, drain_started=NOW - since, **kw)


def summary(plan: DrainPlan) -> dict[str, Any]:
    return {
        "changes": {(c.pod, c.kind, c.state) for c in plan.changes},
        "replicas": plan.replicas,
        "ended": {(e.pod, e.outcome, e.work) for c in plan.changes if (e := c.ended)}
        | {(e.pod, e.outcome, e.work) for e in plan.removed},
        "leavers": set(plan.leavers),
    }


def expect(
    changes: set[tuple[str, str, str | None]] | None = None,
    replicas: int | None = None,
    ended: set[tuple[str, str, int | None]] | None = None,
    leavers: set[str] | None = None,
) -> dict[str, Any]:
    return {
        "changes": changes or set(),
        "replicas": replicas,
        "ended": ended or set(),
        "leavers": leavers or set(),
    }


# (workers, desired, replicas, kind, version, settings, expected)
CASES = [
    # least running work leaves first: b (0 tasks) and d (1 task) of a Deployment
    pytest.param(
        [W("a", work=5), W("b", work=0), W("c", work=3), W("d", work=1)],
        2,
        4,
        "Deployment",
        478,
        ABORT,
        expect({("b", "start", "DRAINING"), ("d", "start", "DRAINING")}, leavers={"b", "d"}),
        id="deployment-least-work",
    ),
    # a pod that is not running yet has nothing to lose and goes first, with no Trino call
    pytest.param(
        [W("a", work=0), W("p", running=False, ready=False, state=None, work=None)],
        1,
        2,
        "Deployment",
        478,
        ABORT,
        expect({("p", "start", None)}, leavers={"p"}),
        id="deployment-pending-first",
    ),
    # a worker whose task count is unknown is chosen last
    pytest.param(
        [W("a", work=None), W("b", work=7)],
        1,
        2,
        "Deployment",
        478,
        ABORT,
        expect({("b", "start", "DRAINING")}, leavers={"b"}),
        id="deployment-unknown-work-last",
    ),
    # a StatefulSet always loses its highest ordinals, however busy they are
    pytest.param(
        [W("w-0", work=0), W("w-1", work=0), W("w-2", work=5), W("w-3", work=9)],
        2,
        4,
        "StatefulSet",
        478,
        ABORT,
        expect({("w-2", "start", "DRAINING"), ("w-3", "start", "DRAINING")}, leavers={"w-2", "w-3"}),
        id="statefulset-highest-ordinals",
    ),
    # never lower replicas while a chosen leaver still runs work
    pytest.param(
        [W("a", work=2), leaving("b", "DRAINING", work=3, deletion_cost=LEAVER)],
        1,
        2,
        "Deployment",
        478,
        ABORT,
        expect(leavers={"b"}),
        id="deployment-draining-holds-replicas",
    ),
    # every leaver DRAINED (all at the leaver cost, below everyone): replicas drop now
    pytest.param(
        [W("a", work=2), leaving("b", "DRAINED", since=250, deletion_cost=LEAVER)],
        1,
        2,
        "Deployment",
        478,
        ABORT,
        expect(replicas=1, ended={("b", "completed", 0)}),
        id="deployment-drained-lowers",
    ),
    # one leaver DRAINED, another still DRAINING at the same cost: the ReplicaSet could pick either,
    # so the drained one gets a lower cost first and replicas wait for the next pass
    pytest.param(
        [
            W("a"),
            leaving("b", "DRAINED", deletion_cost=LEAVER),
            leaving("c", "DRAINING", work=1, deletion_cost=LEAVER),
        ],
        1,
        3,
        "Deployment",
        478,
        ABORT,
        expect({("b", "annotate", None)}, leavers={"b", "c"}),
        id="deployment-done-cost-first",
    ),
    # ... and with the lower cost in place the drained one is removed alone
    pytest.param(
        [
            W("a"),
            leaving("b", "DRAINED", deletion_cost=DONE),
            leaving("c", "DRAINING", work=1, deletion_cost=LEAVER),
        ],
        1,
        3,
        "Deployment",
        478,
        ABORT,
        expect(replicas=2, ended={("b", "completed", 0)}, leavers={"c"}),
        id="deployment-done-removed-alone",
    ),
    # a not-ready pod with a live Trino ranks before the drained one: lowering would remove it instead
    # (the drained one gets the lowest cost meanwhile)
    pytest.param(
        [W("a", ready=False, work=1), W("c"), leaving("b", "DRAINED", deletion_cost=LEAVER)],
        2,
        3,
        "Deployment",
        478,
        ABORT,
        expect({("b", "annotate", None)}, leavers={"b"}),
        id="deployment-not-ready-pod-blocks",
    ),
    # another pod whose cost is as low as the leaver's blocks as well
    pytest.param(
        [W("a", deletion_cost=-5000), leaving("b", "DRAINED", deletion_cost=LEAVER)],
        1,
        2,
        "Deployment",
        478,
        ABORT,
        expect({("b", "annotate", None)}, leavers={"b"}),
        id="deployment-other-cost-blocks",
    ),
    # the top ordinal DRAINED, the next still busy: the StatefulSet drops by one
    pytest.param(
        [W("w-0"), leaving("w-1", "DRAINING", work=2), leaving("w-2", "DRAINED")],
        1,
        3,
        "StatefulSet",
        478,
        ABORT,
        expect(replicas=2, ended={("w-2", "completed", 0)}, leavers={"w-1"}),
        id="statefulset-top-drained",
    ),
    # the top still busy: a drained pod below it cannot leave first
    pytest.param(
        [W("w-0"), leaving("w-1", "DRAINED"), leaving("w-2", "DRAINING", work=2)],
        1,
        3,
        "StatefulSet",
        478,
        ABORT,
        expect(leavers={"w-1", "w-2"}),
        id="statefulset-top-busy-holds",
    ),
    # load returns mid-drain: both drains are undone, nothing else changes
    pytest.param(
        [W("a"), leaving("b", work=1), leaving("c", "DRAINED")],
        3,
        3,
        "Deployment",
        478,
        ABORT,
        expect(
            {("b", "undrain", "ACTIVE"), ("c", "undrain", "ACTIVE")},
            ended={("b", "aborted", 1), ("c", "aborted", 0)},
        ),
        id="abort-on-returning-load",
    ),
    # load returns partly: the drain with most work left is undone, the drained one goes on; b still
    # shows the leaver cost this pass, so c gets a lower one and replicas drop on the next pass
    pytest.param(
        [W("a"), leaving("b", work=4, deletion_cost=LEAVER), leaving("c", "DRAINED", deletion_cost=LEAVER)],
        2,
        3,
        "Deployment",
        478,
        ABORT,
        expect(
            {("b", "undrain", "ACTIVE"), ("c", "annotate", None)}, ended={("b", "aborted", 4)}, leavers={"c"}
        ),
        id="abort-partly",
    ),
    # load beyond the current size: undo every drain and raise replicas at once
    pytest.param(
        [W("a"), leaving("b", work=1)],
        4,
        2,
        "Deployment",
        478,
        ABORT,
        expect({("b", "undrain", "ACTIVE")}, replicas=4, ended={("b", "aborted", 1)}),
        id="abort-and-scale-up",
    ),
    # StatefulSet: the load returns, its drains are undone too
    pytest.param(
        [W("w-0"), leaving("w-1", work=2)],
        2,
        2,
        "StatefulSet",
        478,
        ABORT,
        expect({("w-1", "undrain", "ACTIVE")}, ended={("w-1", "aborted", 2)}),
        id="statefulset-abort",
    ),
    # plain scale-up with nothing draining
    pytest.param(
        [W("a"), W("b")],
        5,
        2,
        "Deployment",
        478,
        ABORT,
        expect(replicas=5),
        id="scale-up",
    ),
    # a worker that never drains, onTimeout Abort: back to ACTIVE, kept, reported; another one leaves
    pytest.param(
        [W("a"), leaving("b", since=TIMEOUT + 1, work=2, deletion_cost=LEAVER)],
        1,
        2,
        "Deployment",
        478,
        ABORT,
        expect(
            {("b", "undrain", "ACTIVE"), ("a", "start", "DRAINING")},
            ended={("b", "timeout_kept", 2)},
            leavers={"a"},
        ),
        id="timeout-abort",
    ),
    # ... onTimeout Force: removed anyway, with the tasks it still runs
    pytest.param(
        [W("a"), leaving("b", since=TIMEOUT + 1, work=2, deletion_cost=LEAVER)],
        1,
        2,
        "Deployment",
        478,
        FORCE,
        expect(replicas=1, ended={("b", "timeout_removed", 2)}),
        id="timeout-force",
    ),
    # StatefulSet, Force: the top ordinal is removed with its work
    pytest.param(
        [W("w-0"), leaving("w-1", since=TIMEOUT + 1, work=3)],
        1,
        2,
        "StatefulSet",
        478,
        FORCE,
        expect(replicas=1, ended={("w-1", "timeout_removed", 3)}),
        id="statefulset-timeout-force",
    ),
    # a DRAINED leaver still held back by a not-ready pod at its deadline, Abort: back to work, reported
    pytest.param(
        [W("a", ready=False, work=1), W("c"), leaving("b", "DRAINED", since=TIMEOUT + 1, deletion_cost=DONE)],
        2,
        3,
        "Deployment",
        478,
        ABORT,
        expect({("b", "undrain", "ACTIVE")}, ended={("b", "timeout_kept", 0)}),
        id="held-drained-timeout-abort",
    ),
    # ... Force: replicas drop anyway (the drained worker itself was idle, so it completed)
    pytest.param(
        [W("a", ready=False, work=1), W("c"), leaving("b", "DRAINED", since=TIMEOUT + 1, deletion_cost=DONE)],
        2,
        3,
        "Deployment",
        478,
        FORCE,
        expect(replicas=2, ended={("b", "completed", 0)}),
        id="held-drained-timeout-force",
    ),
    # StatefulSet, Abort: a DRAINED pod under a still-busy top reaches its deadline: back to work
    pytest.param(
        [
            W("w-0"),
            leaving("w-1", "DRAINED", since=TIMEOUT + 1),
            leaving("w-2", "DRAINING", since=10, work=2),
        ],
        1,
        3,
        "StatefulSet",
        478,
        ABORT,
        expect({("w-1", "undrain", "ACTIVE")}, ended={("w-1", "timeout_kept", 0)}, leavers={"w-2"}),
        id="statefulset-held-drained-timeout-abort",
    ),
    # a worker kept after a timeout is not chosen again for one timeout: another one leaves
    pytest.param(
        [W("a", work=0, kept_at=NOW - 10), W("b", work=3)],
        1,
        2,
        "Deployment",
        478,
        ABORT,
        expect({("b", "start", "DRAINING")}, leavers={"b"}),
        id="kept-not-chosen-again",
    ),
    # ... and once that timeout has passed it may be chosen again
    pytest.param(
        [W("a", work=0, kept_at=NOW - TIMEOUT - 1), W("b", work=3)],
        1,
        2,
        "Deployment",
        478,
        ABORT,
        expect({("a", "start", "DRAINING")}, leavers={"a"}),
        id="kept-chosen-after-cooldown",
    ),
    # StatefulSet: the kept top ordinal holds the scale-down; pods below it are not drained to idle
    pytest.param(
        [W("w-0"), W("w-1"), W("w-2", kept_at=NOW - 10)],
        1,
        3,
        "StatefulSet",
        478,
        ABORT,
        expect(),
        id="statefulset-kept-top-holds",
    ),
    # Trino < 468: SHUTTING_DOWN is the only way out
    pytest.param(
        [W("a", work=1), W("b", work=0)],
        1,
        2,
        "Deployment",
        460,
        ABORT,
        expect({("b", "start", "SHUTTING_DOWN")}, leavers={"b"}),
        id="legacy-start",
    ),
    # Trino < 468: idle but within the grace period, the coordinator may still schedule on it
    pytest.param(
        [W("a"), leaving("b", "SHUTTING_DOWN", since=GRACE - 1, work=0, deletion_cost=LEAVER)],
        1,
        2,
        "Deployment",
        460,
        ABORT,
        expect(leavers={"b"}),
        id="legacy-idle-within-grace",
    ),
    # Trino < 468: idle after the grace period, lowered before the worker exits
    pytest.param(
        [W("a"), leaving("b", "SHUTTING_DOWN", since=GRACE + 1, work=0, deletion_cost=LEAVER)],
        1,
        2,
        "Deployment",
        460,
        ABORT,
        expect(replicas=1, ended={("b", "completed", 0)}),
        id="legacy-idle-lowers",
    ),
    # Trino < 468: the worker has exited (no answer, pod not ready): it is done
    pytest.param(
        [W("a"), leaving("b", None, since=GRACE + 1, work=None, ready=False, deletion_cost=LEAVER)],
        1,
        2,
        "Deployment",
        460,
        ABORT,
        expect(replicas=1, ended={("b", "completed", 0)}),
        id="legacy-exited-lowers",
    ),
    # Trino < 468 is one-way: load returns, no PUT ACTIVE, new pods instead (desired + leaver)
    pytest.param(
        [W("a"), leaving("b", "SHUTTING_DOWN", work=2, deletion_cost=LEAVER)],
        2,
        2,
        "Deployment",
        460,
        ABORT,
        expect(replicas=3, leavers={"b"}),
        id="legacy-one-way-scales-up",
    ),
    # Trino < 468, Abort at the timeout: it cannot be cancelled; released (annotations only), reported;
    # it still is no capacity, so no other worker is drained in its place
    pytest.param(
        [W("a"), leaving("b", "SHUTTING_DOWN", since=TIMEOUT + 1, work=2, deletion_cost=LEAVER)],
        1,
        2,
        "Deployment",
        460,
        ABORT,
        expect({("b", "release", None)}, ended={("b", "timeout_kept", 2)}),
        id="legacy-timeout-abort",
    ),
    # Trino < 468, Force at the timeout: removed with its tasks
    pytest.param(
        [W("a"), leaving("b", "SHUTTING_DOWN", since=TIMEOUT + 1, work=2, deletion_cost=LEAVER)],
        1,
        2,
        "Deployment",
        460,
        FORCE,
        expect(replicas=1, ended={("b", "timeout_removed", 2)}),
        id="legacy-timeout-force",
    ),
    # StatefulSet, Trino < 468, load returns: the shutting-down pods stay below new top ordinals,
    # each holding one more replica until it has restarted
    pytest.param(
        [
            W("w-0"),
            W("w-1"),
            W("w-2"),
            leaving("w-3", "SHUTTING_DOWN", work=1),
            leaving("w-4", "SHUTTING_DOWN", work=1),
        ],
        5,
        5,
        "StatefulSet",
        460,
        ABORT,
        expect(replicas=7, leavers={"w-3", "w-4"}),
        id="legacy-statefulset-stranded-scale-up",
    ),
    # ... next pass at 7 replicas: the new top pods are not drained while the old ones still shut down
    pytest.param(
        [
            W("w-0"),
            W("w-1"),
            W("w-2"),
            leaving("w-3", "SHUTTING_DOWN", work=1),
            leaving("w-4", "SHUTTING_DOWN", work=1),
            W("w-5"),
            W("w-6"),
        ],
        5,
        7,
        "StatefulSet",
        460,
        ABORT,
        expect(leavers={"w-3", "w-4"}),
        id="legacy-statefulset-stranded-hold",
    ),
    # ... a stranded worker restarted ACTIVE: its annotation is cleared (no PUT) and, one replica fewer
    # being held, the top ordinal starts leaving
    pytest.param(
        [
            W("w-0"),
            W("w-1"),
            W("w-2"),
            leaving("w-3", "ACTIVE", work=0),
            leaving("w-4", "SHUTTING_DOWN", work=1),
            W("w-5"),
            W("w-6"),
        ],
        5,
        7,
        "StatefulSet",
        460,
        ABORT,
        expect(
            {("w-3", "undrain", None), ("w-6", "start", "SHUTTING_DOWN")},
            ended={("w-3", "aborted", 0)},
            leavers={"w-4", "w-6"},
        ),
        id="legacy-statefulset-restarted-released",
    ),
    # restart resumption: an annotated worker found ACTIVE (crash between annotating and asking) is asked again
    pytest.param(
        [W("a"), leaving("b", "ACTIVE", since=50, work=1, deletion_cost=LEAVER)],
        1,
        2,
        "Deployment",
        478,
        ABORT,
        expect({("b", "resume", "DRAINING")}, leavers={"b"}),
        id="resume-asks-again",
    ),
    # restart resumption: the deadline comes from the annotation, not from the controller's memory
    pytest.param(
        [W("a"), leaving("b", "DRAINING", since=TIMEOUT + 5, work=1, deletion_cost=LEAVER)],
        1,
        2,
        "Deployment",
        478,
        FORCE,
        expect(replicas=1, ended={("b", "timeout_removed", 1)}),
        id="resume-deadline-from-annotation",
    ),
    # restart resumption on a StatefulSet: the drained top found on the pods is removed
    pytest.param(
        [W("w-0"), leaving("w-1", "DRAINED", since=400)],
        1,
        2,
        "StatefulSet",
        478,
        ABORT,
        expect(replicas=1, ended={("w-1", "completed", 0)}),
        id="resume-statefulset",
    ),
    # a worker drained by someone else is not touched and not capacity: it holds its replica
    pytest.param(
        [W("a", work=3), W("x", state="DRAINED")],
        1,
        2,
        "Deployment",
        478,
        ABORT,
        expect(),
        id="foreign-drain-left-alone",
    ),
    # ... so with desired at the current size one more pod is added for it
    pytest.param(
        [W("a", work=3), W("x", state="DRAINED")],
        2,
        2,
        "Deployment",
        478,
        ABORT,
        expect(replicas=3),
        id="foreign-drain-adds-a-pod",
    ),
    # StatefulSet: a pod drained by someone else at the top is adopted (annotated, no PUT)
    pytest.param(
        [W("w-0"), W("w-1", state="DRAINED")],
        1,
        2,
        "StatefulSet",
        478,
        ABORT,
        expect({("w-1", "start", None)}, leavers={"w-1"}),
        id="statefulset-adopts-foreign-top",
    ),
    # StatefulSet, Trino < 468, the top times out under Abort: released, and nothing below is drained
    pytest.param(
        [W("w-0"), W("w-1"), leaving("w-2", "SHUTTING_DOWN", since=TIMEOUT + 1, work=1)],
        2,
        3,
        "StatefulSet",
        460,
        ABORT,
        expect({("w-2", "release", None)}, ended={("w-2", "timeout_kept", 1)}),
        id="legacy-statefulset-timeout-abort",
    ),
    # StatefulSet, Trino >= 468, the top times out under Abort: back to ACTIVE and not drained again now
    pytest.param(
        [W("w-0"), W("w-1"), leaving("w-2", "DRAINING", since=TIMEOUT + 1, work=1)],
        2,
        3,
        "StatefulSet",
        478,
        ABORT,
        expect({("w-2", "undrain", "ACTIVE")}, ended={("w-2", "timeout_kept", 1)}),
        id="statefulset-timeout-abort",
    ),
    # replicas with no pod yet are removed first, without any drain
    pytest.param(
        [W("a"), W("b"), W("c")],
        3,
        4,
        "Deployment",
        478,
        ABORT,
        expect(replicas=3),
        id="deployment-missing-pod-first",
    ),
    # scale to zero drains everyone
    pytest.param(
        [W("a", work=1), W("b", work=2)],
        0,
        2,
        "Deployment",
        478,
        ABORT,
        expect({("a", "start", "DRAINING"), ("b", "start", "DRAINING")}, leavers={"a", "b"}),
        id="deployment-to-zero",
    ),
    # a pass that lowers replicas starts no new drain (a fresh leaver's cost could tie with the drained one)
    pytest.param(
        [W("a", work=0), W("c", work=4), leaving("b", "DRAINED", deletion_cost=LEAVER)],
        1,
        3,
        "Deployment",
        478,
        ABORT,
        expect(replicas=2, ended={("b", "completed", 0)}),
        id="deployment-no-start-while-lowering",
    ),
    # a DRAINED worker that still shows tasks (a stale read) is not removed
    pytest.param(
        [W("a"), leaving("b", "DRAINED", work=1, deletion_cost=LEAVER)],
        1,
        2,
        "Deployment",
        478,
        ABORT,
        expect(leavers={"b"}),
        id="drained-with-tasks-waits",
    ),
    # nothing to do
    pytest.param([W("a"), W("b")], 2, 2, "Deployment", 478, ABORT, expect(), id="steady"),
]


@pytest.mark.parametrize(("workers", "desired", "replicas", "kind", "version", "settings", "expected"), CASES)
def test_plan(
    workers: list[WorkerView],
    desired: int,
    replicas: int,
    kind: Any,
    version: int,
    settings: DrainSettings,
    expected: dict[str, Any],
) -> None:
    plan = plan_drain(
        workers, desired=desired, replicas=replicas, kind=kind, version=version, settings=settings, now=NOW
    )
    assert summary(plan) == expected, plan.notes
    # at most one change per pod, so the actuator can carry them out side by side
    assert len({c.pod for c in plan.changes}) == len(plan.changes)


def _plan(workers: list[WorkerView], desired: int, replicas: int, **kw: Any) -> DrainPlan:
    args: dict[str, Any] = {"kind": "Deployment", "version": 478, "settings": ABORT, "now": NOW}
    args.update(kw)
    return plan_drain(workers, desired=desired, replicas=replicas, **args)


def test_start_annotations_persist_the_drain() -> None:
    plan = _plan([W("a", work=2, deletion_cost=-50), W("b", work=0, kept_at=1.0)], 1, 2)
    (change,) = plan.changes
    # the leaver's cost is below every other pod's, and an old "kept" mark is cleared
    assert change.annotations == {
        DRAIN_STARTED_ANNOTATION: format_time(NOW),
        POD_DELETION_COST: str(-50 - 1000),
        DRAIN_KEPT_ANNOTATION: None,
    }


def test_statefulset_writes_no_deletion_cost() -> None:
    plan = _plan([W("w-0"), W("w-1")], 1, 2, kind="StatefulSet")
    (change,) = plan.changes
    assert change.annotations == {DRAIN_STARTED_ANNOTATION: format_time(NOW)}


def test_abort_clears_the_annotations() -> None:
    plan = _plan([W("a"), leaving("b", deletion_cost=LEAVER)], 2, 2)
    (change,) = plan.changes
    assert change.annotations == {DRAIN_STARTED_ANNOTATION: None, POD_DELETION_COST: None}


def test_timeout_abort_marks_the_worker_kept() -> None:
    plan = _plan([W("a"), leaving("b", since=TIMEOUT + 1, deletion_cost=LEAVER)], 1, 2)
    (change,) = [c for c in plan.changes if c.pod == "b"]
    assert change.annotations == {
        DRAIN_STARTED_ANNOTATION: None,
        POD_DELETION_COST: None,
        DRAIN_KEPT_ANNOTATION: format_time(NOW),
    }
    assert any("timed out" in note for note in plan.notes)


def test_done_cost_is_below_the_leaver_cost() -> None:
    plan = _plan(
        [W("a"), leaving("b", "DRAINED", deletion_cost=LEAVER), leaving("c", work=1, deletion_cost=LEAVER)],
        1,
        3,
    )
    (change,) = plan.changes
    assert change.annotations == {POD_DELETION_COST: str(DONE)}


def test_unreadable_start_time_is_rewritten() -> None:
    worker = W("b", state="DRAINING", drain_started=NOW, started_invalid=True, deletion_cost=LEAVER, work=1)
    plan = _plan([W("a"), worker], 1, 2)
    (change,) = plan.changes
    assert change.annotations == {DRAIN_STARTED_ANNOTATION: format_time(NOW)}


def test_costs_never_leave_int32() -> None:
    plan = _plan([W("a", deletion_cost=-(2**31) + 10), W("b", work=0)], 1, 2)
    (change,) = plan.changes
    assert int(str(change.annotations[POD_DELETION_COST])) >= -(2**31)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1700000000.5", 1700000000.5), (None, None), ("soon", None), ("nan", None), ("inf", None)],
)
def test_parse_time(text: str | None, value: float | None) -> None:
    assert parse_time(text) == value


def test_settings_from_policy() -> None:
    drain = Drain(grace_period_seconds=5, timeout_seconds=60, on_timeout="Force")
    assert DrainSettings.of(drain) == DrainSettings(5.0, 60.0, "Force")


def test_statefulset_needs_ordinals() -> None:
    with pytest.raises(ValueError, match="ordinal"):
        _plan([WorkerView("x")], 0, 1, kind="StatefulSet")
