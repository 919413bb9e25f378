"""queuescale's own decision engine as a Spark pool policy (:class:`~autoscaler.sim.spark.PoolPolicy`).

Every loop period the pool view becomes an :class:`~autoscaler.decision.signals.Observation`: a Spark snapshot (one
:class:`~autoscaler.decision.spark_sizing.AppDemand` per running application, with the pool's dynamic-allocation
bounds and its next-stage tasks, and the ALIVE workers) and, for External metrics of the policy, the
catalog figure the pool model can stand in for. Other External and Prometheus metrics have no simulated
source and are passed as missing (the engine then never scales down on their account).

Scale-down follows ``spec.target.spark.decommission``: true decommissions workers on the master before
they leave; false has no way to move work off a worker, so the controller only removes workers that hold
no executor (``wait-idle`` in :mod:`autoscaler.sim.spark`).
"""

from __future__ import annotations

from autoscaler.decision.engine import EngineState, decide
from autoscaler.decision.signals import Observation, SparkSnapshot, ValueReading
from autoscaler.decision.spark_sizing import AppDemand
from autoscaler.policy.models import ScalingPolicy
from autoscaler.sim.spark import DECOMMISSION, WAIT_IDLE, PoolConfig, PoolScaleDown, PoolView
from core.metric_names import (
    SPARK_EXECUTORS,
    SPARK_EXECUTORS_NEEDED,
    SPARK_NEXT_WAVE_TASKS,
    SPARK_PENDING_TASKS,
    SPARK_POOL_CORES,
    SPARK_POOL_CORES_USED,
    SPARK_REMAINING_TASKS,
    SPARK_RUNNING_TASKS,
    SPARK_TASK_SECONDS,
    SPARK_TASK_SLOTS,
    SPARK_WAITING_APPS,
)
from core.spark_executors import executors_needed

__all__ = ["LOOP_SECONDS", "SparkQueuescalePolicy", "catalog_value"]

LOOP_SECONDS = 15.0


def catalog_value(name: str, view: PoolView, config: PoolConfig) -> float | None:
    """The simulated pool-wide value of a ``spark_*`` catalog metric; None when the model has no such figure."""
    if name == SPARK_WAITING_APPS:
        return float(view.waiting_apps)
    if name == SPARK_PENDING_TASKS:
        return float(view.pending_tasks)
    if name == SPARK_RUNNING_TASKS:
        return float(view.running_tasks)
    if name == SPARK_REMAINING_TASKS:
        return float(view.remaining_tasks)
    if name == SPARK_NEXT_WAVE_TASKS:
        return float(view.next_wave_tasks)
    if name == SPARK_EXECUTORS:
        return float(view.executors)
    if name == SPARK_TASK_SECONDS:
        # Per application in the catalog; a pool-wide reading averages the applications that have one.
        timed = [a.task_seconds for a in view.apps if a.task_seconds is not None]
        return sum(timed) / len(timed) if timed else None
    if name == SPARK_TASK_SLOTS:
        return float(view.executors * config.slots_per_executor)
    if name == SPARK_POOL_CORES:
        return float(view.ready_cores)
    if name == SPARK_POOL_CORES_USED:
        return float(view.cores_used)
    if name == SPARK_EXECUTORS_NEEDED:
        alloc = config.allocation
        return float(
            sum(
                executors_needed(
                    a.pending + a.running,
                    config.executor_cores,
                    config.task_cpus,
                    1.0,
                    alloc.min_executors,
                    alloc.max_executors,
                )
                for a in view.apps
            )
        )
    return None


class SparkQueuescalePolicy:
    """Drive :func:`autoscaler.decision.engine.decide` with ``policy`` on the simulated pool.

    ``epoch_start`` is the Unix time of simulated second 0: schedules and forecasts see wall-clock times.
    """

    period_seconds: float = LOOP_SECONDS

    def __init__(self, policy: ScalingPolicy, config: PoolConfig, *, epoch_start: float = 0.0) -> None:
        spark = policy.spec.target.spark
        if policy.spec.target.kind != "SparkWorkerPool" or spark is None:
            raise ValueError(f"policy {policy.metadata.name}: not a SparkWorkerPool policy")
        self.policy = policy
        self.config = config
        self.epoch_start = float(epoch_start)
        self.state = EngineState()
        self.name = policy.metadata.name or "queuescale"
        self.scale_down: PoolScaleDown = DECOMMISSION if spark.decommission else WAIT_IDLE
        self._value_names: tuple[str | None, ...] = tuple(
            m.external.metric.name if m.external is not None else None for m in policy.spec.metrics
        )
        self._app_ids: dict[int, str] = {}
        self._started = False

    def _demands(self, view: PoolView) -> tuple[AppDemand, ...]:
        alloc = self.config.allocation
        ids = self._app_ids
        demands: list[AppDemand] = []
        live: dict[int, str] = {}
        for a in view.apps:
            app_id = ids.get(a.app_id) or f"app-{a.app_id}"
            live[a.app_id] = app_id
            demands.append(
                AppDemand(
                    app_id=app_id,
                    remaining_tasks=a.pending + a.running,
                    task_cpus=self.config.task_cpus,
                    min_executors=alloc.min_executors,
                    max_executors=alloc.max_executors,
                    next_wave_tasks=a.next_wave,
                    task_seconds=a.task_seconds,
                )
            )
        self._app_ids = live
        return tuple(demands)

    def desired(self, now: float, view: PoolView) -> int:
        if not self._started:
            # The StatefulSet's own replica count before the controller's first pass.
            self._started = True
            return self.policy.spec.min_replicas
        values: list[ValueReading | None] = []
        for name in self._value_names:
            value = catalog_value(name, view, self.config) if name is not None else None
            values.append(ValueReading(value) if value is not None else None)
        obs = Observation(
            now=self.epoch_start + now,
            current_replicas=view.current_workers,
            values=tuple(values),
            spark=SparkSnapshot(apps=self._demands(view), workers_alive=view.ready_workers),
            ready_replicas=view.ready_workers,
        )
        decision, self.state = decide(self.policy, obs, self.state)
        return decision.replicas
