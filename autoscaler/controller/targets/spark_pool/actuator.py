"""The actuator of a ``SparkWorkerPool``: a StatefulSet of Spark standalone workers.

Scaling up writes the replicas at once. Scaling down follows :mod:`autoscaler.controller.targets.spark_pool.plan`:
the leavers (highest ordinals) are decommissioned on the master when the policy asks for it, or watched
until idle otherwise, and replicas drop past those whose workers run no executor any more. Each pass reads
the scale subresource, the pods and the master's ``/json``, asks a decommissioned worker itself what it
still runs when the master cannot tell, then writes in the plan's order: pod annotations, decommission
requests, recycled pods, replicas. A steady pool (no change wanted, nothing of ours on its pods, nothing
to do at the last look) has its master read about once a minute instead of every pass.

A master that refuses decommissioning (HTTP 405) is reported once; this actuator then waits for idleness
instead, until the controller restarts or the policy's target changes.
"""

from __future__ import annotations

import math
from typing import Any

from autoscaler.controller.actuator import (
    DRAIN_STARTED_ANNOTATION,
    ActuatorError,
    ActuatorEvent,
    Outcome,
    TargetState,
    parse_time,
    spread_interval,
)
from autoscaler.controller.kube_ops import KubeOps
from autoscaler.controller.pods import pod_view
from autoscaler.controller.targets.spark_pool.master_api import Decommission, SparkMasterClient
from autoscaler.controller.targets.spark_pool.plan import (
    DECOMMISSIONED,
    DECOMMISSIONED_ANNOTATION,
    MasterWorker,
    PoolPlan,
    PoolPod,
    PoolSettings,
    WorkerLoad,
    WorkersByHost,
    ordinal_of,
    plan_pool,
)
from autoscaler.policy.models import ScalingPolicy

__all__ = ["MASTER_CHECK_SECONDS", "SparkPoolActuator", "pool_pods"]

#: How often (at least; see ``spread_interval``) a steady pool's master is read all the same.
MASTER_CHECK_SECONDS = 60.0


def pool_pods(pods: list[dict[str, Any]], set_name: str) -> list[PoolPod]:
    """The pods (JSON form) of StatefulSet ``set_name`` as the planner sees them."""
    out = []
    for pod in map(pod_view, pods):
        ordinal = ordinal_of(pod.name, set_name)
        if ordinal is None:
            continue
        out.append(
            PoolPod(
                name=pod.name,
                ordinal=ordinal,
                ip=pod.ip,
                ready=pod.ready and not pod.deleting,
                drain_started=parse_time(pod.annotations.get(DRAIN_STARTED_ANNOTATION)),
                decommissioned=parse_time(pod.annotations.get(DECOMMISSIONED_ANNOTATION)),
            )
        )
    return sorted(out, key=lambda p: p.ordinal)


