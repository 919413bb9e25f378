"""The autoscalers queuescale's Spark pool scaling is measured against, each run the way a competent user runs it.

Every HPA and KEDA baseline removes workers with graceful decommission (``spark.decommission.enabled=true``,
what users of the bitnami chart and of apache/spark-kubernetes-operator's ``SparkCluster`` turn on): the
worker's executors take no new task, finish their running ones and exit, and the worker leaves after its
last executor; the pool bills it until then (:mod:`autoscaler.sim.spark`) and nothing is killed. Each
family has one setting a user tunes, swept by ``--sweep`` (:class:`~autoscaler.sim.baselines.Family`):

- ``hpa-cpu``: the HPA on CPU utilisation (``autoscaling/v2`` with no ``behavior``: the legacy path, 300 s
  down-stabilisation, scale-up at most ``max(2×current, 4)``), every 15 s. Utilisation is the cores running
  tasks over the cores of ready workers (idle executors burn no CPU). Setting: the target, 40-80 % (50).
- ``hpa-queue``: ``deploy/examples/hpa/hpa-spark-worker-pool.yaml`` as written: the adapter's
  ``spark_executors_needed`` (summed over the pool's applications, as the HPA sums an External metric's
  items) at an ``AverageValue`` of e executors per worker and ``spark_waiting_apps`` at 1, its ``behavior``
  (scale-down: 300 s window, 1 pod per 60 s; scale-up: the defaults). Setting: e, 1-16 (the example's 4
  is a worker's executors: 4 cores of 1-core executors; above it the pool is smaller than the applications
  ask, which the iso-SLO search found to meet a slow enough level at 8, so the sweep goes on to 16, and
  the search doubles it past 16 while the policy's level is still met).
- ``dynalloc``: Spark's own dynamic allocation as the pool's sizing: every application's executor target
  (``ExecutorAllocationManager.executors.numberTargetExecutors``, exported by the driver's
  PrometheusServlet and summed by prometheus-adapter) over e executors per worker, by an HPA written
  without a ``behavior`` (the legacy path). It differs from ``hpa-queue`` in the signal only while an
  application ramps (the target grows 1, 2, 4, ... per second up to what ``spark_executors_needed``
  reports, then the two are equal), and in its wiring: no ``spark_waiting_apps`` metric and the default
  scale-down (after the 300 s window, down to the recommendation at once, where the example lets one pod go
  a minute). Setting: e, 1-16.
- ``keda``: a ScaledObject (there is no Spark scaler; a metrics-api or prometheus trigger on the adapter)
  on ``spark_executors_needed``, ``AverageValue`` e per worker, ``minReplicaCount`` 0: KEDA polls every
  30 s, takes the pool from 0 to 1 when executors are needed and back to 0 after ``cooldownPeriod``
  (300 s) without; its HPA runs every 15 s on the last polled value (legacy path). Setting: e, 1-16.
- ``static``: a fixed size, never scaled. Default: the Erlang C task slots that keep ``P(wait)`` under 5 % at
  the busiest 15-minute window's offered load (the load on an unbounded pool, see
  :func:`~autoscaler.sim.spark_load.unconstrained_demand`) and the load's mean task time. Setting: workers.

There is no "oracle": :func:`lower_bound_worker_hours` is the bound (every task-second on a slot of a
worker that appears the instant it is needed and is never idle); nothing can cost less.
"""

from __future__ import annotations

import math

import numpy as np

from autoscaler.decision.hpa import ExternalTarget, recommend
from autoscaler.decision.hpa_behavior import Behavior, RatePolicy, ScalingRules
from autoscaler.decision.queueing import servers_for_wait
from autoscaler.sim.baselines import Family, HpaBaseline, HpaCpu, KedaScaler
from autoscaler.sim.spark import DECOMMISSION, PoolConfig, PoolPolicy, PoolScaleDown, PoolView
from autoscaler.sim.spark_engine_policy import catalog_value
from autoscaler.sim.spark_load import SparkLoad, unconstrained_demand
from core.metric_names import SPARK_EXECUTORS_NEEDED, SPARK_WAITING_APPS

