"""The pure parts of the Spark actuators as tables: the pool plan, pod → worker matching, the documents
read from Spark, and the spark-operator next-run patches."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from autoscaler.controller.actuator import DRAIN_STARTED_ANNOTATION
from autoscaler.controller.targets.spark_application.plan import (
    application_patch,
    application_state,
    edit_refusal,
    next_run_executors,
    scheduled_patch,
    sizing_fragment,
)
from autoscaler.controller.targets.spark_pool.plan import (
    DECOMMISSIONED_ANNOTATION,
    MasterWorker,
    PoolPod,
    PoolSettings,
    WorkerLoad,
    match_worker,
    ordinal_of,
    parse_master_workers,
    parse_worker_load,
    plan_pool,
)
from lab.sandbox.spark_http import master_json
from lab.sandbox.spark_model import AppSpec, SparkPool, StageSpec

IDLE = PoolSettings(decommission=False, timeout_seconds=600, on_timeout="Abort")
DECOM = PoolSettings(decommission=True, timeout_seconds=600, on_timeout="Abort")
FORCE = PoolSettings(decommission=False, timeout_seconds=600, on_timeout="Force", executor_cores=2)
NOW = 1000.0
STAMP = "1000.000"
START = {DRAIN_STARTED_ANNOTATION: STAMP}
START_DECOM = {DRAIN_STARTED_ANNOTATION: STAMP, DECOMMISSIONED_ANNOTATION: STAMP}


def pod(i: int, started: float | None = None, ip: str | None = None, decom: float | None = None) -> PoolPod:
    return PoolPod(f"w-{i}", i, ip if ip is not None else f"10.0.0.{i}", True, started, decom)


def worker(i: int, state: str = "ALIVE", used: int = 0, host: str | None = None) -> MasterWorker:
    host = host if host is not None else f"10.0.0.{i}"
    return MasterWorker(f"worker-20260101000000-{host}-{7000 + i}", host, 7000 + i, state, 4, used, "")


@dataclass(frozen=True)
class Case:
    name: str
    replicas: int
    desired: int
    pods: list[PoolPod]
    workers: list[MasterWorker]
    settings: PoolSettings = IDLE
    loads: dict[str, WorkerLoad] = field(default_factory=dict)
    # expected
    new: int | None = None
    patches: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    decommission: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    ended: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    draining: int = 0
    started: int = 0
    removed_new: int = 0
    lost: tuple[int, int] = (0, 0)
    events: tuple[str, ...] = ()


W1 = worker(1).worker_id
CASES = [
    # More workers wanted: the replicas are written at once, nothing else happens.
    Case("up", 2, 4, [pod(0), pod(1)], [worker(0), worker(1)], new=4),
    # Nothing to do at the wanted size.
    Case("hold", 2, 2, [pod(0), pod(1)], [worker(0), worker(1, used=2)]),
    # Without decommission, idle leavers go in the pass that sees them idle (no annotation needed).
    Case(
        "idle-leavers-go-at-once",
        3,
        1,
        [pod(0), pod(1), pod(2)],
        [worker(0), worker(1), worker(2)],
        new=1,
        removed=("completed", "completed"),
        removed_new=2,
    ),
    # The highest ordinal is busy: nothing can go, both leavers start draining.
    Case(
        "busy-top-holds-all",
        3,
        1,
        [pod(0), pod(1), pod(2)],
        [worker(0), worker(1), worker(2, used=1)],
        patches={"w-1": START, "w-2": START},
        draining=2,
        started=2,
    ),
    # A busy leaver below an idle one: the idle top goes, the busy one keeps draining.
    Case(
        "idle-top-goes-first",
        3,
        1,
        [pod(0), pod(1), pod(2)],
        [worker(0), worker(1, used=1), worker(2)],
        new=2,
        patches={"w-1": START},
        removed=("completed",),
        removed_new=1,
        draining=1,
        started=1,
    ),
    # Decommission: an ALIVE leaver is decommissioned first, even when idle (it closes the race).
    Case(
        "decommission-busy",
        2,
        1,
        [pod(0), pod(1)],
        [worker(0), worker(1, used=2)],
        DECOM,
        patches={"w-1": START_DECOM},
        decommission=("10.0.0.1",),
        draining=1,
        started=1,
    ),
    Case(
        "decommission-idle-too",
        2,
        1,
        [pod(0), pod(1)],
        [worker(0), worker(1)],
        DECOM,
        patches={"w-1": START_DECOM},
        decommission=("10.0.0.1",),
        draining=1,
        started=1,
    ),
    # DECOMMISSIONED with no core used: it goes; the drain took since its annotation.
    Case(
        "decommissioned-empty",
        2,
        1,
        [pod(0), pod(1, started=NOW - 30)],
        [worker(0), worker(1, "DECOMMISSIONED")],
        DECOM,
        new=1,
        removed=("completed",),
    ),
    # The master's count of a DECOMMISSIONED worker is stale; the worker itself says it runs nothing.
    Case(
        "stale-master-count",
        2,
        1,
        [pod(0), pod(1, started=NOW - 5)],
        [worker(0), worker(1, "DECOMMISSIONED", used=1)],
        DECOM,
        loads={W1: WorkerLoad(0, 0)},
        new=1,
        removed=("completed",),
    ),
    # ... or that an executor still runs there: wait.
    Case(
        "executor-still-running",
        2,
        1,
        [pod(0), pod(1, started=NOW - 5)],
        [worker(0), worker(1, "DECOMMISSIONED", used=1)],
        DECOM,
        loads={W1: WorkerLoad(1, 1)},
        draining=1,
    ),
    # The worker could not be asked: the master's count stands.
    Case(
        "worker-unasked",
        2,
        1,
        [pod(0), pod(1, started=NOW - 5)],
        [worker(0), worker(1, "DECOMMISSIONED", used=1)],
        DECOM,
        draining=1,
    ),
    # A pod without a registered worker (not started yet) or with a DEAD one runs no executor.
    Case(
        "no-worker", 2, 1, [pod(0), pod(1)], [worker(0)], DECOM, new=1, removed=("completed",), removed_new=1
    ),
    Case(
        "dead-worker",
        2,
        1,
        [pod(0), pod(1)],
        [worker(0), worker(1, "DEAD", used=1)],
        DECOM,
        new=1,
        removed=("completed",),
        removed_new=1,
    ),
    # A master in recovery lists workers UNKNOWN: wait.
    Case(
        "unknown-state",
        2,
        1,
        [pod(0), pod(1)],
        [worker(0), worker(1, "UNKNOWN")],
        DECOM,
        patches={"w-1": START},
        draining=1,
        started=1,
    ),
    # The master decommissions by host: a host shared with a worker that stays is never sent.
    Case(
        "shared-host",
        2,
        1,
        [pod(0, ip="127.0.0.1"), pod(1, ip="127.0.0.1")],
        [
            MasterWorker("worker-a", "127.0.0.1", 7000, "ALIVE", 1, 0, ""),
            MasterWorker("worker-b", "127.0.0.1", 7001, "ALIVE", 1, 1, ""),
        ],
        DECOM,
        patches={"w-1": START},
        draining=1,
        started=1,
        events=("DecommissionUnsafe",),
    ),
    # Force after the timeout: removed anyway, the cores and executors lost reported.
    Case(
        "timeout-force",
        2,
        1,
        [pod(0), pod(1, started=NOW - 601)],
        [worker(0), worker(1, used=4)],
        FORCE,
        new=1,
        removed=("timeout_removed",),
        lost=(4, 2),
        events=("DrainTimeoutForced",),
    ),
    # Abort after the timeout: kept, its drain ended (a later pass may start a new one).
    Case(
        "timeout-abort",
        2,
        1,
        [pod(0), pod(1, started=NOW - 601)],
        [worker(0), worker(1, used=4)],
        patches={"w-1": {DRAIN_STARTED_ANNOTATION: None}},
        ended=("timeout_kept",),
        events=("DrainTimeoutKept",),
    ),
    # A restarted controller keeps the drain's original start (no new annotation).
    Case(
        "resumed-drain",
        2,
        1,
        [pod(0), pod(1, started=NOW - 100)],
        [worker(0), worker(1, used=1)],
        draining=1,
    ),
    # Wanted again before it was decommissioned: the drain is aborted.
    Case(
        "back-up-abort",
        2,
        2,
        [pod(0), pod(1, started=NOW - 10)],
        [worker(0), worker(1, used=1)],
        DECOM,
        patches={"w-1": {DRAIN_STARTED_ANNOTATION: None}},
        ended=("aborted",),
        events=("DrainAborted",),
    ),
    # Wanted again after it was decommissioned: recreated once its executors left ...
    Case(
        "back-up-recycle",
        2,
        2,
        [pod(0), pod(1, started=NOW - 10)],
        [worker(0), worker(1, "DECOMMISSIONED")],
        DECOM,
        delete=("w-1",),
        ended=("aborted",),
        events=("RecyclingWorker",),
    ),
    # ... and not before.
    Case(
        "back-up-recycle-waits",
        2,
        2,
        [pod(0), pod(1, started=NOW - 10)],
        [worker(0), worker(1, "DECOMMISSIONED", used=1)],
        DECOM,
        loads={W1: WorkerLoad(1, 1)},
        draining=1,
    ),
    # Scaling up while recycling: both at once.
    Case(
        "up-and-recycle",
        2,
        3,
        [pod(0), pod(1, started=NOW - 10)],
        [worker(0), worker(1, "DECOMMISSIONED")],
        DECOM,
        new=3,
        delete=("w-1",),
        ended=("aborted",),
        events=("RecyclingWorker",),
    ),
    # A master that forgot the decommission (restarted) lists the worker ALIVE: ask again, keep the mark.
    Case(
        "decommission-again",
        2,
        1,
        [pod(0), pod(1, started=NOW - 10, decom=NOW - 10)],
        [worker(0), worker(1, used=1)],
        DECOM,
        decommission=("10.0.0.1",),
        draining=1,
    ),
    # Wanted again, decommissioned by us, and the master no longer lists its worker: recreate it.
    Case(
        "back-up-decommissioned-unlisted",
        2,
        2,
        [pod(0), pod(1, started=NOW - 10, decom=NOW - 10)],
        [worker(0)],
        DECOM,
        delete=("w-1",),
        ended=("aborted",),
        events=("RecyclingWorker",),
    ),
    # Wanted again and its worker is ALIVE after all: the drain and the mark go.
    Case(
        "back-up-decommission-undone",
        2,
        2,
        [pod(0), pod(1, started=NOW - 10, decom=NOW - 10)],
        [worker(0), worker(1)],
        DECOM,
        patches={"w-1": {DRAIN_STARTED_ANNOTATION: None, DECOMMISSIONED_ANNOTATION: None}},
        ended=("aborted",),
        events=("DrainAborted",),
    ),
    # Abort keeps the mark: the worker stays decommissioned, a later drain only waits for it.
    Case(
        "timeout-abort-decommissioned",
        2,
        1,
        [pod(0), pod(1, started=NOW - 601, decom=NOW - 601)],
        [worker(0), worker(1, "DECOMMISSIONED", used=1)],
        DECOM,
        loads={W1: WorkerLoad(1, 1)},
        patches={"w-1": {DRAIN_STARTED_ANNOTATION: None}},
        ended=("timeout_kept",),
        events=("DrainTimeoutKept",),
    ),
    # A missing pod in the leaving range is no obstacle.
    Case(
        "missing-pod",
        3,
        1,
        [pod(0), pod(2)],
        [worker(0), worker(2)],
        new=1,
        removed=("completed",),
        removed_new=1,
    ),
    # Pods beyond the replicas (terminating from an earlier scale-down) are ignored.
    Case("terminating-ignored", 1, 1, [pod(0), pod(1, started=NOW - 10)], [worker(0), worker(1, used=1)]),
    # Zero: every worker may go once idle.
    Case("to-zero", 1, 0, [pod(0)], [worker(0)], new=0, removed=("completed",), removed_new=1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_pool_plan(case: Case) -> None:
    plan = plan_pool(case.replicas, case.desired, case.pods, case.workers, case.settings, NOW, case.loads)
    assert plan.replicas == case.new
    assert plan.annotations == case.patches
    assert list(plan.annotations) == list(case.patches)  # in ordinal order
    assert plan.decommission == case.decommission
    assert plan.delete == case.delete
    assert tuple(e.outcome for e in plan.ended) == case.ended
    assert tuple(e.outcome for e in plan.removed) == case.removed
    assert plan.draining == case.draining
    assert plan.drains_started == case.started
    assert plan.removed_new == case.removed_new
    assert (plan.lost_cores, plan.lost_executors) == case.lost
    assert tuple(e.reason for e in plan.events) == case.events


def test_drain_seconds_count_from_the_annotation() -> None:
    plan = plan_pool(
        2, 1, [pod(0), pod(1, started=NOW - 30)], [worker(0), worker(1, "DECOMMISSIONED")], DECOM, NOW
    )
    assert [e.seconds for e in plan.removed] == [30.0]
    assert plan.leavers[0].done
    assert plan.leavers[0].why == "decommissioned, no executor left"


MATCH_CASES = [
    # (name, pod, worker hosts and states, expected index or None)
    ("by-ip", pod(1), [("10.0.0.1", "ALIVE")], 0),
    ("by-name", pod(1, ip=""), [("W-1", "ALIVE")], 0),
    ("by-fqdn", pod(1, ip=""), [("w-1.spark-workers.ns.svc.cluster.local", "ALIVE")], 0),
    ("not-a-longer-name", pod(1, ip=""), [("w-10.spark-workers.ns.svc.cluster.local", "ALIVE")], None),
    ("not-another-ip", pod(1), [("10.0.0.11", "ALIVE")], None),
    ("alive-beats-dead-twin", pod(1), [("10.0.0.1", "DEAD"), ("10.0.0.1", "ALIVE")], 1),
    ("decommissioned-beats-dead", pod(1), [("10.0.0.1", "DECOMMISSIONED"), ("10.0.0.1", "DEAD")], 0),
    ("none", pod(1), [], None),
]


@pytest.mark.parametrize(
    ("name", "the_pod", "rows", "expected"), MATCH_CASES, ids=[c[0] for c in MATCH_CASES]
)
def test_match_worker(name: str, the_pod: PoolPod, rows: list[tuple[str, str]], expected: int | None) -> None:
    workers = [MasterWorker(f"worker-{i}", h, 7000 + i, s, 1, 0) for i, (h, s) in enumerate(rows)]
    got = match_worker(the_pod, workers)
    assert got == (workers[expected] if expected is not None else None)


@pytest.mark.parametrize(
    ("pod_name", "expected"),
    [("w-0", 0), ("w-12", 12), ("w-01", None), ("w-", None), ("wx-1", None), ("w-1a", None), ("other", None)],
)
def test_ordinal_of(pod_name: str, expected: int | None) -> None:
    assert ordinal_of(pod_name, "w") == expected


def test_master_document_is_read() -> None:
    pool = SparkPool(decommission_enabled=True)
    pool.add_worker(2, host="10.1.0.1")
    pool.add_worker(2, host="10.1.0.2")
    app = pool.submit(AppSpec("a", executor_cores=1), [[StageSpec(8, 10.0)]])
    pool.decommission_hosts(["10.1.0.2"])
    workers = parse_master_workers(master_json(pool))
    assert [(w.host, w.state, w.cores) for w in workers] == [
        ("10.1.0.1", "ALIVE", 2),
        ("10.1.0.2", "DECOMMISSIONED", 2),
    ]
    assert sum(w.cores_used for w in workers) == len(app.executors)
    assert workers[0].webui == "http://10.1.0.1:8081"


@pytest.mark.parametrize(
    "doc",
    [[], {}, {"workers": {}}, {"workers": [{"id": "w", "host": "h", "port": "7", "state": "ALIVE"}]}],
)
def test_master_document_malformed(doc: object) -> None:
    with pytest.raises(ValueError, match=r"master|field|worker"):
        parse_master_workers(doc)


def test_worker_document() -> None:
    assert parse_worker_load({"coresused": 2, "executors": [{"id": 1}, {"id": 2}]}) == WorkerLoad(2, 2)
    with pytest.raises(ValueError, match="executors"):
        parse_worker_load({"coresused": 0})


# ---------------------------------------------------------------------- spark-operator


def app(state: str | None, spec: dict[str, object] | None = None) -> dict[str, object]:
    obj: dict[str, object] = {"metadata": {"name": "a", "resourceVersion": "42"}, "spec": spec or {}}
    if state is not None:
        obj["status"] = {"applicationState": {"state": state}}
    return obj


EDIT_CASES = [
    # (state, suspend, editable)
    (None, False, True),  # no status: the operator never saw it
    ("", False, True),  # ApplicationStateNew
    ("PENDING_RERUN", False, True),  # about to be resubmitted anyway
    ("SUSPENDED", True, True),  # stays suspended through the invalidation
    ("SUSPENDED", False, False),  # resuming: an edit would restart it
    ("SUBMITTED", False, False),
    ("RUNNING", False, False),
    ("SUCCEEDING", False, False),
    ("FAILING", False, False),
    ("COMPLETED", False, False),  # an edit would rerun it
    ("FAILED", False, False),
    ("SUBMISSION_FAILED", False, False),
    ("INVALIDATING", False, False),
    ("SUSPENDING", True, False),
    ("RESUMING", False, False),
    ("UNKNOWN", False, False),
]


@pytest.mark.parametrize(("state", "suspend", "editable"), EDIT_CASES)
def test_edit_refusal(state: str | None, suspend: bool, editable: bool) -> None:
    obj = app(state, {"suspend": suspend})
    refusal = edit_refusal(obj)
    assert (refusal is None) == editable
    assert application_state(obj) == (state or "")
    if refusal is not None:
        assert "INVALIDATING" in refusal


DA = {"enabled": True}
FRAGMENT_CASES = [
    # (name, spec, executors, fragment)
    ("static-unset", {}, 6, {"executor": {"instances": 6}}),
    ("static-change", {"executor": {"instances": 2, "cores": 2}}, 6, {"executor": {"instances": 6}}),
    ("static-same", {"executor": {"instances": 6}}, 6, None),
    ("static-zero-is-one", {"executor": {"instances": 3}}, 0, {"executor": {"instances": 1}}),
    # Dynamic allocation declared but off: instances size the run.
    (
        "da-disabled",
        {"dynamicAllocation": {"enabled": False, "maxExecutors": 9}},
        4,
        {"executor": {"instances": 4}},
    ),
    (
        "da-unset",
        {"dynamicAllocation": DA},
        5,
        {"dynamicAllocation": {"maxExecutors": 5, "initialExecutors": 5}},
    ),
    (
        "da-min-kept-below",
        {"dynamicAllocation": {**DA, "minExecutors": 1, "maxExecutors": 20}},
        5,
        {"dynamicAllocation": {"maxExecutors": 5, "initialExecutors": 5}},
    ),
    (
        "da-min-lowered",
        {"dynamicAllocation": {**DA, "minExecutors": 8, "initialExecutors": 8, "maxExecutors": 20}},
        5,
        {"dynamicAllocation": {"maxExecutors": 5, "initialExecutors": 5, "minExecutors": 5}},
    ),
    (
        "da-instances-lowered",
        {"executor": {"instances": 10}, "dynamicAllocation": DA},
        5,
        {"dynamicAllocation": {"maxExecutors": 5, "initialExecutors": 5}, "executor": {"instances": 5}},
    ),
    (
        "da-instances-below-kept",
        {"executor": {"instances": 2}, "dynamicAllocation": {**DA, "maxExecutors": 5, "initialExecutors": 5}},
        5,
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "spec", "executors", "fragment"), FRAGMENT_CASES, ids=[c[0] for c in FRAGMENT_CASES]
)
def test_sizing_fragment(name: str, spec: dict[str, object], executors: int, fragment: object) -> None:
    assert sizing_fragment(spec, executors) == fragment


@pytest.mark.parametrize(
    ("spec", "executors"),
    [
        ({}, 2),  # Spark's default spark.executor.instances on Kubernetes
        ({"executor": {"instances": 7}}, 7),
        ({"dynamicAllocation": {**DA, "maxExecutors": 12, "minExecutors": 2}}, 12),
        ({"dynamicAllocation": {**DA, "minExecutors": 2, "initialExecutors": 3}}, 3),
        ({"dynamicAllocation": DA}, 1),
        ({"executor": {"instances": 4}, "dynamicAllocation": {"enabled": False, "maxExecutors": 9}}, 4),
    ],
)
def test_next_run_executors(spec: dict[str, object], executors: int) -> None:
    assert next_run_executors(spec) == executors


def test_patches_carry_the_resource_version() -> None:
    assert application_patch(app(None, {"executor": {"instances": 2}}), 3) == {
        "metadata": {"resourceVersion": "42"},
        "spec": {"executor": {"instances": 3}},
    }
    scheduled = {"metadata": {"resourceVersion": "7"}, "spec": {"template": {"dynamicAllocation": DA}}}
    assert scheduled_patch(scheduled, 4) == {
        "metadata": {"resourceVersion": "7"},
        "spec": {"template": {"dynamicAllocation": {"maxExecutors": 4, "initialExecutors": 4}}},
    }
    assert scheduled_patch({"spec": {"template": {"executor": {"instances": 4}}}}, 4) is None
