"""Drive a :class:`~autoscaler.sim.spark.PoolModel` with a :class:`~autoscaler.sim.spark.PoolPolicy`.

The loop is :func:`autoscaler.sim.run.simulate`'s: simulated time advances in ``step_seconds`` steps,
the pool processes its events at their exact instants in between, the policy is asked at every step
boundary that reaches its next period and its answer is applied at once; one sample of the time series
is kept every few steps.

The figures are those of :class:`autoscaler.sim.run.Result`, with a *task* in place of a query:

- ``worker_hours``: every worker from the moment it was requested until it left (or the end of the run);
- ``queue_wait_p50_s`` / ``p95`` / ``p99``: over the waits of every task whose final attempt started,
  from the moment its stage was submitted (0 without any);
- ``slo_misses``: started tasks that waited longer than ``slo_seconds``, plus tasks still pending at the
  end that have already waited longer;
- ``scale_actions``: how many times the worker count set on the pool changed;
- ``killed``: task attempts killed by abrupt removal;
- ``run_time_p95_s``: p95 of the completed tasks' final attempts (start to end);
- ``latency_p95_s``: p95 of the finished *applications'* run time (arrival to the end of the last stage),
  the latency a Spark user sees: a pool that is too small, or executors that arrive late, show there even
  when single tasks wait little (the same figure as ``app_runtime_p95_s``).

The series: ``arrival_rate`` is tasks becoming schedulable per second, ``queued`` pending tasks,
``running`` running tasks, ``desired`` the worker count set, ``current`` starting + ALIVE workers,
``billed`` every worker present (decommissioning ones included), ``queue_wait`` the oldest pending task's
wait. :class:`SparkResult` adds application-level figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autoscaler.sim.run import Result, Sample, step_through, wait_figures
from autoscaler.sim.spark import PoolConfig, PoolModel, PoolPolicy
from autoscaler.sim.spark_load import SparkLoad

__all__ = ["SparkResult", "simulate_pool"]


@dataclass(frozen=True, eq=False)
class SparkResult(Result):
    """A :class:`~autoscaler.sim.run.Result` of a pool run plus its applications: how many arrived and
    finished, and the p50/p95 of the finished ones' run time (arrival to the end of the last stage)."""

    apps_arrived: int
    apps_completed: int
    app_runtime_p50_s: float
    app_runtime_p95_s: float


def simulate_pool(
    load: SparkLoad,
    policy: PoolPolicy,
    config: PoolConfig,
    step_seconds: float = 5.0,
    duration: float | None = None,
    *,
    max_samples: int = 2000,
) -> SparkResult:
    """Run ``policy`` on ``load`` for ``duration`` (default the load's) seconds; deterministic."""
    end = float(load.duration if duration is None else duration)
    pool = PoolModel(load, config)
    mode = policy.scale_down

    first = policy.desired(0.0, pool.view(0.0))
    initial = config.initial_workers
    pool.set_replicas(first if initial is None else initial, 0.0, mode, initial=True)
    if initial is not None and first != initial:
        pool.set_replicas(first, 0.0, mode)

    def sample(now: float) -> Sample:
        return Sample(
            pool.arrived_tasks,
            pool.pending,
            pool.running,
            pool.replicas,
            pool.member_workers(),
            pool.billed_workers(),
            pool.head_wait(now),
        )

    trace = step_through(
        advance=pool.advance,
        decide=lambda now: pool.set_replicas(policy.desired(now, pool.view(now)), now, mode),
        sample=sample,
        end=end,
        step_seconds=step_seconds,
        period=float(policy.period_seconds),
        max_samples=max_samples,
    )
    waits = pool.started_waits()
    figures = wait_figures(waits, pool.pending_waits(end), config.slo_seconds)
    done = np.asarray(pool.app_done, dtype=np.float64)
    finished = ~np.isnan(done)
    runtimes = done[finished] - load.app_arrivals[finished]
    if len(runtimes):
        r50, r95 = (float(x) for x in np.percentile(runtimes, [50, 95]))
    else:
        r50 = r95 = 0.0
    start = np.asarray(pool.task_start, dtype=np.float64)
    ended = np.asarray(pool.task_end, dtype=np.float64)
    complete = ~np.isnan(ended)
    task_p95 = float(np.percentile(ended[complete] - start[complete], 95)) if complete.any() else 0.0
    return SparkResult(
        policy=policy.name,
        worker_hours=pool.finish(end) / 3600.0,
        **figures,
        scale_actions=pool.scale_actions,
        killed=pool.killed,
        run_time_p95_s=task_p95,
        latency_p95_s=r95,
        arrived=pool.arrived_tasks,
        completed=pool.completed,
        queued_at_end=pool.pending,
        running_at_end=pool.running,
        duration_s=end,
        waits=waits,
        **trace.series(),
        apps_arrived=pool.arrived_apps,
        apps_completed=pool.apps_done,
        app_runtime_p50_s=r50,
        app_runtime_p95_s=r95,
    )
