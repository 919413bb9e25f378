"""queuescale's own decision engine as a simulator :class:`~autoscaler.sim.trino.Policy`.

Every loop period the cluster view becomes an :class:`~autoscaler.decision.signals.Observation`: a Trino snapshot
(queued, running, required workers and the completion/start counters the rate estimate needs) and, for
External metrics of the policy, the catalog figure the simulator can stand in for. Other External and
Prometheus metrics have no simulated source and are passed as missing (the engine then never scales down
on their account). Scale-down drains: the controller drains workers before removing them.
"""

from __future__ import annotations

from autoscaler.decision.engine import EngineState, decide
from autoscaler.decision.queueing import GroupLoad
from autoscaler.decision.signals import Observation, TrinoSnapshot, ValueReading
from autoscaler.policy.models import ScalingPolicy
from autoscaler.sim.trino import DRAIN, ClusterConfig, ClusterView, ScaleDownMode
from autoscaler.sim.trino_work import WorkConfig
from core.metric_names import TRINO_NODES, TRINO_QUEUED_QUERIES, TRINO_REQUIRED_WORKERS, TRINO_RUNNING_QUERIES

__all__ = ["LOOP_SECONDS", "QueuescalePolicy"]

LOOP_SECONDS = 15.0


def _catalog_value(name: str, view: ClusterView) -> float | None:
    """The simulated value of a catalog metric, None when the simulator has no such figure."""
    if name == TRINO_QUEUED_QUERIES:
        return float(view.queued)
    if name == TRINO_RUNNING_QUERIES:
        return float(view.running)
    if name == TRINO_REQUIRED_WORKERS:
        return float(view.required_workers)
    if name == TRINO_NODES:
        return float(view.ready_workers)
    return None


class QueuescalePolicy:
    """Drive :func:`autoscaler.decision.engine.decide` with ``policy`` on the simulated cluster.

    ``epoch_start`` is the Unix time of simulated second 0: schedules and forecasts see wall-clock times
    (a trace's own first timestamp keeps its weekdays and hours).
    """

    scale_down: ScaleDownMode = DRAIN
    period_seconds: float = LOOP_SECONDS

    def __init__(
        self, policy: ScalingPolicy, cluster_config: ClusterConfig | WorkConfig, *, epoch_start: float = 0.0
    ) -> None:
        self.policy = policy
        self.cluster_config = cluster_config
        self.epoch_start = float(epoch_start)
        self.state = EngineState()
        self._started = False
        self.name = policy.metadata.name or "queuescale"
        #: Passes where the engine raised and the count was held (see :meth:`desired`).
        self._sizes_on_work = any(
            m.queue_wait is not None and m.queue_wait.sizing == "Work" for m in policy.spec.metrics
        )
        self._value_names: tuple[str | None, ...] = tuple(
            m.external.metric.name if m.external is not None else None for m in policy.spec.metrics
        )

    def _groups(self, view: ClusterView) -> tuple[GroupLoad, ...]:
        """The resource group as the source polls it, for sizing on work: one group with a limit is the
        whole cluster's. Slot sizing is left as it ran before (it was not given the groups)."""
        limits = self.cluster_config.group_limits
        if not self._sizes_on_work or len(limits) != 1 or limits[0] is None:
            return ()
        return (GroupLoad("global", view.queued, view.running, limits[0]),)

    def desired(self, now: float, view: ClusterView) -> int:
        if not self._started:
            self._started = True
            if view.current_workers == 0 and self.policy.spec.min_replicas > 0:
                # The workload's own replica count before the controller's first pass: an HPA-style engine
                # at 0 replicas with minReplicas > 0 is disabled, and a deployed workload is not at 0.
                return self.policy.spec.min_replicas
        values: list[ValueReading | None] = []
        for name in self._value_names:
            value = _catalog_value(name, view) if name is not None else None
            values.append(ValueReading(value) if value is not None else None)
        snapshot = TrinoSnapshot(
            queued=view.queued,
            running=view.running,
            required_workers=view.required_workers,
            completed_total=float(view.completed),
            started_total=float(view.completed + view.running),
            groups=self._groups(view),
            cpu_seconds_total=view.cpu_seconds_total,
        )
        obs = Observation(
            now=self.epoch_start + now,
            current_replicas=view.current_workers,
            values=tuple(values),
            trino=snapshot,
            ready_replicas=view.ready_workers,
        )
        decision, self.state = decide(self.policy, obs, self.state)
        return decision.replicas
