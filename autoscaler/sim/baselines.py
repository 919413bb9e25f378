"""The autoscalers queuescale is measured against, each run the way a competent user runs it.

Every HPA and KEDA baseline removes workers with the Trino chart's graceful shutdown on
(``worker.gracefulShutdown``: a preStop hook PUTs ``SHUTTING_DOWN``; the cluster model applies the grace
period and ``terminationGracePeriodSeconds``, bills a leaving worker until it exits and fails only the work
that outlives the termination grace period). Each has one setting a user tunes, swept by ``--sweep``:

- ``hpa-cpu``: the chart's HPA (``server.autoscaler``: ``autoscaling/v1``, CPU only, no ``behavior``: the
  legacy path, 300 s down-stabilisation). CPU utilisation is busy cores over the ready workers' cores.
  Setting: the target utilisation, 40-80 % (the chart's default 50).
- ``hpa-queue``: ``deploy/examples/hpa/hpa-trino-workers.yaml`` as written: ``trino_running_queries`` and
  ``trino_capacity_queued_queries`` at an ``AverageValue`` of q per worker, ``trino_required_workers`` at 1,
  its ``behavior`` (up: +4 pods or +100 % per 15 s; down: 600 s window, 1 pod per 120 s). Setting: q, 1-8.
- ``keda``: ``deploy/examples/keda/scaledobject-trino-workers.yaml`` as written: the same three triggers
  through metrics-api (``targetValue`` is an ``AverageValue``), ``minReplicaCount`` 1, the default scale-up
  and its scale-down (600 s, 1 pod per 120 s). With ``minReplicaCount`` 1 KEDA never deactivates the target,
  and its metrics server answers each HPA sync with a fresh value, so the HPA acts every 15 s on current
  figures. Setting: q, 1-8.
- ``keda-chart``: the Trino chart's own KEDA example, literally: ``RequiredWorkers`` as a ``Value`` of 1,
  ``minReplicaCount`` 0, polling 30 s, cooldown 300 s. Trino reports the configured
  ``query-manager.required-workers`` while a query waits for workers and 0 otherwise, so this only takes the
  cluster from 0 to 1 worker and back: **scale-from-zero, not load**. No setting.
- ``static``: a fixed number of workers, never scaled. Setting: the number.

There is no "oracle": :func:`lower_bound_worker_hours` is the bound (workers appear the instant work does and
are packed perfectly); nothing can cost less.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

import numpy as np

from autoscaler.decision.hpa import ExternalTarget, HpaController, recommend, recommended_replicas
from autoscaler.decision.hpa_behavior import (
    Behavior,
    RatePolicy,
    ScalingRules,
    resolve_behavior,
    tolerances_for,
)
from autoscaler.sim.load import Load
from autoscaler.sim.trino import DRAIN, ClusterView, Policy, ScaleDownMode
from core.metric_names import TRINO_CAPACITY_QUEUED_QUERIES, TRINO_REQUIRED_WORKERS, TRINO_RUNNING_QUERIES

__all__ = [
    "BASELINES",
    "Baseline",
    "ClusterSizing",
    "Family",
    "HpaCpu",
    "HpaQueue",
    "Keda",
    "KedaChart",
    "KedaScaler",
    "Static",
    "WorkerView",
    "baseline",
    "lower_bound_worker_hours",
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


class ClusterSizing(Protocol):
    """What the baselines need of a cluster configuration (the slot or the work model's)."""

    @property
    def max_workers(self) -> int: ...

    @property
    def cores(self) -> float: ...


V = TypeVar("V", bound=WorkerView)
#: How a baseline's target removes workers (the Trino cluster's or the Spark pool's modes).
M = TypeVar("M", bound=str)


class HpaBaseline(Generic[V, M]):
    """The shared part of the HPA baselines: one controller pass per period (legacy path without a
    ``behavior``)."""

    name = "hpa"
    period_seconds = HPA_PERIOD_SECONDS
    #: The simulator may leave the view's ``running_cpu_seconds`` out: no baseline reads it.
    reads_running_cpu = False

    def __init__(
        self,
        min_replicas: int = 1,
        max_replicas: int = 100,
        initial_replicas: int | None = None,
        *,
        behavior: Behavior | None = None,
        scale_down: M,
    ):
        if not 1 <= min_replicas <= max_replicas:
            raise ValueError("need 1 <= min_replicas <= max_replicas")
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.initial_replicas = min_replicas if initial_replicas is None else initial_replicas
        self.behavior = behavior
        self.scale_down: M = scale_down
        # The pure step() pass after pass, kept incrementally: the same counts, each pass in constant time.
        self.controller = HpaController(min_replicas, max_replicas, behavior)
        self.started = False

    def _raw(self, view: V) -> int | None:
        raise NotImplementedError

    def desired(self, now: float, view: V) -> int:
        if not self.started:
            # The workload's own replica count before the HPA's first pass.
            self.started = True
            return self.initial_replicas
        return self.controller.step(now, view.current_workers, self._raw(view))


class HpaCpu(HpaBaseline[WorkerView, M]):
    """CPU utilisation as the HPA sees it through metrics-server: the rate of the workers' CPU usage
    counter over the last period (when the view has one), over the ready workers' cores."""

    name = "hpa-cpu"

    def __init__(
        self,
        scale_down: M,
        target_percent: float = 50.0,
        min_replicas: int = 1,
        max_replicas: int = 100,
        initial_replicas: int | None = None,
    ):
        super().__init__(min_replicas, max_replicas, initial_replicas, scale_down=scale_down)
        self.target = ExternalTarget("Value", target_percent, "cpu utilisation %")
        self._last: tuple[float, float] | None = None
        self._reading = 0.0

    def _utilisation(self, view: WorkerView) -> float:
        counter = float(getattr(view, "busy_core_seconds_total", 0.0))
        now = getattr(view, "now", None)
        cores = float(getattr(view, "cores_per_worker", 0.0)) * view.ready_workers
        if now is None:
            return view.busy_fraction
        last, self._last = self._last, (float(now), counter)
        if last is None or float(now) <= last[0] or not cores:
            return view.busy_fraction
        used = counter - last[1]
        if used <= 0 and view.busy_fraction > 0:
            return view.busy_fraction  # a model without the counter (the slot model)
        return min(1.0, used / (float(now) - last[0]) / cores)

    def desired(self, now: float, view: WorkerView) -> int:
        # Every pass reads the counter, the first one too, so the next one has a window to take a rate over.
        self._reading = self._utilisation(view)
        return super().desired(now, view)

    def _raw(self, view: WorkerView) -> int | None:
        utilisation = self._reading
        if view.ready_workers == 0:
            return None  # no pod reports a metric: the controller cannot compute anything
        usage = utilisation * 100.0
        # A utilisation seldom recurs: recommend()'s cache would only miss.
        return recommended_replicas([(self.target, usage)], view.current_workers, view.ready_workers)


def _capacity_queued(view: ClusterView) -> float:
    """``trino_capacity_queued_queries``: queued queries more workers would start (not those held by a
    group's concurrency limit or an absolute memory limit)."""
    return float(view.queued - view.limit_bound_queued)


#: ``deploy/examples/hpa/hpa-trino-workers.yaml``'s ``behavior``.
EXAMPLE_HPA_BEHAVIOR = Behavior(
    scale_up=ScalingRules(
        stabilization_window_seconds=0,
        select_policy="Max",
        policies=(RatePolicy("Pods", 4, 15), RatePolicy("Percent", 100, 15)),
    ),
    scale_down=ScalingRules(stabilization_window_seconds=600, policies=(RatePolicy("Pods", 1, 120),)),
)
#: ``deploy/examples/keda/scaledobject-trino-workers.yaml``'s ``advanced.horizontalPodAutoscalerConfig``.
EXAMPLE_KEDA_BEHAVIOR = Behavior(
    scale_down=ScalingRules(stabilization_window_seconds=600, policies=(RatePolicy("Pods", 1, 120),)),
)


TrinoMode = Literal["abrupt", "shutdown"]


class HpaQueue(HpaBaseline[ClusterView, TrinoMode]):
    """The example HPA on the adapter's query metrics (see the module docstring)."""

    name = "hpa-queue"

    def __init__(
        self,
        per_pod_target: float = 4.0,
        min_replicas: int = 1,
        max_replicas: int = 20,
        initial_replicas: int | None = None,
        *,
        behavior: Behavior | None = EXAMPLE_HPA_BEHAVIOR,
        scale_down: TrinoMode = "shutdown",
    ):
        super().__init__(
            min_replicas, max_replicas, initial_replicas, behavior=behavior, scale_down=scale_down
        )
        self.targets = (
            ExternalTarget("AverageValue", per_pod_target, TRINO_RUNNING_QUERIES),
            ExternalTarget("AverageValue", per_pod_target, TRINO_CAPACITY_QUEUED_QUERIES),
            ExternalTarget("AverageValue", 1.0, TRINO_REQUIRED_WORKERS),
        )
        self._known: dict[tuple[tuple[int, int, int], tuple[int, int]], tuple[int | None]] = {}

    def run_signature(self) -> Hashable:
        """What this policy's run depends on: two policies with equal signatures run the same, figure for
        figure (their :class:`~autoscaler.sim.run.Result` differs only in ``policy``), so one run serves
        both. The example ScaledObject (:class:`Keda`) is the example HPA this way: its behaviour leaves
        the scale-up at the HPA's default, which the example HPA spells out.

        Everything :meth:`desired` reads: the targets, the replica bounds, the behaviour as the controller
        resolves it (and its tolerances, which :func:`~autoscaler.decision.hpa.recommend` reads), how workers are
        removed, the period, and the code itself (a subclass that overrides a method differs)."""
        behavior = self.behavior
        return (
            type(self).desired,
            type(self)._raw,
            self.targets,
            self.min_replicas,
            self.max_replicas,
            self.initial_replicas,
            None if behavior is None else resolve_behavior(behavior),
            tolerances_for(behavior),
            self.scale_down,
            self.period_seconds,
        )

    def _raw(self, view: ClusterView) -> int | None:
        # The recommendation is a pure function of these counts (the targets and behaviour are fixed), and
        # the same few recur pass after pass: a small table answers faster than hashing the targets.
        key = (view.running, view.queued - view.limit_bound_queued, view.required_workers)
        counts = (view.current_workers, view.ready_workers)
        known = self._known.get((key, counts))
        if known is not None:
            return known[0]
        running, capacity, required = self.targets
        values = (
            (running, float(view.running)),
            (capacity, _capacity_queued(view)),
            (required, float(view.required_workers)),
        )
        replicas = recommend(values, *counts, behavior=self.behavior).replicas
        self._known[(key, counts)] = (replicas,)
        return replicas


class Keda(HpaQueue):
    """The example ScaledObject: the same triggers, KEDA's HPA with the example's scale-down only."""

    name = "keda"

    def __init__(
        self,
        per_pod_target: float = 4.0,
        min_replicas: int = 1,
        max_replicas: int = 20,
        *,
        scale_down: TrinoMode = "shutdown",
    ):
        super().__init__(
            per_pod_target, min_replicas, max_replicas, behavior=EXAMPLE_KEDA_BEHAVIOR, scale_down=scale_down
        )


class KedaScaler(Generic[V, M]):
    """A ScaledObject on one trigger that may scale to zero: KEDA polls ``metric`` every
    ``polling_interval_s`` for activity (above 0), takes the target from 0 to 1 on activity and back to 0
    after ``cooldown_period_s`` without any; between, its HPA (every 15 s, legacy path) scales on the
    value as ``kind`` (``AverageValue`` or ``Value``) of ``per_pod_target``."""

    name = "keda"
    period_seconds = HPA_PERIOD_SECONDS
    #: The simulator may leave the view's ``running_cpu_seconds`` out: no baseline reads it.
    reads_running_cpu = False

    def __init__(
        self,
        metric: Callable[[V], float],
        metric_name: str,
        per_pod_target: float,
        max_replicas: int = 100,
        min_replicas: int = 0,
        polling_interval_s: float = 30.0,
        cooldown_period_s: float = 300.0,
        *,
        kind: Literal["Value", "AverageValue"] = "AverageValue",
        scale_down: M,
    ):
        self.read = metric
        self.max_replicas = max_replicas
        self.min_replicas = min_replicas
        self.polling_interval_s = polling_interval_s
        self.cooldown_period_s = cooldown_period_s
        self.target = ExternalTarget(kind, per_pod_target, metric_name)
        self.scale_down: M = scale_down
        # KEDA's HPA on the legacy path, between scale-from-zero and back (see step()).
        self.controller = HpaController(max(1, min_replicas), max_replicas, None)
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
        raw = recommended_replicas([(self.target, self.metric)], current, view.ready_workers)
        return self.controller.step(now, current, raw)


class KedaChart(KedaScaler[ClusterView, TrinoMode]):
    """The Trino chart's KEDA example: ``RequiredWorkers``, ``Value`` 1 (scale-from-zero only)."""

    name = "keda-chart"

    def __init__(self, max_replicas: int = 100, *, scale_down: TrinoMode = "shutdown"):
        super().__init__(
            lambda view: float(view.required_workers),
            TRINO_REQUIRED_WORKERS,
            1.0,
            max_replicas,
            0,
            30.0,
            300.0,
            kind="Value",
            scale_down=scale_down,
        )


class Static:
    name = "static"
    scale_down: ScaleDownMode = DRAIN
    #: The simulator may leave the view's ``running_cpu_seconds`` out: no baseline reads it.
    reads_running_cpu = False

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError("a static cluster needs at least one worker")
        self.workers = workers
        self.period_seconds = 3600.0

    def desired(self, now: float, view: ClusterView) -> int:
        return self.workers


def lower_bound_worker_hours(load: Load, config: ClusterSizing) -> float:
    """Worker-hours no policy can beat: every CPU-second of work on a worker that appears the instant it is
    needed and is never idle (the load's total work over one worker's cores)."""
    return float(load.service.sum()) / config.cores / 3600.0


def _peak_busy_cores(load: Load, window_s: float = 900.0) -> float:
    """Busy cores in the busiest ``window_s`` had every query run the moment it arrived."""
    if load.count == 0:
        return 0.0
    bins = np.floor(load.arrivals / window_s).astype(np.int64)
    return float(np.bincount(bins, weights=load.service).max()) / window_s


P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Family(Generic[P]):
    """One baseline family: how to build it at a setting, its default and the settings ``--sweep`` tries.

    ``more_capacity`` says which way the setting buys capacity ("lower": a lower CPU target or fewer
    queries per worker means more workers). ``integer`` settings are whole numbers (a static size).
    ``P`` is the kind of policy it builds (a Trino cluster's here, a Spark pool's in
    :mod:`autoscaler.sim.spark_baselines`). ``beyond`` extends the sweep toward less capacity."""

    name: str
    setting: str
    default: float
    sweep: tuple[float, ...]
    more_capacity: Literal["lower", "higher"]
    integer: bool
    build: Callable[[float], P]
    #: The next setting past the sweep's cheapest end, for the iso-SLO search when that end still meets
    #: the level; None (the default, or returned) where the family's range ends.
    beyond: Callable[[float], float | None] | None = None

    def make(self, setting: float | None = None) -> P:
        return self.build(self.default if setting is None else setting)


@dataclass(frozen=True, slots=True)
class Baseline(Family[Policy]):
    """A Trino cluster's baseline family."""


BASELINES = ("hpa-cpu", "hpa-queue", "keda", "keda-chart", "static")


def _static_sizes(load: Load, config: ClusterSizing) -> tuple[int, tuple[float, ...]]:
    """A static size kept at 50 % CPU in the busiest 15 minutes, and sizes around it for the sweep."""
    cores = config.cores
    peak = _peak_busy_cores(load) / cores
    default = max(1, min(config.max_workers, math.ceil(peak / 0.5)))
    mean = float(load.service.sum()) / max(load.duration, 1e-9) / cores
    low = max(1, math.floor(mean))
    high = max(low + 1, min(config.max_workers, math.ceil(2.0 * peak) + 1))
    grid = sorted({round(float(x)) for x in np.geomspace(low, high, 7)} | {default})
    return default, tuple(float(x) for x in grid)


def baseline(name: str, load: Load, config: ClusterSizing, *, scale_down: TrinoMode = "shutdown") -> Baseline:
    """The baseline family ``name`` for ``load`` on ``config`` (max replicas ``config.max_workers``),
    removing workers by ``scale_down`` (the chart's graceful shutdown unless told otherwise)."""
    top = config.max_workers
    if name == "hpa-cpu":
        return Baseline(
            name,
            "CPU target %",
            50.0,
            (40.0, 50.0, 60.0, 70.0, 80.0),
            "lower",
            False,
            lambda s: HpaCpu(scale_down, s, max_replicas=top),
        )
    if name in ("hpa-queue", "keda"):
        # The example ScaledObject is the example HPA's triggers behind KEDA: one setting, one sweep.
        example: type[HpaQueue] = HpaQueue if name == "hpa-queue" else Keda
        return Baseline(
            name,
            "queries per worker",
            4.0,
            (1.0, 2.0, 4.0, 6.0, 8.0),
            "lower",
            False,
            lambda s: example(s, max_replicas=top, scale_down=scale_down),
        )
    if name == "keda-chart":
        return Baseline(
            name, "none", 1.0, (1.0,), "higher", True, lambda _: KedaChart(top, scale_down=scale_down)
        )
    if name == "static":
        default, sizes = _static_sizes(load, config)
        return Baseline(name, "workers", float(default), sizes, "higher", True, lambda s: Static(int(s)))
    raise ValueError(f"unknown baseline {name!r}; pick from {', '.join(BASELINES)}")


def make_baseline(
    name: str, load: Load, config: ClusterSizing, *, scale_down: TrinoMode = "shutdown"
) -> Policy:
    """A fresh baseline by name at its default setting."""
    return baseline(name, load, config, scale_down=scale_down).make()