__all__ = [
    "EXAMPLE_POOL_HPA_BEHAVIOR",
    "POOL_BASELINES",
    "DynAlloc",
    "HpaCpu",
    "HpaQueue",
    "Keda",
    "Static",
    "executors_needed",
    "executors_targeted",
    "lower_bound_worker_hours",
    "make_pool_baseline",
    "pool_baseline",
    "static_sizes",
    "static_workers",
]

STATIC_WINDOW_SECONDS = 900.0

#: ``deploy/examples/hpa/hpa-spark-worker-pool.yaml``'s ``behavior`` (scale-up left at the defaults).
EXAMPLE_POOL_HPA_BEHAVIOR = Behavior(
    scale_down=ScalingRules(stabilization_window_seconds=300, policies=(RatePolicy("Pods", 1, 60),)),
)


def executors_needed(view: PoolView, config: PoolConfig) -> float:
    """``spark_executors_needed`` summed over the pool's applications, as the adapter computes each one."""
    value = catalog_value(SPARK_EXECUTORS_NEEDED, view, config)
    assert value is not None
    return value


def executors_targeted(view: PoolView) -> float:
    """Every application's ``numberTargetExecutors`` summed."""
    return float(sum(a.target for a in view.apps))


class HpaQueue(HpaBaseline[PoolView, PoolScaleDown]):
    """The example HPA (see the module docstring)."""

    name = "hpa-queue"

    def __init__(
        self,
        config: PoolConfig,
        executors_per_worker: float = 4.0,
        min_replicas: int = 1,
        max_replicas: int = 16,
        *,
        scale_down: PoolScaleDown = DECOMMISSION,
    ):
        super().__init__(
            min_replicas, max_replicas, behavior=EXAMPLE_POOL_HPA_BEHAVIOR, scale_down=scale_down
        )
        self.config = config
        self.targets = (
            ExternalTarget("AverageValue", executors_per_worker, SPARK_EXECUTORS_NEEDED),
            ExternalTarget("AverageValue", 1.0, SPARK_WAITING_APPS),
        )

    def _raw(self, view: PoolView) -> int | None:
        needed, waiting = self.targets
        values = [(needed, executors_needed(view, self.config)), (waiting, float(view.waiting_apps))]
        return recommend(values, view.current_workers, view.ready_workers, behavior=self.behavior).replicas


class DynAlloc(HpaBaseline[PoolView, PoolScaleDown]):
    """The pool sized for the applications' executor targets (see the module docstring)."""

    name = "dynalloc"

    def __init__(
        self,
        executors_per_worker: float = 4.0,
        min_replicas: int = 1,
        max_replicas: int = 16,
        *,
        scale_down: PoolScaleDown = DECOMMISSION,
    ):
        super().__init__(min_replicas, max_replicas, scale_down=scale_down)
        self.target = ExternalTarget("AverageValue", executors_per_worker, "numberTargetExecutors")

    def _raw(self, view: PoolView) -> int | None:
        values = [(self.target, executors_targeted(view))]
        return recommend(values, view.current_workers, view.ready_workers).replicas


