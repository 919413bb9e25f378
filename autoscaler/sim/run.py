"""Drive a :class:`~autoscaler.sim.trino.SlotCluster` with a :class:`~autoscaler.sim.trino.Policy`.

Simulated time advances in ``step_seconds`` steps; between steps the cluster processes its events at their
exact instants. At every step boundary that reaches the policy's next period the policy is asked for a
replica count, which is applied at once. Every ``sample_every`` steps one point of the time series is kept.

Figures of a :class:`Result`:

- ``worker_hours``: every worker from the moment it was requested until it left (or the end of the run);
- ``queue_wait_p50_s`` / ``p95`` / ``p99``: over the queue waits of every query that started (0 without any);
- ``slo_misses``: started queries that waited longer than ``slo_seconds``, plus queries still queued at the
  end that have already waited longer;
- ``scale_actions``: how many times the replica count set on the cluster changed;
- ``killed``: queries that failed because their worker went away (abrupt removal, or a graceful shutdown
  that outlived the termination grace period);
- ``run_time_p95_s``: p95 of the completed queries' run times (start to end); ``latency_p95_s``: p95 of
  their latency as users see it (arrival to end, the queue wait included).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from autoscaler.sim.load import FloatArray, Load
from autoscaler.sim.trino import ClusterConfig, ClusterView, Policy, SlotCluster
from autoscaler.sim.trino_work import WorkCluster, WorkConfig

__all__ = [
    "Result",
    "Sample",
    "Trace",
    "completion_figures",
    "result_json",
    "simulate",
    "step_through",
    "wait_figures",
]

_SUMMARY_KEYS = (
    "worker_hours",
    "queue_wait_p50_s",
    "queue_wait_p95_s",
    "queue_wait_p99_s",
    "slo_misses",
    "scale_actions",
    "killed",
    "run_time_p95_s",
    "latency_p95_s",
)


@dataclass(frozen=True, eq=False)
class Result:
    """One policy's run. The series share the time axis ``t`` (seconds from the start, one point per
    sample): ``arrival_rate`` (arrivals/s since the previous sample), ``queued``, ``running``, ``desired``
    (replicas set), ``current`` (starting + active workers), ``billed`` (every worker present, draining
    included) and ``queue_wait`` (how long the oldest queued query had waited)."""

    policy: str
    worker_hours: float
    queue_wait_p50_s: float
    queue_wait_p95_s: float
    queue_wait_p99_s: float
    queue_wait_mean_s: float
    slo_misses: int
    scale_actions: int
    killed: int
    run_time_p95_s: float
    latency_p95_s: float
    arrived: int
    completed: int
    queued_at_end: int
    running_at_end: int
    duration_s: float
    steps: int
    waits: FloatArray
    t: FloatArray
    arrival_rate: FloatArray
    queued: FloatArray
    running: FloatArray
    desired: FloatArray
    current: FloatArray
    billed: FloatArray
    queue_wait: FloatArray

    def summary(self) -> dict[str, float | int]:
        return {key: getattr(self, key) for key in _SUMMARY_KEYS}


def simulate(
    load: Load,
    policy: Policy,
    cluster_config: ClusterConfig | WorkConfig,
    seed: int = 0,
    step_seconds: float = 5.0,
    duration: float | None = None,
    *,
    max_samples: int = 2000,
) -> Result:
    """Run ``policy`` on ``load`` for ``duration`` (default the load's) seconds.

    ``seed`` is accepted for a uniform call shape; the model itself draws nothing at random (the load
    carries all randomness), so equal inputs give equal results whatever it is.
    """
    del seed
    end = float(load.duration if duration is None else duration)
    cluster: SlotCluster | WorkCluster = (
        WorkCluster(load, cluster_config)
        if isinstance(cluster_config, WorkConfig)
        else SlotCluster(load, cluster_config)
    )
    mode = policy.scale_down
    view: Callable[[float], ClusterView] = cluster.view
    if isinstance(cluster, WorkCluster) and not getattr(policy, "reads_running_cpu", True):
        # The running queries' CPU time sums over every running query at every pass; skipped for the
        # policies that say they never read it (the baselines).
        view = partial(cluster.view, running_cpu=False)

    first = policy.desired(0.0, view(0.0))
    initial = cluster_config.initial_workers
    cluster.set_replicas(first if initial is None else initial, 0.0, mode, initial=True)
    if initial is not None and first != initial:
        cluster.set_replicas(first, 0.0, mode)

    def sample(now: float) -> Sample:
        return Sample(
            cluster.arrived,
            cluster.queued,
            cluster.running,
            cluster.replicas,
            cluster.member_workers(),
            cluster.billed_workers(),
            cluster.head_wait(now),
        )

    trace = step_through(
        advance=cluster.advance,
        decide=lambda now: cluster.set_replicas(policy.desired(now, view(now)), now, mode),
        sample=sample,
        end=end,
        step_seconds=step_seconds,
        period=float(policy.period_seconds),
        max_samples=max_samples,
    )
    waits = cluster.started_waits()
    figures = wait_figures(waits, cluster.queued_waits(end), cluster_config.slo_seconds)
    run_p95, latency_p95 = completion_figures(load.arrivals, cluster.start, cluster.end)
    return Result(
        policy=policy.name,
        worker_hours=cluster.finish(end) / 3600.0,
        **figures,
        scale_actions=cluster.scale_actions,
        killed=cluster.killed,
        run_time_p95_s=run_p95,
        latency_p95_s=latency_p95,
        arrived=cluster.arrived,
        completed=cluster.completed,
        queued_at_end=cluster.queued,
        running_at_end=cluster.running,
        duration_s=end,
        waits=waits,
        **trace.series(),
    )


class Sample(NamedTuple):
    """One point of a run's time series, read from the model at a step boundary."""

    arrived: int
    queued: int
    running: int
    desired: int
    current: int
    billed: int
    head_wait: float


@dataclass(frozen=True, eq=False)
class Trace:
    """The sampled series of a run and how many steps it took."""

    steps: int
    points: list[tuple[float, float, Sample]]
    """(time, arrivals per second since the previous point, sample)."""

    def series(self) -> dict[str, Any]:
        """The :class:`Result` fields the trace fills."""
        samples = [p[2] for p in self.points]

        def column(i: int) -> FloatArray:
            return np.asarray([s[i] for s in samples], dtype=np.float64)

        return {
            "steps": self.steps,
            "t": np.asarray([p[0] for p in self.points], dtype=np.float64),
            "arrival_rate": np.asarray([p[1] for p in self.points], dtype=np.float64),
            "queued": column(1),
            "running": column(2),
            "desired": column(3),
            "current": column(4),
            "billed": column(5),
            "queue_wait": column(6),
        }


def step_through(
    *,
    advance: Callable[[float], None],
    decide: Callable[[float], object],
    sample: Callable[[float], Sample],
    end: float,
    step_seconds: float,
    period: float,
    max_samples: int,
) -> Trace:
    """The stepping loop every simulated target shares: ``advance`` the model to each step boundary,
    ``decide`` at every boundary that reaches the next period, ``sample`` every few steps."""
    if not (math.isfinite(step_seconds) and step_seconds > 0):
        raise ValueError("step_seconds must be positive")
    steps = math.ceil(end / step_seconds)
    sample_every = max(1, math.ceil((steps + 1) / max_samples))
    next_eval = period
    points: list[tuple[float, float, Sample]] = []
    last_t, last_arrived = 0.0, 0

    def decides(k: int) -> bool:
        return min(k * step_seconds, end) + 1e-9 >= next_eval

    def next_decision(k: int) -> int:
        """The first step after ``k`` that reaches ``next_eval`` (``steps + 1``: none)."""
        # A guess from the division, then corrected by the exact test the steps use: the step instants
        # only grow with k, so this finds the same step a scan would.
        guess = min(max(k + 1, math.ceil((next_eval - 1e-9) / step_seconds)), steps + 1)
        while guess > k + 1 and decides(guess - 1):
            guess -= 1
        while guess <= steps and not decides(guess):
            guess += 1
        return guess

    # The models process every event up to the instant they are advanced to whatever steps lie between,
    # so only the steps that decide or sample need to advance them: the run is the same, with far fewer
    # calls (a 15 s policy decides on one step in three, a static one on one in 720).
    k = 0
    decide_at = next_decision(0)
    while k < steps:
        sample_at = min(steps, (k // sample_every + 1) * sample_every)
        k = min(decide_at, sample_at)
        now = min(k * step_seconds, end)
        advance(now)
        if k == decide_at:
            decide(now)
            while next_eval <= now + 1e-9:
                next_eval += period
            decide_at = next_decision(k)
        if k == sample_at:
            point = sample(now)
            width = now - last_t
            points.append((now, (point.arrived - last_arrived) / width if width > 0 else 0.0, point))
            last_t, last_arrived = now, point.arrived
    return Trace(steps, points)


def completion_figures(
    arrivals: FloatArray, start: Sequence[float], end: Sequence[float]
) -> tuple[float, float]:
    """p95 run time and p95 latency of the completed queries (0 and 0 without any)."""
    ends = np.asarray(end, dtype=np.float64)
    done = ~np.isnan(ends)
    if not done.any():
        return 0.0, 0.0
    starts = np.asarray(start, dtype=np.float64)[done]
    finished = ends[done]
    run = float(np.percentile(finished - starts, 95))
    latency = float(np.percentile(finished - arrivals[done], 95))
    return run, latency


def wait_figures(waits: FloatArray, still_waiting: FloatArray, slo_seconds: float) -> dict[str, Any]:
    """The wait percentiles, mean and SLO misses of a run (``still_waiting``: work queued at the end)."""
    if len(waits):
        p50, p95, p99 = (float(x) for x in np.percentile(waits, [50, 95, 99]))
        mean = float(waits.mean())
    else:
        p50 = p95 = p99 = mean = 0.0
    misses = int(np.count_nonzero(waits > slo_seconds) + np.count_nonzero(still_waiting > slo_seconds))
    return {
        "queue_wait_p50_s": p50,
        "queue_wait_p95_s": p95,
        "queue_wait_p99_s": p99,
        "queue_wait_mean_s": mean,
        "slo_misses": misses,
    }


def result_json(results: dict[str, Result]) -> dict[str, dict[str, Any]]:
    """The per-policy summary figures of ``result.json`` (JSON-ready: plain floats and ints)."""
    out: dict[str, dict[str, Any]] = {}
    for name, result in results.items():
        row: dict[str, Any] = {}
        for key, value in result.summary().items():
            row[key] = int(value) if isinstance(value, int) else round(float(value), 6)
        out[name] = row
    return out
