"""The Spark pool actuator against the emulated standalone master and the Kubernetes API sandbox.

The controller's pass runs for real (the adapter's Spark source over HTTP, the sample cache, observe,
the engine, the actuator); the emulated pool moves in model time between passes, and the StatefulSet's
pods add and remove emulated workers through the sandbox's pod hooks. Every object written is checked
against the official Kubernetes schemas.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import kubernetes_validate

from adapter.sources.spark import SparkSource
from autoscaler.controller.actuator import DRAIN_STARTED_ANNOTATION
from autoscaler.controller.targets.spark_pool.actuator import MASTER_CHECK_SECONDS, SparkPoolActuator
from autoscaler.controller.targets.spark_pool.master_api import SparkMasterClient
from lab.sandbox.kube import KubeSandbox
from lab.sandbox.kube_types import PODS
from lab.sandbox.spark_model import AppSpec, DynamicAllocation, SparkPool, StageSpec
from tests.helpers.spark import settings
from tests.helpers.spark_pool import (
    K8S_VERSION,
    NAMESPACE,
    SET,
    EmulatedWorld,
    Pipeline,
    kube_world,
    pool_policy,
    validate_written,
)

START = 1000.0


@dataclass
class Run:
    world: EmulatedWorld
    sandbox: KubeSandbox
    pipeline: Pipeline
    now: float = START

    @property
    def pool(self) -> SparkPool:
        return self.world.pool

    async def step(self, seconds: float = 1.0) -> None:
        self.now += seconds
        await self.world.advance(self.now)
        done = await self.pipeline.step(self.now)
        validate_written(done.outcome.written)
        await self.sandbox.settle_hooks()

    async def until(self, check: Callable[[], bool], steps: int = 200) -> None:
        for _ in range(steps):
            await self.step()
            if check():
                return
        raise AssertionError(f"not reached in {steps} passes: {self.pipeline.passes[-1]}")

    def replicas(self) -> int:
        obj = self.sandbox.get_object("apps", "v1", "statefulsets", NAMESPACE, SET)
        assert obj is not None
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        return int(obj["spec"]["replicas"])

    def annotations(self, pod: str) -> dict[str, str]:
        obj = self.sandbox.store.get(PODS.key, NAMESPACE, pod)
        assert obj is not None
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        return dict(obj["metadata"].get("annotations") or {})

    def outcomes(self, field: str) -> list[str]:
        return [e.outcome for p in self.pipeline.passes for e in getattr(p.outcome, field)]

    def events(self) -> list[str]:
        return [e.reason for p in self.pipeline.passes for e in p.outcome.events]


@contextlib.asynccontextmanager
async def world(
    *,
    decommission_enabled: bool,
    decommission: bool,
    timeout: int = 600,
    on_timeout: str = "Abort",
    replicas: int = 1,
    max_replicas: int = 2,
    backlog_seconds: int | None = None,
) -> AsyncIterator[Run]:
    pool = SparkPool(now=START, decommission_enabled=decommission_enabled)
    async with EmulatedWorld(pool) as emulated:
        policy = pool_policy(
            master_url=emulated.master_url,
            decommission=decommission,
            timeout_seconds=timeout,
            on_timeout=on_timeout,
            max_replicas=max_replicas,
            backlog_seconds=backlog_seconds,
        )
        async with kube_world(replicas, emulated.on_added, emulated.on_removed) as (sandbox, ops):
            source = SparkSource(settings("etl", master=emulated.spark.master_url, reverse_proxy=True))
            master = SparkMasterClient(emulated.master_url, timeout_seconds=2.0)
            actuator = SparkPoolActuator(policy, ops, master=master)
            try:
                yield Run(emulated, sandbox, Pipeline(policy, source, actuator))
            finally:
                await actuator.close()
                await source.close()


def submit_backlog(pool: SparkPool, tasks: int, task_seconds: float) -> str:
    """An application with dynamic allocation (idle executors go after 5 s) and one stage of backlog."""
    spec = AppSpec(
        "etl",
        executor_cores=1,
        dynamic_allocation=DynamicAllocation(min_executors=0, executor_idle_timeout_seconds=5),
    )
    return pool.submit(spec, [[StageSpec(tasks, task_seconds)]]).app_id


def finished(pool: SparkPool, app_id: str) -> bool:
    return pool.app(app_id).jobs[0].status == "SUCCEEDED"


async def test_decommission_path_follows_the_backlog() -> None:
    async with world(decommission_enabled=True, decommission=True) as run:
        app_id = submit_backlog(run.pool, tasks=8, task_seconds=10.0)
        await run.until(lambda: run.replicas() == 1 and bool(run.world.removals))
        # Up on the backlog, down once it drained.
        assert run.pipeline.written_replicas() == [2, 1]
        leaver = run.world.removals[0]
        assert leaver.pod == f"{SET}-1"
        assert run.world.decommission_requests == [leaver.host]
        # Its executors had left before the pod went (the emulated master drops a drained worker).
        assert leaver.executors == 0
        assert leaver.state == "gone"
        # The decision to leave came while tasks still ran: the worker drained first.
        draining = [p for p in run.pipeline.passes if p.outcome.draining]
        assert draining
        assert all(p.decision.replicas == 1 for p in draining)
        assert run.outcomes("drains_ended") == ["completed"]
        assert sum(p.outcome.drains_started for p in run.pipeline.passes) == 1
        await run.until(lambda: finished(run.pool, app_id))
        assert sum(s.failed for s in run.pool.app(app_id).stages) == 0
        assert DRAIN_STARTED_ANNOTATION not in run.annotations(f"{SET}-0")


async def test_sized_on_the_work_the_pool_starts_no_worker_the_backlog_does_not_need() -> None:
    # A stage of 2 tasks of 1 s, then one of 40. Spark's rule gives each of the 40 a slot; on the work, the 40 core-s are done by the ready workers well within the 60 s start-up of a
    # new one (the run time measured on the first stage stands in until the second completes a task).
    peaks: dict[int | None, int] = {}
    for backlog in (None, 120):
        async with world(
            decommission_enabled=True, decommission=True, max_replicas=8, backlog_seconds=backlog
        ) as run:
            spec = AppSpec(
                "etl",
                executor_cores=1,
                dynamic_allocation=DynamicAllocation(min_executors=0, executor_idle_timeout_seconds=5),
            )
            app_id = run.pool.submit(spec, [[StageSpec(2, 1.0), StageSpec(40, 1.0)]]).app_id
            await run.until(lambda app_id=app_id: finished(run.pool, app_id))
            assert sum(s.failed for s in run.pool.app(app_id).stages) == 0
            # The pool starts with one worker: no write means it never grew.
            peaks[backlog] = max(run.pipeline.written_replicas(), default=1)
            sized = [p.decision.proposals[0] for p in run.pipeline.passes]
            on_work = [p for p in sized if "on the work" in p.reason]
            if backlog is None:
                assert not on_work
            else:
                assert on_work, [p.reason for p in sized]
                assert "40 core-s of tasks waiting" in on_work[0].reason
                # Fewer than a slot per task, never fewer than the workers in place.
                assert all(p.replicas is not None and p.replicas < p.value for p in on_work)
    # Spark's rule: up by the scale-up behaviour's 4 pods at once (the stage ends before the next step).
    assert peaks[None] == 5
    # On the work: the one ready worker does the 40 core-s within any new worker's start-up.
    assert peaks[120] == 1


async def test_refused_decommission_falls_back_to_idle_workers() -> None:
    async with world(decommission_enabled=False, decommission=True) as run:
        app_id = submit_backlog(run.pool, tasks=8, task_seconds=10.0)
        await run.until(lambda: run.replicas() == 1 and bool(run.world.removals))
        assert run.pipeline.written_replicas() == [2, 1]
        # The master answered 405 once; the actuator said so once and then waited for idleness.
        assert run.world.decommission_requests == [run.world.removals[0].host]
        assert run.events().count("DecommissionRefused") == 1
        leaver = run.world.removals[0]
        assert leaver.state == "ALIVE"
        assert leaver.executors == 0
        # It waited while the worker was busy: passes with a leaver draining precede the scale-down.
        assert any(p.outcome.draining for p in run.pipeline.passes)
        assert run.outcomes("drains_ended") == ["completed"]
        await run.until(lambda: finished(run.pool, app_id))
        assert sum(s.failed for s in run.pool.app(app_id).stages) == 0


async def busy_pair(run: Run) -> str:
    """Both workers of a 2-replica pool busy with one long task each."""
    app_id = submit_backlog(run.pool, tasks=2, task_seconds=600.0)
    run.now += 1
    await run.world.advance(run.now)
    assert [w.cores_used for w in run.pool.workers] == [1, 1]
    return app_id


async def test_timeout_force_removes_the_busy_worker_and_reports_the_loss() -> None:
    async with world(
        decommission_enabled=False, decommission=False, timeout=5, on_timeout="Force", replicas=2
    ) as run:
        app_id = await busy_pair(run)
        actuator = run.pipeline.actuator
        first = await actuator.apply(1, run.now)
        validate_written(first.written)
        assert (first.replicas, first.draining, first.drains_started) == (None, 1, 1)
        assert DRAIN_STARTED_ANNOTATION in run.annotations(f"{SET}-1")
        # A restart reads the start back from the pod: a new actuator keeps the original deadline.
        again = SparkPoolActuator(run.pipeline.policy, actuator.ops, master=actuator.master)
        still = await again.apply(1, run.now + 4)
        assert (still.replicas, still.drains_started) == (None, 0)
        forced = await again.apply(1, run.now + 6)
        await run.sandbox.settle_hooks()
        assert forced.replicas == 1
        assert [(e.outcome, e.seconds) for e in forced.drains_ended] == [("timeout_removed", 6.0)]
        assert [e.reason for e in forced.events] == ["DrainTimeoutForced"]
        assert "killing 1 executor(s) on 1 core(s)" in forced.events[0].message
        assert run.replicas() == 1
        assert [r.executors for r in run.world.removals] == [1]
        assert sum(s.failed for s in run.pool.app(app_id).stages) == 1


async def test_timeout_abort_keeps_the_busy_worker() -> None:
    async with world(decommission_enabled=False, decommission=False, timeout=5, replicas=2) as run:
        await busy_pair(run)
        actuator = run.pipeline.actuator
        await actuator.apply(1, run.now)
        kept = await actuator.apply(1, run.now + 6)
        validate_written(kept.written)
        assert kept.replicas is None
        assert [e.outcome for e in kept.drains_ended] == ["timeout_kept"]
        assert [e.reason for e in kept.events] == ["DrainTimeoutKept"]
        assert run.replicas() == 2
        assert DRAIN_STARTED_ANNOTATION not in run.annotations(f"{SET}-1")
        assert run.world.removals == []


async def test_dry_run_changes_nothing() -> None:
    async with world(decommission_enabled=True, decommission=True, replicas=2) as run:
        await busy_pair(run)
        before = [run.annotations(f"{SET}-{i}") for i in (0, 1)]
        outcome = await run.pipeline.actuator.apply(1, run.now, dry_run=True)
        assert outcome.replicas is None
        assert outcome.written == {}
        assert "decommission hosts" in outcome.detail
        assert [run.annotations(f"{SET}-{i}") for i in (0, 1)] == before
        assert run.replicas() == 2
        assert run.world.decommission_requests == []


async def test_decommissioned_worker_wanted_again_is_recreated() -> None:
    async with world(decommission_enabled=True, decommission=True, replicas=2) as run:
        app_id = await busy_pair(run)
        actuator = run.pipeline.actuator
        await actuator.apply(1, run.now)
        assert run.pool.workers[1].state == "DECOMMISSIONED"
        # Load comes back before it drained: it cannot take executors again, so it waits ...
        back = await actuator.apply(2, run.now + 1)
        assert (back.replicas, back.draining) == (None, 1)
        # ... and once its task is done, its pod is deleted and the StatefulSet starts a fresh worker.
        run.now += 601
        await run.world.advance(run.now)
        recycled = await actuator.apply(2, run.now)
        await run.sandbox.settle_hooks()
        assert [e.reason for e in recycled.events] == ["RecyclingWorker"]
        assert [e.outcome for e in recycled.drains_ended] == ["aborted"]
        assert run.replicas() == 2
        assert [(r.pod, r.executors) for r in run.world.removals] == [(f"{SET}-1", 0)]
        assert sum(w.state == "ALIVE" for w in run.pool.workers) == 2
        assert run.annotations(f"{SET}-1") == {}
        assert sum(s.failed for s in run.pool.app(app_id).stages) == 0


async def test_master_unreachable_still_scales_up() -> None:
    async with world(decommission_enabled=True, decommission=True) as run:
        actuator = SparkPoolActuator(
            run.pipeline.policy,
            run.pipeline.actuator.ops,
            master=SparkMasterClient("http://127.0.0.1:9", timeout_seconds=1.0),
        )
        try:
            up = await actuator.apply(2, run.now)
            down = await actuator.apply(1, run.now)
        finally:
            await actuator.close()
        assert up.replicas == 2
        assert [e.operation for e in up.errors] == ["spark_master"]
        assert down.replicas is None
        assert "holding 2 replicas" in down.detail
        assert run.replicas() == 2


async def test_a_steady_pool_asks_its_master_only_now_and_then() -> None:
    async with world(decommission_enabled=True, decommission=True, replicas=2) as run:
        actuator = run.pipeline.actuator
        await busy_pair(run)
        start = run.now

        async def steady_pass(at: float) -> int:
            assert (await actuator.observe(start + at)).replicas == 2
            outcome = await actuator.apply(2, start + at)
            assert outcome.replicas is None
            return outcome.draining

        assert await steady_pass(0) == 0
        assert run.world.master_reads == 1
        # A busy worker decommissioned by someone else (the pod's preStop hook, an operator by hand) ...
        assert run.pool.decommission_hosts([run.pool.workers[1].host]) == 1
        # ... is not seen by the steady passes that follow: they ask no master ...
        assert [await steady_pass(at) for at in (15, 30, 45)] == [0, 0, 0]
        assert run.world.master_reads == 1
        # ... but a pass that wants a change always does,
        await actuator.observe(start + 50)
        assert (await actuator.apply(3, start + 50, dry_run=True)).draining == 1
        assert run.world.master_reads == 2
        # a steady pass asks again within a minute and a half, and keeps asking every pass while the
        # worker waits to be recycled.
        assert await steady_pass(50 + MASTER_CHECK_SECONDS * 1.5) == 1
        assert await steady_pass(65 + MASTER_CHECK_SECONDS * 1.5) == 1
        assert run.world.master_reads == 4
