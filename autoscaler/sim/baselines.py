"""The policies queuescale is measured against, each a :class:`~autoscaler.sim.trino.Policy`.

- :class:`HpaCpu` (``hpa-cpu``): the HPA on CPU utilisation, target 50 %, no ``behavior`` (legacy path:
  300 s down-stabilisation, scale-up at most ``max(2×current, 4)``), every 15 s. Utilisation is the busy
  slots over the slots of ready workers; the Resource-metric formula ``ceil(utilisation/target × ready)``
  with tolerance 0.1 is the External ``Value`` arithmetic of :mod:`autoscaler.hpa`, which does the maths.
  Removal is abrupt: the HPA deletes pods and their queries die (trino #22483).
- :class:`HpaQueue` (``hpa-queue``): the HPA on queued + running queries, External ``AverageValue`` with a
  per-pod target (default the slots per worker), legacy path, abrupt removal.
- :class:`Keda` (``keda``): the Trino chart's KEDA example. KEDA polls the trigger every 30 s
  (``pollingInterval``); the HPA it creates (every 15 s, legacy path) sees the last polled value of the
  required workers as an ``AverageValue`` of 1 per pod. KEDA itself takes the target from 0 to 1 when the
  value is above 0 and back to 0 after ``cooldownPeriod`` (300 s) without activity. Abrupt removal.
- :class:`Static` (``static``): a fixed size from the load: the Erlang C slots that keep ``P(wait)`` under
  5 % at the busiest 15-minute window's arrival rate and the load's mean service time. Never scales.
- :class:`Oracle` (``oracle``): knows every future arrival and service time. It computes, at 1 s
  resolution, how many queries would be running if each started on arrival; at a decision time ``t`` it asks
  for enough workers to hold the largest such count over ``[t, t + startupSeconds + period]`` (what a worker
  requested now or at the next decision can cover), so capacity is ready when work arrives and is kept
  until the last moment a replacement could not be back in time. Scale-down drains: it never kills.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Generic, Literal, Protocol, TypeVar

import numpy as np

from autoscaler.hpa import ExternalTarget, HpaState, recommend, step
from autoscaler.queueing import servers_for_wait
from autoscaler.sim.load import IntArray, Load
from autoscaler.sim.trino import DRAIN, ClusterConfig, ClusterView, Policy, ScaleDownMode

__all__ = [
    "BASELINES",
    "HpaCpu",
    "HpaQueue",
    "Keda",
    "KedaScaler",
    "Oracle",
    "Static",
    "WorkerView",
    "make_baseline",
]

HPA_PERIOD_SECONDS = 15.0


class WorkerView(Protocol):
    """What the HPA baselines read of any simulated target (a Trino cluster's or a Spark pool's view)."""

    @property
    def current_workers(self) -> int: ...

    @property
    def ready_workers(self) -> int: ...

    @property
    def busy_fraction(self) -> float: ...


V = TypeVar("V", bound=WorkerView)


class HpaBaseline(Generic[V]):
    """The shared part of the HPA baselines: one legacy-path controller pass per period."""

    name = "hpa"
    scale_down: Literal["abrupt"] = "abrupt"
    period_seconds = HPA_PERIOD_SECONDS

    def __init__(self, min_replicas: int = 1, max_replicas: int = 100, initial_replicas: int | None = None):
        if not 1 <= min_replicas <= max_replicas:
            raise ValueError("need 1 <= min_replicas <= max_replicas")
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.initial_replicas = min_replicas if initial_replicas is None else initial_replicas
        self.state = HpaState()
        self.started = False

    def _raw(self, view: V) -> int | None:
        raise NotImplementedError

    def desired(self, now: float, view: V) -> int:
        if not self.started:
            # The workload's own replica count before the HPA's first pass.
            self.started = True
            return self.initial_replicas
        replicas, self.state, _ = step(
            self.state, now, view.current_workers, self._raw(view), self.min_replicas, self.max_replicas, None
        )
        return replicas


class HpaCpu(HpaBaseline[WorkerView]):
    name = "hpa-cpu"

    def __init__(
        self,
        target_percent: float = 50.0,
        min_replicas: int = 1,
        max_replicas: int = 100,
        initial_replicas: int | None = None,
    ):
        super().__init__(min_replicas, max_replicas, initial_replicas)
        self.target = ExternalTarget("Value", target_percent, "cpu utilisation %")

    def _raw(self, view: WorkerView) -> int | None:
        if view.ready_workers == 0:
            return None  # no pod reports a metric: the controller cannot compute anything
        usage = view.busy_fraction * 100.0
        return recommend([(self.target, usage)], view.current_workers, view.ready_workers).replicas


class HpaQueue(HpaBaseline[ClusterView]):
    name = "hpa-queue"

    def __init__(
        self,
        per_pod_target: float = 4.0,
        min_replicas: int = 1,
        max_replicas: int = 100,
        initial_replicas: int | None = None,
    ):
        super().__init__(min_replicas, max_replicas, initial_replicas)
        self.target = ExternalTarget("AverageValue", per_pod_target, "queued+running")

    def _raw(self, view: ClusterView) -> int | None:
        value = float(view.queued + view.running)
        return recommend([(self.target, value)], view.current_workers, view.ready_workers).replicas


class KedaScaler(Generic[V]):
    """A ScaledObject: KEDA polls ``metric`` every ``polling_interval_s``, its HPA (every 15 s, legacy path)
    scales on the last polled value as an ``AverageValue`` of ``per_pod_target``, and KEDA itself takes the
    target from 0 to 1 on activity and back to 0 after ``cooldown_period_s`` without any."""

    name = "keda"
    scale_down: Literal["abrupt"] = "abrupt"
    period_seconds = HPA_PERIOD_SECONDS

    def __init__(
        self,
        metric: Callable[[V], float],
        metric_name: str,
        per_pod_target: float,
        max_replicas: int = 100,
        min_replicas: int = 0,
        polling_interval_s: float = 30.0,
        cooldown_period_s: float = 300.0,
    ):
        self.read = metric
        self.max_replicas = max_replicas
        self.min_replicas = min_replicas
        self.polling_interval_s = polling_interval_s
        self.cooldown_period_s = cooldown_period_s
        self.target = ExternalTarget("AverageValue", per_pod_target, metric_name)
        self.state = HpaState()
        self.metric = 0.0
        self.last_poll = -math.inf
        self.last_active = -math.inf

    def desired(self, now: float, view: V) -> int:
        if now - self.last_poll >= self.polling_interval_s - 1e-9:
            self.last_poll = now
            self.metric = float(self.read(view))
            if self.metric > 0:
                self.last_active = now
        current = view.current_workers
        if current == 0:
            return 1 if self.metric > 0 else self.min_replicas
        if self.min_replicas == 0 and self.metric <= 0 and now - self.last_active >= self.cooldown_period_s:
            return 0
        raw = recommend([(self.target, self.metric)], current, view.ready_workers).replicas
        replicas, self.state, _ = step(
            self.state, now, current, raw, max(1, self.min_replicas), self.max_replicas, None
        )
        return replicas


class Keda(KedaScaler[ClusterView]):
    """The Trino chart's KEDA example: required workers, 1 per pod."""

    def __init__(
        self,
        max_replicas: int = 100,
        min_replicas: int = 0,
        polling_interval_s: float = 30.0,
        cooldown_period_s: float = 300.0,
    ):
        super().__init__(
            lambda view: float(view.required_workers),
            "required workers",
            1.0,
            max_replicas,
            min_replicas,
            polling_interval_s,
            cooldown_period_s,
        )