class SparkPoolActuator:
    def __init__(
        self,
        policy: ScalingPolicy,
        ops: KubeOps,
        *,
        master: SparkMasterClient | None = None,
        master_timeout_seconds: float = 5.0,
    ) -> None:
        target = policy.spec.target
        if target.kind != "SparkWorkerPool" or target.workload is None or target.spark is None:
            raise ValueError("SparkPoolActuator needs a SparkWorkerPool policy")
        assert target.spark.master_url is not None  # the model requires it for a SparkWorkerPool
        self.ops = ops
        self.namespace = policy.metadata.namespace or "default"
        self.name = target.workload.name
        self.master = master or SparkMasterClient(
            target.spark.master_url, timeout_seconds=master_timeout_seconds
        )
        self.decommission_refused = False
        self._steady_at: tuple[float, int] | None = None
        self._master_checked_at = -math.inf
        self._quiet = False
        self._master_every = spread_interval(MASTER_CHECK_SECONDS, self.namespace, self.name)
        self.update_policy(policy)

    def update_policy(self, policy: ScalingPolicy) -> None:
        """Take a changed policy's drain and Spark settings (same target) without losing state."""
        spark = policy.spec.target.spark
        assert spark is not None
        self.policy = policy
        self.wants_decommission = spark.decommission
        self.executor_cores = spark.executor_cores

    def settings(self) -> PoolSettings:
        drain = self.policy.spec.drain
        return PoolSettings(
            decommission=self.wants_decommission and not self.decommission_refused,
            timeout_seconds=float(drain.timeout_seconds),
            on_timeout=drain.on_timeout,
            executor_cores=self.executor_cores,
        )

    async def close(self) -> None:
        await self.master.close()

    async def _pods(self, selector: str, *, fresh: bool = False) -> list[PoolPod]:
        # The scale subresource always carries the set's selector; without one, look at the pod names.
        return pool_pods(await self.ops.list_pods_json(self.namespace, selector, fresh=fresh), self.name)

    async def observe(self, now: float) -> TargetState:
        self._steady_at = None
        scale = await self.ops.get_scale("StatefulSet", self.namespace, self.name)
        if scale is None:
            return TargetState(
                0, 0, found=False, reason=f"StatefulSet {self.namespace}/{self.name} not found"
            )
        every = await self._pods(scale.selector)
        pods = [p for p in every if p.ordinal < scale.replicas]
        draining = sum(p.drain_started is not None for p in pods)
        ready = sum(p.ready and p.drain_started is None for p in pods)
        if not any(p.drain_started is not None or p.decommissioned is not None for p in every):
            self._steady_at = (now, scale.replicas)
        return TargetState(scale.replicas, ready, draining, selector=scale.selector)

    async def apply(self, desired: int, now: float, *, dry_run: bool = False) -> Outcome:
        steady, self._steady_at = self._steady_at, None
        # Steady in the pass observe() saw: no change asked, no drain or decommission of ours on any pod.
        # The master is then asked only now and then (a worker decommissioned by someone else is still
        # recycled, a minute or so later), not every pass of every pool.
        if steady == (now, desired) and self._quiet and now - self._master_checked_at < self._master_every:
            return Outcome()
        self._master_checked_at = now
        try:
            outcome = await self._apply(desired, now, dry_run)
        except ActuatorError as exc:
            outcome = Outcome(errors=(exc,), detail=f"nothing changed: {exc}")
        # Skipping is for a pool the last full look found with nothing to do: one with a worker to
        # recycle, or a master that did not answer, is looked at every pass.
        self._quiet = not (outcome.draining or outcome.errors or outcome.written or outcome.events)
        return outcome

    async def _apply(self, desired: int, now: float, dry_run: bool) -> Outcome:
        # About to act: read fresh, not from a watch cache that may trail a burst of pod changes.
        scale = await self.ops.get_scale("StatefulSet", self.namespace, self.name, fresh=True)
        if scale is None:
            raise ActuatorError("get_scale", f"StatefulSet {self.namespace}/{self.name} not found")
        current = scale.replicas
        pods = await self._pods(scale.selector, fresh=True)
        try:
            workers = await self.master.workers()
        except ActuatorError as exc:
            return await self._without_master(current, desired, exc, dry_run)
        errors: list[ActuatorError] = []
        loads = await self._loads(pods, workers, current, errors)
        plan = plan_pool(current, desired, pods, workers, self.settings(), now, loads)
        if dry_run:
            return Outcome(draining=plan.draining, detail="dry run, would do: " + _describe(plan, current))
        return await self._carry_out(plan, current, errors)

    async def _without_master(
        self, current: int, desired: int, error: ActuatorError, dry_run: bool
    ) -> Outcome:
        """Scaling up needs nothing from the master; scaling down waits until it answers again."""
        if desired > current:
            if dry_run:
                return Outcome(errors=(error,), detail=f"dry run, would scale {current} → {desired}")
            await self.ops.set_replicas("StatefulSet", self.namespace, self.name, desired)
            return Outcome(replicas=desired, errors=(error,), written=self._scale_written(desired))
        detail = f"holding {current} replicas: the master is unreadable, so no worker can be checked"
        return Outcome(errors=(error,), detail=detail)

    async def _loads(
        self,
        pods: list[PoolPod],
        workers: tuple[MasterWorker, ...],
        replicas: int,
        errors: list[ActuatorError],
    ) -> dict[str, WorkerLoad]:
        loads: dict[str, WorkerLoad] = {}
        index = WorkersByHost(workers)
        for pod in pods:
            if pod.ordinal >= replicas:
                continue
            worker = index.match(pod)
            if worker is None or worker.state != DECOMMISSIONED or worker.cores_used == 0 or not worker.webui:
                continue
            try:
                loads[worker.worker_id] = await self.master.worker_load(worker.webui)
            except ActuatorError as exc:
                errors.append(exc)
        return loads

    async def _carry_out(self, plan: PoolPlan, current: int, errors: list[ActuatorError]) -> Outcome:
        written: dict[str, object] = {}
        events = list(plan.events)
        notes = list(plan.notes)
        try:
            for pod, changes in plan.annotations.items():
                patch = await self.ops.annotate_pod(self.namespace, pod, dict(changes))
                written[f"pods/{pod}"] = patch
        except ActuatorError as exc:
            # What a later pass must know is written first; without it, start nothing.
            errors.append(exc)
            return Outcome(draining=plan.draining, errors=tuple(errors), detail=plan.detail, written=written)
        for host in plan.decommission:
            try:
                answer = await self.master.decommission(host)
            except ActuatorError as exc:
                errors.append(exc)
                continue
            if answer is Decommission.REFUSED and not self.decommission_refused:
                self.decommission_refused = True
                events.append(
                    ActuatorEvent(
                        "DecommissionRefused",
                        f"the master {self.master.url} answered 405 to POST /workers/kill/: set "
                        "spark.decommission.enabled=true on it (and spark.master.ui.decommission.allow.mode"
                        "=ALLOW when the controller runs on another machine); until then leaving workers "
                        "are removed once idle",
                        "Warning",
                    )
                )
            notes.append(f"decommission of host {host}: {answer.value}")
        for pod in plan.delete:
            try:
                await self.ops.delete_pod(self.namespace, pod)
            except ActuatorError as exc:
                errors.append(exc)
        replicas: int | None = None
        if plan.replicas is not None and plan.replicas != current:
            try:
                await self.ops.set_replicas("StatefulSet", self.namespace, self.name, plan.replicas)
                replicas = plan.replicas
                written.update(self._scale_written(plan.replicas))
            except ActuatorError as exc:
                errors.append(exc)
        scaled_down = replicas is not None and replicas < current
        return Outcome(
            replicas=replicas,
            draining=plan.draining,
            drains_started=plan.drains_started + (plan.removed_new if scaled_down else 0),
            drains_ended=plan.ended + (plan.removed if scaled_down else ()),
            events=tuple(events),
            errors=tuple(errors),
            detail="; ".join(notes),
            written=written,
        )

    def _scale_written(self, replicas: int) -> dict[str, object]:
        return {
            f"statefulsets/{self.name}/scale": {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {"replicas": replicas},
            }
        }


def _describe(plan: PoolPlan, current: int) -> str:
    parts = []
    if plan.annotations:
        parts.append(f"annotate pods {', '.join(plan.annotations)}")
    if plan.decommission:
        parts.append(f"decommission hosts {', '.join(plan.decommission)}")
    if plan.delete:
        parts.append(f"recreate pods {', '.join(plan.delete)}")
    if plan.replicas is not None and plan.replicas != current:
        parts.append(f"scale {current} → {plan.replicas}")
    if plan.notes:
        parts.append(f"({plan.detail})")
    return "; ".join(parts) or "nothing"
