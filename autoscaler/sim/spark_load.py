"""Seeded, deterministic Spark application loads for the pool simulator.

A :class:`SparkLoad` is a list of applications, each arriving at a time and running a chain of stages; a
stage is a set of tasks with their own durations (core-seconds: a task holds one task slot of one executor
for exactly its duration). Stage ``k + 1`` of an application becomes schedulable when stage ``k`` has
finished, the way a job's stages wait on their parents.

Layout (flat arrays, cheap to build and to walk): application ``a`` owns the stages
``app_stages[a] .. app_stages[a + 1] - 1``; stage ``s`` owns the tasks
``stage_tasks[s] .. stage_tasks[s + 1] - 1``.

Sources:

- :func:`from_shape` / :func:`from_trace_csv`: applications arrive as a Poisson process following a
  ``ts,value`` load shape (the same arrival model and scaling as :func:`autoscaler.sim.load.from_shape`,
  ``value × rate_scale`` applications per second); each application's stages, task counts and durations
  are drawn from an :class:`AppShape` with a stream of its own, so the arrivals of a seed do not depend on
  the shape of the applications;
- :func:`from_apps_csv`: one row per stage, ``app,arrival_ts,tasks,task_seconds``;
- :func:`from_apps`: explicit applications (tests, examples).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autoscaler.sim import load as query_load
from autoscaler.sim.load import FloatArray, IntArray

__all__ = [
    "DEFAULT_APP_RATE",
    "AppShape",
    "SparkLoad",
    "from_apps",
    "from_apps_csv",
    "from_arrivals",
    "from_shape",
    "from_trace_csv",
    "unconstrained_demand",
]

#: Applications per second a shape is scaled to by default: about 7 busy cores on average with the default
#: :class:`AppShape` (3 stages of ~26 tasks of 20 s), in bursts of a few hundred.
DEFAULT_APP_RATE = 0.004


@dataclass(frozen=True, eq=False)
class SparkLoad:
    """Applications sorted by arrival; ``duration`` is the span the load covers (the run length by default)."""

    app_arrivals: FloatArray
    app_stages: IntArray
    stage_tasks: IntArray
    task_seconds: FloatArray
    duration: float

    def __post_init__(self) -> None:
        apps = len(self.app_arrivals)
        if len(self.app_stages) != apps + 1 or self.app_stages[0] != 0:
            raise ValueError("app_stages must be offsets: one more than the applications, starting at 0")
        stages = int(self.app_stages[-1])
        if len(self.stage_tasks) != stages + 1 or self.stage_tasks[0] != 0:
            raise ValueError("stage_tasks must be offsets: one more than the stages, starting at 0")
        if int(self.stage_tasks[-1]) != len(self.task_seconds):
            raise ValueError("stage_tasks must end at the number of tasks")
        if np.any(np.diff(self.app_stages) < 1) or np.any(np.diff(self.stage_tasks) < 1):
            raise ValueError("every application needs a stage and every stage a task")
        if apps and (np.any(np.diff(self.app_arrivals) < 0) or self.app_arrivals[0] < 0):
            raise ValueError("arrivals must be sorted and >= 0")
        if len(self.task_seconds) and not np.all(np.isfinite(self.task_seconds) & (self.task_seconds > 0)):
            raise ValueError("task durations must be positive and finite")
        if not (math.isfinite(self.duration) and self.duration > 0):
            raise ValueError(f"duration must be a positive number of seconds, not {self.duration}")

    @property
    def app_count(self) -> int:
        return len(self.app_arrivals)

    @property
    def stage_count(self) -> int:
        return len(self.stage_tasks) - 1

    @property
    def task_count(self) -> int:
        return len(self.task_seconds)

    def task_stage(self) -> IntArray:
        """The stage of every task."""
        return np.repeat(np.arange(self.stage_count, dtype=np.int64), np.diff(self.stage_tasks))

    def stage_app(self) -> IntArray:
        """The application of every stage."""
        return np.repeat(np.arange(self.app_count, dtype=np.int64), np.diff(self.app_stages))

    def core_seconds(self) -> float:
        """Task-seconds of the whole load (core-seconds at one core per task)."""
        return float(self.task_seconds.sum())


@dataclass(frozen=True, slots=True)
class AppShape:
    """How generated applications look.

    Stages per application: ``1 + Poisson(mean_stages − 1)``, at most ``max_stages``. Tasks per stage:
    lognormal with median ``median_tasks`` and log-sd ``tasks_sigma``, rounded, in ``[1, max_tasks]``
    (partition counts vary over orders of magnitude). Durations: each stage draws its mean task time from a
    lognormal of mean ``mean_task_seconds`` (log-sd ``stage_sigma``: stages differ), and its tasks scatter
    around it lognormally (log-sd ``task_sigma``: skew inside a stage).
    """

    mean_stages: float = 3.0
    max_stages: int = 8
    median_tasks: float = 16.0
    tasks_sigma: float = 1.0
    max_tasks: int = 400
    mean_task_seconds: float = 20.0
    stage_sigma: float = 0.6
    task_sigma: float = 0.5

    def __post_init__(self) -> None:
        if not (1.0 <= self.mean_stages <= self.max_stages):
            raise ValueError("need 1 <= mean_stages <= max_stages")
        if not (1.0 <= self.median_tasks <= self.max_tasks):
            raise ValueError("need 1 <= median_tasks <= max_tasks")
        if not (math.isfinite(self.mean_task_seconds) and self.mean_task_seconds > 0):
            raise ValueError("mean_task_seconds must be positive")
        if min(self.tasks_sigma, self.stage_sigma, self.task_sigma) < 0:
            raise ValueError("the sigmas must be >= 0")

    def mean_tasks(self) -> float:
        """Expected tasks per stage (before the clip to ``[1, max_tasks]``)."""
        return self.median_tasks * math.exp(self.tasks_sigma**2 / 2.0)


def _lognormal_mean(rng: np.random.Generator, mean: float | FloatArray, sigma: float, n: int) -> FloatArray:
    mu = np.log(mean) - sigma * sigma / 2.0
    return rng.lognormal(mu, sigma, n)


def from_arrivals(
    arrivals: FloatArray, duration: float, *, seed: int, shape: AppShape = AppShape()
) -> SparkLoad:
    """Applications of ``shape`` arriving at ``arrivals`` (sorted, seconds from the start)."""
    arrivals = np.asarray(arrivals, dtype=np.float64)
    rng = np.random.default_rng([seed, 0x5A4B])
    apps = len(arrivals)
    stages = np.minimum(1 + rng.poisson(shape.mean_stages - 1.0, apps), shape.max_stages).astype(np.int64)
    total_stages = int(stages.sum())
    raw_tasks = _lognormal_mean(rng, shape.mean_tasks(), shape.tasks_sigma, total_stages)
    tasks = np.clip(np.rint(raw_tasks), 1, shape.max_tasks).astype(np.int64)
    stage_mean = _lognormal_mean(rng, shape.mean_task_seconds, shape.stage_sigma, total_stages)
    per_task_mean = np.repeat(stage_mean, tasks)
    seconds = _lognormal_mean(rng, per_task_mean, shape.task_sigma, int(tasks.sum()))
    # Sub-10 ms tasks would only be scheduler noise; keep durations strictly positive and meaningful.
    seconds = np.maximum(seconds, 0.01)
    return SparkLoad(
        app_arrivals=arrivals,
        app_stages=np.concatenate(([0], np.cumsum(stages))).astype(np.int64),
        stage_tasks=np.concatenate(([0], np.cumsum(tasks))).astype(np.int64),
        task_seconds=seconds,
        duration=float(duration),
    )


def from_shape(
    ts: FloatArray,
    values: FloatArray,
    *,
    seed: int,
    mean_rate: float | None = None,
    rate_scale: float | None = None,
    start: float | None = None,
    duration: float | None = None,
    shape: AppShape = AppShape(),
) -> SparkLoad:
    """Applications arriving at ``value × rate_scale`` per second (or scaled to ``mean_rate``) over a shape.

    The arrival times are exactly those :func:`autoscaler.sim.load.from_shape` draws for the same seed.
    """
    arrivals = query_load.from_shape(
        ts,
        values,
        mean_service_s=1.0,
        seed=seed,
        mean_rate=mean_rate,
        rate_scale=rate_scale,
        start=start,
        duration=duration,
    )
    return from_arrivals(arrivals.arrivals, arrivals.duration, seed=seed, shape=shape)


def from_trace_csv(
    path: str | Path,
    *,
    seed: int,
    mean_rate: float | None = None,
    rate_scale: float | None = None,
    start: float | None = None,
    duration: float | None = None,
    shape: AppShape = AppShape(),
) -> SparkLoad:
    """:func:`from_shape` on a ``ts,value`` CSV file."""
    ts, values = query_load.read_shape_csv(path)
    return from_shape(
        ts,
        values,
        seed=seed,
        mean_rate=mean_rate,
        rate_scale=rate_scale,
        start=start,
        duration=duration,
        shape=shape,
    )


def from_apps(apps: Sequence[tuple[float, Sequence[Sequence[float]]]], duration: float) -> SparkLoad:
    """Explicit applications: ``(arrival, [[task seconds of stage 0], [stage 1], ...])``, any order."""
    ordered = sorted(apps, key=lambda app: app[0])
    arrivals = np.asarray([a for a, _ in ordered], dtype=np.float64)
    stage_counts = [len(stages) for _, stages in ordered]
    task_counts = [len(tasks) for _, stages in ordered for tasks in stages]
    seconds = [float(s) for _, stages in ordered for tasks in stages for s in tasks]
    return SparkLoad(
        app_arrivals=arrivals,
        app_stages=np.concatenate(([0], np.cumsum(stage_counts, dtype=np.int64))).astype(np.int64),
        stage_tasks=np.concatenate(([0], np.cumsum(task_counts, dtype=np.int64))).astype(np.int64),
        task_seconds=np.asarray(seconds, dtype=np.float64),
        duration=float(duration),
    )


def from_apps_csv(path: str | Path, *, duration: float | None = None) -> SparkLoad:
    """Rows ``app,arrival_ts,tasks,task_seconds`` (header optional), one per stage in stage order.

    Every task of a stage lasts ``task_seconds``. Times are re-based to the first arrival; without
    ``duration`` the load lasts until the last application could finish on an unbounded pool.
    """
    stages: dict[str, tuple[float, list[list[float]]]] = {}
    with open(path, newline="") as handle:
        for row in csv.reader(handle):
            if not row or not row[0].strip():
                continue
            try:
                app, at, tasks, seconds = row[0].strip(), float(row[1]), int(row[2]), float(row[3])
            except (ValueError, IndexError):
                if not stages:
                    continue  # a header line
                raise
            if tasks < 1:
                raise ValueError(f"{path}: application {app}: a stage needs at least one task")
            _, chain = stages.setdefault(app, (at, []))
            chain.append([seconds] * tasks)
    if not stages:
        raise ValueError(f"{path}: no applications")
    base = min(at for at, _ in stages.values())
    apps = [(at - base, chain) for at, chain in stages.values()]
    span = duration
    if span is None:
        span = max(at + sum(max(stage) for stage in chain) for at, chain in apps)
    return from_apps(apps, max(float(span), 1.0))


def unconstrained_demand(load: SparkLoad, resolution_s: float = 1.0) -> IntArray:
    """Task slots busy at each ``resolution_s`` tick on an unbounded pool with no scheduling delay.

    Every stage starts when its predecessor's longest task ends (the first at the application's arrival)
    and all its tasks start at once; a task counts for every tick its run touches, so the figure never
    undercounts.
    """
    horizon = math.ceil(load.duration / resolution_s) + 1
    if load.task_count == 0:
        return np.zeros(horizon, dtype=np.int64)
    stage_longest = np.maximum.reduceat(load.task_seconds, load.stage_tasks[:-1])
    ends = np.cumsum(stage_longest)
    # Within an application, a stage starts after the longest tasks of the stages before it.
    app_first = load.app_stages[:-1]
    before_app = np.concatenate(([0.0], ends))[app_first]
    stage_app = load.stage_app()
    stage_start = load.app_arrivals[stage_app] + (ends - stage_longest) - before_app[stage_app]
    task_start = np.repeat(stage_start, np.diff(load.stage_tasks))
    first = np.floor(task_start / resolution_s).astype(np.int64)
    last = np.ceil((task_start + load.task_seconds) / resolution_s).astype(np.int64) + 1
    delta = np.bincount(np.minimum(first, horizon), minlength=horizon + 1)[: horizon + 1].astype(np.int64)
    delta -= np.bincount(np.minimum(last, horizon), minlength=horizon + 1)[: horizon + 1]
    return np.cumsum(delta)[:horizon]