def full_speed_queries(config: ClusterConfig) -> int:
    """Queries one worker runs without slowing any of them: its slots, or fewer when it has fewer cores
    (more queries than cores share the CPU and each runs slower, which a zero-wait sizing must avoid)."""
    return max(1, min(config.slots_per_worker, math.floor(config.cores)))


def static_size(load: Load, config: ClusterConfig, window_s: float = 900.0) -> int:
    """Workers that keep ``P(wait) <= 5 %`` through the busiest ``window_s`` of ``load`` (Erlang C)."""
    if load.count == 0:
        return 1
    bins = np.floor(load.arrivals / window_s).astype(np.int64)
    peak_rate = float(np.bincount(bins).max()) / window_s
    mean_service = float(load.service.mean())
    slots = servers_for_wait(peak_rate, mean_service, 0.0, 0.95)
    return max(1, min(config.max_workers, -(-slots // full_speed_queries(config))))


class Static:
    name = "static"
    scale_down: ScaleDownMode = DRAIN

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError("a static cluster needs at least one worker")
        self.workers = workers
        self.period_seconds = 3600.0

    @classmethod
    def for_load(cls, load: Load, config: ClusterConfig) -> Static:
        return cls(static_size(load, config))

    def desired(self, now: float, view: ClusterView) -> int:
        return self.workers


def busy_if_unqueued(load: Load, resolution_s: float = 1.0) -> IntArray:
    """Queries running at each ``resolution_s`` tick had every one started on arrival (a query counts for
    every tick its run touches, so the figure never undercounts)."""
    horizon = math.ceil(load.duration / resolution_s) + 1
    starts = np.floor(load.arrivals / resolution_s).astype(np.int64)
    ends = np.ceil((load.arrivals + load.service) / resolution_s).astype(np.int64) + 1
    delta = np.bincount(starts, minlength=horizon + 1)[: horizon + 1].astype(np.int64)
    delta -= np.bincount(np.minimum(ends, horizon), minlength=horizon + 1)[: horizon + 1]
    return np.cumsum(delta)[:horizon]


class Oracle:
    name = "oracle"
    scale_down: ScaleDownMode = DRAIN

    def __init__(self, load: Load, config: ClusterConfig, period_seconds: float = HPA_PERIOD_SECONDS):
        self.period_seconds = period_seconds
        self.slots = full_speed_queries(config)
        self.lookahead = config.startup_seconds + period_seconds
        self.max_workers = config.max_workers
        self.busy = busy_if_unqueued(load)

    def desired(self, now: float, view: ClusterView) -> int:
        lo = int(now)
        hi = math.ceil(now + self.lookahead) + 1
        window = self.busy[lo:hi]
        peak = int(window.max()) if len(window) else 0
        return min(self.max_workers, -(-peak // self.slots))


BASELINES = ("hpa-cpu", "hpa-queue", "keda", "static", "oracle")


def make_baseline(name: str, load: Load, config: ClusterConfig) -> Policy:
    """A fresh baseline by name, sized for ``config`` (max replicas = ``config.max_workers``)."""
    if name == "hpa-cpu":
        return HpaCpu(max_replicas=config.max_workers)
    if name == "hpa-queue":
        return HpaQueue(per_pod_target=float(config.slots_per_worker), max_replicas=config.max_workers)
    if name == "keda":
        return Keda(max_replicas=config.max_workers)
    if name == "static":
        return Static.for_load(load, config)
    if name == "oracle":
        return Oracle(load, config)
    raise ValueError(f"unknown baseline {name!r}; pick from {', '.join(BASELINES)}")
