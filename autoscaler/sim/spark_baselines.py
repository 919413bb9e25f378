"""The policies queuescale's Spark pool scaling is measured against (:class:`~autoscaler.sim.spark.PoolPolicy`).

They mirror the Trino baselines of :mod:`autoscaler.sim.baselines` on the pool's own figures:

- :class:`HpaCpu` (``hpa-cpu``): the HPA on CPU utilisation, target 50 %, no ``behavior`` (legacy path:
  300 s down-stabilisation, scale-up at most ``max(2×current, 4)``), every 15 s. Utilisation is the cores
  running tasks over the cores of ready workers (idle executors burn no CPU); the Resource-metric formula
  ``ceil(utilisation/target × ready)`` with tolerance 0.1 is the External ``Value`` arithmetic of
  :mod:`autoscaler.hpa`. Removal is abrupt: the StatefulSet deletes its highest pods and their tasks die.
- :class:`HpaQueue` (``hpa-queue``): the HPA on pending tasks (``spark_pending_tasks``), External
  ``AverageValue`` with a per-pod target of one worker's task slots, legacy path, abrupt removal.
- :class:`Keda` (``keda``): a ScaledObject on pending tasks, ``AverageValue`` of one worker's task slots.
  KEDA polls every 30 s (``pollingInterval``), its HPA runs every 15 s on the last polled value (legacy
  path), and KEDA itself takes the pool from 0 to 1 when tasks are pending and back to 0 after
  ``cooldownPeriod`` (300 s) without any. Abrupt removal.
- :class:`Static` (``static``): a fixed size for the peak: the Erlang C task slots that keep ``P(wait)``
  under 5 % at the busiest 15-minute window's offered load (the load on an unbounded pool, see
  :func:`~autoscaler.sim.spark_load.unconstrained_demand`) and the load's mean task time. Never scales.
- :class:`Oracle` (``oracle``): knows every future application. It takes the slots an unbounded pool would
  keep busy second by second and, at a decision time ``t``, asks for enough workers to hold the largest
  such count over ``[t, t + startupSeconds + period]``, so capacity is ready when work arrives and kept
  until a replacement could not be back in time; it pays only the start-up delay. Scale-down
  decommissions: it never kills.
"""

from __future__ import annotations

import math

import numpy as np

from autoscaler.hpa import ExternalTarget, recommend
from autoscaler.queueing import servers_for_wait
from autoscaler.sim.baselines import HPA_PERIOD_SECONDS, HpaBaseline, HpaCpu, KedaScaler
from autoscaler.sim.spark import DECOMMISSION, PoolConfig, PoolPolicy, PoolScaleDown, PoolView
from autoscaler.sim.spark_load import SparkLoad, unconstrained_demand

__all__ = [
    "POOL_BASELINES",
    "HpaCpu",
    "HpaQueue",
    "Keda",
    "Oracle",
    "Static",
    "make_pool_baseline",
    "static_workers",
]

STATIC_WINDOW_SECONDS = 900.0


class HpaQueue(HpaBaseline[PoolView, PoolScaleDown]):
    name = "hpa-queue"

    def __init__(
        self,
        per_pod_target: float = 4.0,
        min_replicas: int = 1,
        max_replicas: int = 100,
        initial_replicas: int | None = None,
    ):
        super().__init__(min_replicas, max_replicas, initial_replicas, scale_down="abrupt")
        self.target = ExternalTarget("AverageValue", per_pod_target, "spark_pending_tasks")

    def _raw(self, view: PoolView) -> int | None:
        value = float(view.pending_tasks)
        return recommend([(self.target, value)], view.current_workers, view.ready_workers).replicas


class Keda(KedaScaler[PoolView, PoolScaleDown]):
    """A ScaledObject on pending tasks, ``AverageValue`` of one worker's task slots."""

    def __init__(
        self,
        per_pod_target: float = 4.0,
        max_replicas: int = 100,
        min_replicas: int = 0,
        polling_interval_s: float = 30.0,
        cooldown_period_s: float = 300.0,
    ):
        super().__init__(
            lambda view: float(view.pending_tasks),
            "spark_pending_tasks",
            per_pod_target,
            max_replicas,
            min_replicas,
            polling_interval_s,
            cooldown_period_s,
            scale_down="abrupt",
        )


def static_workers(load: SparkLoad, config: PoolConfig, window_s: float = STATIC_WINDOW_SECONDS) -> int:
    """Workers that keep ``P(wait) <= 5 %`` through the busiest ``window_s`` of ``load`` (Erlang C)."""
    if load.task_count == 0:
        return 1
    demand = unconstrained_demand(load).astype(np.float64)
    width = max(1, int(window_s))
    sums = np.add.reduceat(demand, np.arange(0, len(demand), width))
    peak_busy = float(sums.max()) / width
    mean_task = float(load.task_seconds.mean())
    slots = servers_for_wait(peak_busy / mean_task, mean_task, 0.0, 0.95)
    return max(1, min(config.max_workers, -(-slots // config.slots_per_worker)))


class Static:
    name = "static"
    scale_down: PoolScaleDown = DECOMMISSION
    period_seconds = 3600.0

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError("a static pool needs at least one worker")
        self.workers = workers

    @classmethod
    def for_load(cls, load: SparkLoad, config: PoolConfig) -> Static:
        return cls(static_workers(load, config))

    def desired(self, now: float, view: PoolView) -> int:
        return self.workers


class Oracle:
    name = "oracle"
    scale_down: PoolScaleDown = DECOMMISSION

    def __init__(self, load: SparkLoad, config: PoolConfig, period_seconds: float = HPA_PERIOD_SECONDS):
        self.period_seconds = period_seconds
        self.slots = config.slots_per_worker
        self.lookahead = config.startup_seconds + period_seconds
        self.max_workers = config.max_workers
        self.busy = unconstrained_demand(load)

    def desired(self, now: float, view: PoolView) -> int:
        lo = int(now)
        hi = math.ceil(now + self.lookahead) + 1
        window = self.busy[lo:hi]
        peak = int(window.max()) if len(window) else 0
        # Spark's ramp and executor start-up run work later than on the unbounded pool; the backlog that
        # exists now is demand too, so capacity never lags behind it.
        peak = max(peak, view.remaining_tasks)
        return min(self.max_workers, -(-peak // self.slots))


POOL_BASELINES = ("hpa-cpu", "hpa-queue", "keda", "static", "oracle")


def make_pool_baseline(name: str, load: SparkLoad, config: PoolConfig) -> PoolPolicy:
    """A fresh baseline by name, sized for ``config`` (max replicas = ``config.max_workers``)."""
    slots = float(config.slots_per_worker)
    if name == "hpa-cpu":
        scale_down: PoolScaleDown = "abrupt"
        return HpaCpu(scale_down, max_replicas=config.max_workers)
    if name == "hpa-queue":
        return HpaQueue(per_pod_target=slots, max_replicas=config.max_workers)
    if name == "keda":
        return Keda(per_pod_target=slots, max_replicas=config.max_workers)
    if name == "static":
        return Static.for_load(load, config)
    if name == "oracle":
        return Oracle(load, config)
    raise ValueError(f"unknown baseline {name!r}; pick from {', '.join(POOL_BASELINES)}")
