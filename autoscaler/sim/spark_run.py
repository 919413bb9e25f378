"""Drive a :class:`~autoscaler.sim.spark.SparkPool` with a :class:`~autoscaler.sim.spark.PoolPolicy`.

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
- ``killed``: task attempts killed by abrupt removal.

The series: ``arrival_rate`` is tasks becoming schedulable per second, ``queued`` pending tasks,
``running`` running tasks, ``desired`` the worker count set, ``current`` starting + ALIVE workers,
``billed`` every worker present (decommissioning ones included), ``queue_wait`` the oldest pending task's
wait. :class:`SparkResult` adds application-level figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autoscaler.sim.run import Result
from autoscaler.sim.spark import PoolConfig, PoolPolicy, SparkPool
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
    if not (math.isfinite(step_seconds) and step_seconds > 0):
        raise ValueError("step_seconds must be positive")
    end = float(load.duration if duration is None else duration)
    steps = math.ceil(end / step_seconds)
    sample_every = max(1, math.ceil((steps + 1) / max_samples))
    pool = SparkPool(load, config)
    mode = policy.scale_down
    period = float(policy.period_seconds)

    first = policy.desired(0.0, pool.view(0.0))
    initial = config.initial_workers
    pool.set_replicas(first if initial is None else initial, 0.0, mode, initial=True)
    if initial is not None and first != initial:
        pool.set_replicas(first, 0.0, mode)
    next_eval = period

    ts: list[float] = []
    rates: list[float] = []
    queued: list[int] = []
    running: list[int] = []
    desired: list[int] = []
    current: list[int] = []
    billed: list[int] = []
    head_wait: list[float] = []
    last_sample_t = 0.0
    last_arrived = 0

    for k in range(1, steps + 1):
        now = min(k * step_seconds, end)
        pool.advance(now)
        if now + 1e-9 >= next_eval:
            pool.set_replicas(policy.desired(now, pool.view(now)), now, mode)
            while next_eval <= now + 1e-9:
                next_eval += period
        if k % sample_every == 0 or k == steps:
            arrived = pool.arrived_tasks
            width = now - last_sample_t
            ts.append(now)
            rates.append((arrived - last_arrived) / width if width > 0 else 0.0)
            queued.append(pool.pending)
            running.append(pool.running)
            desired.append(pool.replicas)
            current.append(pool.member_workers())
            billed.append(pool.billed_workers())
            head_wait.append(pool.head_wait(now))
            last_sample_t, last_arrived = now, arrived

    waits = pool.started_waits()
    still = pool.pending_waits(end)
    slo = config.slo_seconds
    if len(waits):
        p50, p95, p99 = (float(x) for x in np.percentile(waits, [50, 95, 99]))
        mean = float(waits.mean())
    else:
        p50 = p95 = p99 = mean = 0.0
    done = np.asarray(pool.app_done, dtype=np.float64)
    finished = ~np.isnan(done)
    runtimes = done[finished] - load.app_arrivals[finished]
    if len(runtimes):
        r50, r95 = (float(x) for x in np.percentile(runtimes, [50, 95]))
    else:
        r50 = r95 = 0.0
    return SparkResult(
        policy=policy.name,
        worker_hours=pool.finish(end) / 3600.0,
        queue_wait_p50_s=p50,
        queue_wait_p95_s=p95,
        queue_wait_p99_s=p99,
        queue_wait_mean_s=mean,
        slo_misses=int(np.count_nonzero(waits > slo) + np.count_nonzero(still > slo)),
        scale_actions=pool.scale_actions,
        killed=pool.killed,
        arrived=pool.arrived_tasks,
        completed=pool.completed,
        queued_at_end=pool.pending,
        running_at_end=pool.running,
        duration_s=end,
        steps=steps,
        waits=waits,
        t=np.asarray(ts),
        arrival_rate=np.asarray(rates),
        queued=np.asarray(queued, dtype=np.float64),
        running=np.asarray(running, dtype=np.float64),
        desired=np.asarray(desired, dtype=np.float64),
        current=np.asarray(current, dtype=np.float64),
        billed=np.asarray(billed, dtype=np.float64),
        queue_wait=np.asarray(head_wait),
        apps_arrived=pool.arrived_apps,
        apps_completed=pool.apps_done,
        app_runtime_p50_s=r50,
        app_runtime_p95_s=r95,
    )
