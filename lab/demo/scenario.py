"""The demo's load: a busy day of a ``ts,value`` trace, compressed in time, as Trino queries and Spark
applications.

Three clocks are involved. *Trace time* is the CSV's. *Cluster time* is what the emulated Trino cluster,
the Spark pool, pod start-ups and the policies count in: queries take tens of cluster seconds and the
controller passes every 15, as in a real cluster. *Wall time* is the demo's. ``speed`` is trace seconds
per wall second (960 puts a day in 90 s) and ``cluster_speed`` cluster seconds per wall second (15); the
trace is compressed into cluster time by their ratio, so a day of load becomes 22.5 cluster minutes that
the cluster lives through 15 times faster than real time. One compressed timeline, one set of arrivals:
the live run and the simulator get exactly the same queries and applications.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autoscaler.sim import load as query_load
from autoscaler.sim import spark_load
from autoscaler.sim.load import FloatArray, Load
from autoscaler.sim.spark_load import AppShape, SparkLoad

__all__ = [
    "DAY_SECONDS",
    "DEFAULT_CLUSTER_SPEED",
    "DEFAULT_SPEED",
    "DEFAULT_TRACE",
    "DemoLoad",
    "LoadSettings",
    "Segment",
    "TimeScale",
    "build_load",
    "busy_day",
    "cut_spark_load",
    "read_segment",
]

DAY_SECONDS = 86400.0
#: Trace seconds per wall second: a day of the trace in 90 s.
DEFAULT_SPEED = DAY_SECONDS / 90.0
#: Cluster seconds per wall second: a 15 s controller period is one wall second.
DEFAULT_CLUSTER_SPEED = 15.0
DEFAULT_TRACE = Path(__file__).parent / "traces" / "crane-input0-busy-day.csv"
_HOUR = 3600.0
#: Share of the hours counted as quiet when choosing where a busy day starts.
_QUIET_SHARE = 0.15


@dataclass(frozen=True, slots=True)
class TimeScale:
    """``speed`` trace seconds and ``cluster_speed`` cluster seconds pass per wall second."""

    speed: float = DEFAULT_SPEED
    cluster_speed: float = DEFAULT_CLUSTER_SPEED

    def __post_init__(self) -> None:
        for name in ("speed", "cluster_speed"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value}")
        if self.speed < self.cluster_speed:
            raise ValueError(
                f"speed ({self.speed:g} trace s per wall s) must be at least cluster_speed "
                f"({self.cluster_speed:g}): the trace is compressed into cluster time, never stretched"
            )

    @property
    def compression(self) -> float:
        """Trace seconds per cluster second."""
        return self.speed / self.cluster_speed

    def cluster_seconds(self, wall_seconds: float) -> float:
        return wall_seconds * self.cluster_speed

    def wall_seconds(self, cluster_seconds: float) -> float:
        return cluster_seconds / self.cluster_speed

    def trace_seconds(self, cluster_seconds: float) -> float:
        return cluster_seconds * self.compression


@dataclass(frozen=True, eq=False)
class Segment:
    """The part of a trace the demo replays: ``ts`` relative to its first sample, in trace seconds."""

    path: Path
    ts: FloatArray
    values: FloatArray
    epoch_start: float
    span: float

    @property
    def peak(self) -> float:
        """The 99th percentile of the values: the busy level the load is scaled to (spikes aside)."""
        return float(np.percentile(self.values, 99)) if len(self.values) else 0.0


def _step(ts: FloatArray) -> float:
    return float(np.median(np.diff(ts))) if len(ts) > 1 else 60.0


def busy_day(ts: FloatArray, values: FloatArray) -> tuple[int, int]:
    """Index range ``[lo, hi)`` of the busiest 24 hours that start in a quiet hour.

    Candidates start on a sample at a whole hour of the trace whose hourly mean is among the quietest
    :data:`_QUIET_SHARE` of hours; of those, the window of highest mean wins. Starting quiet makes the
    day rise and fall within the replay. A trace of a day or less is used whole.
    """
    n = len(ts)
    if n == 0:
        raise ValueError("the trace has no samples")
    step = _step(ts)
    per_day = max(1, round(DAY_SECONDS / step))
    if n <= per_day:
        return 0, n
    per_hour = max(1, round(_HOUR / step))
    starts = list(range(0, n - per_day + 1, per_hour))
    hourly = np.array([float(np.mean(values[s : s + per_hour])) for s in starts])
    quiet = float(np.quantile(hourly, _QUIET_SHARE))
    cumulative = np.concatenate(([0.0], np.cumsum(values, dtype=np.float64)))
    best, best_mean = starts[0], -math.inf
    for s, hour_mean in zip(starts, hourly, strict=True):
        if hour_mean > quiet:
            continue
        mean = (cumulative[s + per_day] - cumulative[s]) / per_day
        if mean > best_mean:
            best, best_mean = s, mean
    return best, best + per_day


def read_segment(path: Path) -> Segment:
    """The busy day of the ``ts,value`` trace at ``path``."""
    ts, values = query_load.read_shape_csv(path)
    if len(ts) == 0:
        raise ValueError(f"{path}: no samples")
    lo, hi = busy_day(ts, values)
    part_ts = ts[lo:hi]
    step = _step(ts)
    return Segment(
        path=path,
        ts=part_ts - part_ts[0],
        values=np.clip(values[lo:hi], 0.0, None),
        epoch_start=float(part_ts[0]),
        span=float(part_ts[-1] - part_ts[0]) + step,
    )


#: Short applications (two stages of about a dozen 6 s tasks): many of them come and go within the replay.
DEMO_APP_SHAPE = AppShape(
    mean_stages=2.0, max_stages=4, median_tasks=10.0, tasks_sigma=0.6, max_tasks=64, mean_task_seconds=6.0
)


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """How the trace's shape becomes work; rates are per cluster second at the segment's busy level."""

    trino_peak_rate: float = 1.6
    mean_service_seconds: float = 20.0
    spark_peak_rate: float = 0.05
    app_shape: AppShape = DEMO_APP_SHAPE


@dataclass(frozen=True, eq=False)
class DemoLoad:
    """The compressed segment as Trino queries and Spark applications, both in cluster seconds."""

    segment: Segment
    scale: TimeScale
    settings: LoadSettings
    trino: Load
    spark: SparkLoad

    @property
    def cluster_span(self) -> float:
        return self.trino.duration

    def description(self) -> str:
        seg = self.segment
        return (
            f"{seg.path.name}: {seg.span / _HOUR:.3g} h from its busiest quiet-started day, compressed "
            f"{self.scale.compression:.3g}x into {self.cluster_span:.0f} cluster seconds; Trino "
            f"{self.settings.trino_peak_rate:g} queries/s at the busy level (mean service "
            f"{self.settings.mean_service_seconds:g} s), Spark {self.settings.spark_peak_rate:g} "
            "applications/s at the busy level"
        )


def build_load(segment: Segment, scale: TimeScale, *, seed: int, settings: LoadSettings) -> DemoLoad:
    """Arrivals of both workloads over the segment compressed by ``scale``."""
    peak = segment.peak
    if peak <= 0:
        raise ValueError(f"{segment.path}: the trace is zero over its busy day")
    starts = segment.ts / scale.compression
    span = segment.span / scale.compression
    trino = query_load.from_shape(
        starts,
        segment.values,
        mean_service_s=settings.mean_service_seconds,
        seed=seed,
        rate_scale=settings.trino_peak_rate / peak,
        duration=span,
    )
    spark = spark_load.from_shape(
        starts,
        segment.values,
        seed=seed + 1,
        rate_scale=settings.spark_peak_rate / peak,
        duration=span,
        shape=settings.app_shape,
    )
    return DemoLoad(segment, scale, settings, trino, spark)


def cut_spark_load(load: SparkLoad, end: float) -> SparkLoad:
    """The applications arriving before ``end`` with all their stages, over ``[0, end)``."""
    apps = int(np.searchsorted(load.app_arrivals, end, side="left"))
    stages = int(load.app_stages[apps])
    tasks = int(load.stage_tasks[stages])
    return SparkLoad(
        app_arrivals=load.app_arrivals[:apps].copy(),
        app_stages=load.app_stages[: apps + 1].copy(),
        stage_tasks=load.stage_tasks[: stages + 1].copy(),
        task_seconds=load.task_seconds[:tasks].copy(),
        duration=float(end),
    )
