"""The TrinoWorkers actuator against the Kubernetes sandbox (official client over HTTP) and the emulated
Trino workers its pods stand for; every object it writes is checked against Kubernetes 1.33's schemas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import kubernetes_validate
import pytest

from autoscaler.controller.actuator import (
    DRAIN_STARTED_ANNOTATION,
    POD_DELETION_COST,
    Outcome,
)
from autoscaler.controller.kube_ops import KubeOps
from autoscaler.controller.targets.trino_workers.actuator import TrinoWorkersActuator
from autoscaler.controller.targets.trino_workers.plan import DRAIN_KEPT_ANNOTATION
from autoscaler.policy.models import Drain, SecretKeyRef, TrinoTarget, TrinoWorkerTls, WorkloadRef
from lab.sandbox.trino import TrinoAuth
from tests.helpers.trino_kube import NAMESPACE, WORKLOAD, TrinoKubeWorld, trino_on_kube

GRACE = 5
Kind = Literal["Deployment", "StatefulSet"]


def _name(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["name"])


def _notes(pod: dict[str, Any]) -> dict[str, str]:
    return dict(pod["metadata"].get("annotations") or {})


@dataclass
class Run:
    """Passes of one actuator over a world, every write validated against the official schemas."""

    world: TrinoKubeWorld
    actuator: TrinoWorkersActuator
    outcomes: list[Outcome] = field(default_factory=list)

    async def step(self, desired: int, seconds: float = 1.0, *, errors: bool = False) -> Outcome:
        await self.world.advance(seconds)
        return await self.apply(desired, errors=errors)

    async def apply(self, desired: int, *, errors: bool = False) -> Outcome:
        outcome = await self.actuator.apply(desired, self.world.now)
        await self.world.settle()
        for obj in outcome.written.values():
            kubernetes_validate.validate(obj, "1.33", strict=True)
        if not errors:
            assert outcome.errors == (), outcome.errors
        self.outcomes.append(outcome)
        return outcome

    def ended(self) -> list[str]:
        return [e.outcome for o in self.outcomes for e in o.drains_ended]

    def events(self) -> list[tuple[str, str, str]]:
        return [(e.reason, e.type, e.message) for o in self.outcomes for e in o.events]


def _actuator(
    world: TrinoKubeWorld,
    version: int,
    *,
    timeout: int = 120,
    on_timeout: Literal["Abort", "Force"] = "Abort",
    secret: SecretKeyRef | None = None,
    password_file: Path | None = None,
) -> TrinoWorkersActuator:
    worker_tls = None
    if world.trino.tls is not None:
        # Passwords go over HTTPS only; the workers' certificate is checked against this CA.
        world.put_secret("trino-ca", {"ca.crt": world.trino.tls.ca_pem})
        worker_tls = TrinoWorkerTls(ca_secret=SecretKeyRef(name="trino-ca", key="ca.crt"))
    return TrinoWorkersActuator(
        KubeOps(world.kube.api),
        namespace=NAMESPACE,
        workload=WorkloadRef(kind=world.kind, name=WORKLOAD),
        trino=TrinoTarget(
            cluster="sandbox",
            coordinator_url=world.trino.coordinator_url,
            version=version,
            credentials_secret=secret,
            worker_tls=worker_tls,
        ),
        drain=Drain(grace_period_seconds=GRACE, timeout_seconds=timeout, on_timeout=on_timeout),
        password_file=password_file,
    )


@asynccontextmanager
async def running(
    version: int,
    kind: Kind = "Deployment",
    *,
    replicas: int = 3,
    auth: TrinoAuth | None = None,
    **actuator: Any,
) -> AsyncIterator[Run]:
    async with trino_on_kube(version, kind=kind, replicas=replicas, grace_period=GRACE, auth=auth) as world:
        act = _actuator(world, version, **actuator)
        try:
            yield Run(world, act)
        finally:
            await act.close()


def _leaving(world: TrinoKubeWorld, pods: list[dict[str, Any]]) -> list[str]:
    return [_name(p) for p in pods if DRAIN_STARTED_ANNOTATION in _notes(p)]


CASES = [
    pytest.param(478, "Deployment", id="478-deployment"),
    pytest.param(478, "StatefulSet", id="478-statefulset"),
    pytest.param(460, "Deployment", id="460-deployment"),
    pytest.param(460, "StatefulSet", id="460-statefulset"),
]


@pytest.mark.parametrize(("version", "kind"), CASES)
async def test_scale_down_drains_without_killing(version: int, kind: Kind) -> None:
    async with running(version, kind) as run:
        world = run.world
        # long-running queries spread over all three workers (20 worker-seconds on each)
        queries = world.cluster.submit_many("global", 3, 60.0)
        first = await run.step(desired=1)
        assert (first.drains_started, first.replicas, first.draining) == (2, None, 2)
        pods = await world.pods()
        leavers = _leaving(world, pods)
        if kind == "StatefulSet":
            assert leavers == ["trino-worker-1", "trino-worker-2"]  # the highest ordinals
        state = "DRAINING" if version >= 468 else "SHUTTING_DOWN"
        assert {world.state(p) for p in leavers} == {state}

        lowered = None
        for _ in range(40):
            await world.advance(1)
            names = {_name(p) for p in await world.pods()}
            before = {p: (world.state(p), world.cluster.node(p).running_tasks()) for p in names}
            outcome = await run.apply(desired=1)
            if outcome.replicas is not None:
                lowered = outcome
                gone = names - {_name(p) for p in await world.pods()}
                assert gone == set(leavers)
                for pod in gone:
                    # never removed while it ran work: DRAINED, or an idle shutdown within its last grace
                    if version >= 468:
                        assert before[pod] == ("DRAINED", 0)
                    else:
                        assert before[pod] == ("SHUTTING_DOWN", 0)
                break
            assert await world.replicas() == 3
        assert lowered is not None
        assert lowered.replicas == 1
        assert await world.replicas() == 1
        await run.step(desired=1, seconds=30)
        assert world.cluster.killed_queries == 0
        assert all(q.state.value == "FINISHED" for q in queries)
        assert world.exited_early == []  # Trino < 468: lowered before a worker could exit and restart
        assert run.ended() == ["completed", "completed"]
        reasons = [r for r, _, _ in run.events()]
        assert reasons[0] == "DrainStarted"
        assert "ScaledDown" in reasons
        (remaining,) = await world.pods()
        if kind == "StatefulSet":
            assert _name(remaining) == "trino-worker-0"
        assert _notes(remaining).get(DRAIN_STARTED_ANNOTATION) is None


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet"])
async def test_load_returning_mid_drain_aborts_it(kind: Kind) -> None:
    async with running(478, kind) as run:
        world = run.world
        world.cluster.submit_many("global", 3, 60.0)
        await run.step(desired=1)
        await run.step(desired=1, seconds=3)
        leavers = _leaving(world, await world.pods())
        assert len(leavers) == 2
        assert {world.state(p) for p in leavers} == {"DRAINING"}

        back = await run.step(desired=3)
        assert back.replicas is None
        assert [e.outcome for e in back.drains_ended] == ["aborted", "aborted"]
        assert back.draining == 0
        assert ("DrainAborted", "Normal") in {(r, t) for r, t, _ in run.events()}
        pods = await world.pods()
        assert len(pods) == 3
        for pod in pods:
            assert world.state(_name(pod)) == "ACTIVE"
            assert DRAIN_STARTED_ANNOTATION not in _notes(pod)
            assert POD_DELETION_COST not in _notes(pod)
        assert await world.replicas() == 3
        # the undrained workers take new queries again
        fresh = world.cluster.submit("global", 30.0)
        assert {t.node_id for t in fresh.tasks} == {_name(p) for p in pods}
        assert world.cluster.killed_queries == 0


async def test_legacy_load_returning_adds_pods_instead() -> None:
    async with running(460, "Deployment") as run:
        world = run.world
        world.cluster.submit_many("global", 3, 60.0)
        await run.step(desired=2)
        (leaver,) = _leaving(world, await world.pods())
        assert world.state(leaver) == "SHUTTING_DOWN"

        up = await run.step(desired=3)
        # SHUTTING_DOWN cannot be undone: one pod more while the leaver finishes
        assert up.replicas == 4
        assert up.drains_ended == ()
        assert ("ScaledUp", "Normal") in {(r, t) for r, t, _ in run.events()}
        assert world.state(leaver) == "SHUTTING_DOWN"
        assert len(await world.pods()) == 4

        for _ in range(40):
            outcome = await run.step(desired=3)
            if outcome.replicas is not None:
                break
        assert await world.replicas() == 3
        names = {_name(p) for p in await world.pods()}
        assert leaver not in names
        assert len(names) == 3
        assert world.cluster.killed_queries == 0
        assert world.exited_early == []
        assert run.ended() == ["completed"]


@pytest.mark.parametrize("version", [478, 460])
@pytest.mark.parametrize("on_timeout", ["Abort", "Force"])
async def test_worker_that_never_drains_hits_the_timeout(
    version: int, on_timeout: Literal["Abort", "Force"]
) -> None:
    async with running(version, "Deployment", timeout=20, on_timeout=on_timeout) as run:
        world = run.world
        # a query blocked for good keeps a task on every worker, so no drain can finish
        stuck = world.cluster.submit("global", 10.0, blocked=True)
        await run.step(desired=2)
        (leaver,) = _leaving(world, await world.pods())
        for _ in range(18):
            outcome = await run.step(desired=2)
            assert outcome.drains_ended == ()
            assert outcome.replicas is None
        timed_out = await run.step(desired=2, seconds=3)
        (end,) = timed_out.drains_ended
        assert end.seconds >= 20
        (event,) = [e for e in timed_out.events if e.reason == "DrainTimedOut"]
        assert event.type == "Warning"
        assert leaver in event.message
        if on_timeout == "Abort":
            assert end.outcome == "timeout_kept"
            assert timed_out.replicas is None
            pod = next(p for p in await world.pods() if _name(p) == leaver)
            assert DRAIN_KEPT_ANNOTATION in _notes(pod)
            assert DRAIN_STARTED_ANNOTATION not in _notes(pod)
            # Trino >= 468 takes it back; an older worker cannot cancel its shutdown and finishes it
            assert world.state(leaver) == ("ACTIVE" if version >= 468 else "SHUTTING_DOWN")
            assert await world.replicas() == 3
            assert world.cluster.killed_queries == 0
            assert stuck.state.value == "RUNNING"
        else:
            assert end.outcome == "timeout_removed"
            assert timed_out.replicas == 2
            assert "killing 1 task(s)" in event.message
            assert leaver not in {_name(p) for p in await world.pods()}
            assert world.cluster.killed_queries == 1
            assert stuck.killed


async def test_restarted_controller_resumes_the_drain() -> None:
    async with running(478, "Deployment") as run:
        world = run.world
        world.cluster.submit_many("global", 3, 60.0)
        started_at = world.now + 1
        await run.step(desired=2)
        await run.step(desired=2, seconds=5)
        leavers = _leaving(world, await world.pods())
        await run.actuator.close()

        # a new actuator knows nothing but what is on the pods
        fresh = Run(world, _actuator(world, 478))
        try:
            for _ in range(40):
                outcome = await fresh.step(desired=2)
                assert outcome.drains_started == 0
                if outcome.replicas is not None:
                    break
            assert outcome.replicas == 2
            (end,) = outcome.drains_ended
            assert end.outcome == "completed"
            # the drain's duration counts from the annotation, not from the new actuator's start
            assert end.seconds == pytest.approx(world.now - started_at)
            assert set(leavers).isdisjoint(_name(p) for p in await world.pods())
            assert world.cluster.killed_queries == 0
        finally:
            await fresh.actuator.close()


async def test_credentials_from_a_secret() -> None:
    auth = TrinoAuth(mode="password", passwords={"admin": "s3cret"})
    ref = SecretKeyRef(name="trino-admin", key="password")
    async with running(478, "Deployment", auth=auth, secret=ref) as run:
        world = run.world
        # no Secret yet: an error, and nothing is changed
        missing = await run.step(desired=2, errors=True)
        assert [e.operation for e in missing.errors] == ["read_secret"]
        assert (missing.drains_started, missing.replicas, missing.written) == (0, None, {})
        assert _leaving(world, await world.pods()) == []
        # ... but a scale-up needs no Trino call and still happens
        up = await run.step(desired=4, errors=True)
        assert [e.operation for e in up.errors] == ["read_secret"]
        assert up.replicas == 4

        world.put_secret("trino-admin", {"password": "s3cret\n"})
        started = await run.step(desired=3)
        assert started.drains_started == 1
        (leaver,) = _leaving(world, await world.pods())
        assert world.state(leaver) == "DRAINING"


async def test_credentials_from_a_file_and_refusals_reported(tmp_path: Path) -> None:
    auth = TrinoAuth(mode="password", passwords={"admin": "s3cret"})
    secret_file = tmp_path / "password"
    secret_file.write_text("wrong\n")
    async with running(478, "Deployment", auth=auth, password_file=secret_file) as run:
        world = run.world
        refused = await run.step(desired=2, errors=True)
        # the pod is marked first, the PUT is refused and reported; the next pass asks again
        assert [e.operation for e in refused.errors] == ["trino_state"]
        assert "HTTP 401" in str(refused.errors[0])
        assert (refused.drains_started, refused.draining) == (1, 1)
        (leaver,) = _leaving(world, await world.pods())
        assert world.state(leaver) == "ACTIVE"

        secret_file.write_text("s3cret\n")
        again = await run.step(desired=2)
        assert again.drains_started == 0
        assert world.state(leaver) == "DRAINING"


async def test_dry_run_changes_nothing() -> None:
    async with running(478, "Deployment") as run:
        world = run.world
        await world.advance(1)
        outcome = await run.actuator.apply(1, world.now, dry_run=True)
        assert outcome.written == {}
        assert outcome.replicas is None
        assert outcome.detail.startswith("dry run: would start")
        assert "DRAINING" in outcome.detail
        assert _leaving(world, await world.pods()) == []
        assert {world.state(_name(p)) for p in await world.pods()} == {"ACTIVE"}
        up = await run.actuator.apply(5, world.now, dry_run=True)
        assert "write replicas 3 -> 5" in up.detail
        assert await world.replicas() == 3


async def test_scale_up_is_one_write() -> None:
    async with running(478, "StatefulSet", replicas=1) as run:
        world = run.world
        outcome = await run.step(desired=3)
        assert outcome.replicas == 3
        assert list(outcome.written) == ["scale"]
        assert outcome.written["scale"]["spec"] == {"replicas": 3}
        assert [e.reason for e in outcome.events] == ["ScaledUp"]
        assert [_name(p) for p in await world.pods()] == [f"trino-worker-{i}" for i in range(3)]


async def test_observe() -> None:
    async with running(478, "Deployment") as run:
        world = run.world
        seen = await run.actuator.observe(world.now)
        assert (seen.found, seen.replicas, seen.ready, seen.draining) == (True, 3, 3, 0)
        assert seen.selector == "app=trino,component=worker"
        await run.step(desired=2)
        assert (await run.actuator.observe(world.now)).draining == 1

        other = TrinoWorkersActuator(
            KubeOps(world.kube.api),
            namespace=NAMESPACE,
            workload=WorkloadRef(kind="StatefulSet", name="absent"),
            trino=TrinoTarget(cluster="x", coordinator_url=world.trino.coordinator_url, version=478),
            drain=Drain(),
        )
        try:
            missing = await other.observe(world.now)
            assert (missing.found, missing.reason) == (False, f"StatefulSet {NAMESPACE}/absent not found")
            applied = await other.apply(1, world.now)
            assert "not found" in applied.detail
            assert applied.written == {}
        finally:
            await other.close()