class Keda(KedaScaler[PoolView, PoolScaleDown]):
    """A ScaledObject on ``spark_executors_needed``, ``AverageValue`` of e executors per worker."""

    def __init__(
        self,
        config: PoolConfig,
        executors_per_worker: float = 4.0,
        max_replicas: int = 16,
        min_replicas: int = 0,
        polling_interval_s: float = 30.0,
        cooldown_period_s: float = 300.0,
        *,
        scale_down: PoolScaleDown = DECOMMISSION,
    ):
        super().__init__(
            lambda view: executors_needed(view, config),
            SPARK_EXECUTORS_NEEDED,
            executors_per_worker,
            max_replicas,
            min_replicas,
            polling_interval_s,
            cooldown_period_s,
            scale_down=scale_down,
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


def static_sizes(load: SparkLoad, config: PoolConfig) -> tuple[int, tuple[float, ...]]:
    """The default static size and the sizes a sweep tries: from the load's mean busy workers (less can
    never keep up) to twice the default, within ``max_workers``."""
    default = static_workers(load, config)
    mean = float(load.task_seconds.sum()) / max(float(load.duration), 1e-9) / config.slots_per_worker
    low = max(1, min(default, math.floor(mean)))
    high = max(default, min(config.max_workers, max(default + 2, 2 * default)))
    grid = {round(float(x)) for x in np.geomspace(low, max(high, low), 7)} | {default}
    return default, tuple(float(x) for x in sorted(grid))


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


def lower_bound_worker_hours(load: SparkLoad, config: PoolConfig) -> float:
    """Worker-hours no policy can beat: every task-second on a slot of a worker that appears the instant it
    is needed and is never idle (the load's task-seconds over one worker's task slots)."""
    return float(load.task_seconds.sum()) / config.slots_per_worker / 3600.0


POOL_BASELINES = ("hpa-cpu", "hpa-queue", "dynalloc", "keda", "static")

_PER_WORKER_SWEEP = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0, 16.0)


def _double_per_worker(setting: float) -> float | None:
    """Past the sweep: twice the executors per worker, up to 256 (a pool 64 times smaller than asked)."""
    return setting * 2.0 if setting < 256.0 else None


def _toward_full_cpu(setting: float) -> float | None:
    """Past the sweep: half way to a 100 % CPU target (90, 95, 97.5, ...), which no HPA can exceed here."""
    return (setting + 100.0) / 2.0 if setting < 99.0 else None


def pool_baseline(
    name: str, load: SparkLoad, config: PoolConfig, *, scale_down: PoolScaleDown = DECOMMISSION
) -> Family[PoolPolicy]:
    """The baseline family ``name`` for ``load`` on ``config`` (max replicas ``config.max_workers``),
    removing workers by ``scale_down`` (graceful decommission unless told otherwise)."""
    top = config.max_workers
    per_worker = float(config.executors_per_worker)
    if name == "hpa-cpu":
        return Family(
            name,
            "CPU target %",
            50.0,
            (40.0, 50.0, 60.0, 70.0, 80.0),
            "lower",
            False,
            lambda s: HpaCpu(scale_down, s, max_replicas=top),
            _toward_full_cpu,
        )
    if name == "hpa-queue":
        return Family(
            name,
            "executors per worker",
            per_worker,
            _PER_WORKER_SWEEP,
            "lower",
            False,
            lambda s: HpaQueue(config, s, max_replicas=top, scale_down=scale_down),
            _double_per_worker,
        )
    if name == "dynalloc":
        return Family(
            name,
            "executors per worker",
            per_worker,
            _PER_WORKER_SWEEP,
            "lower",
            False,
            lambda s: DynAlloc(s, max_replicas=top, scale_down=scale_down),
            _double_per_worker,
        )
    if name == "keda":
        return Family(
            name,
            "executors per worker",
            per_worker,
            _PER_WORKER_SWEEP,
            "lower",
            False,
            lambda s: Keda(config, s, max_replicas=top, scale_down=scale_down),
            _double_per_worker,
        )
    if name == "static":
        default, sizes = static_sizes(load, config)
        return Family(name, "workers", float(default), sizes, "higher", True, lambda s: Static(int(s)))
    raise ValueError(f"unknown baseline {name!r}; pick from {', '.join(POOL_BASELINES)}")


def make_pool_baseline(
    name: str, load: SparkLoad, config: PoolConfig, *, scale_down: PoolScaleDown = DECOMMISSION
) -> PoolPolicy:
    """A fresh baseline by name at its default setting."""
    return pool_baseline(name, load, config, scale_down=scale_down).make()
