"""Sizing a Trino cluster on work: CPU-seconds arriving, shared by the workers' cores, queued by a limit.

Trino does not give a query a slot on one worker: its work (CPU-seconds, what Trino's
``QueryManager.ConsumedCpuTimeSecs`` counts) spreads over every active worker, so it finishes sooner on a
bigger cluster, and queries queue only where a resource group's ``hardConcurrencyLimit`` (or memory) holds
them. The model, with W workers of c cores, queries of mean work w̄ arriving at λ per second, and a query
alone keeping at most a share u of the cluster's cores busy (I/O, exchanges):

- with n queries running the cluster completes work at ``c·W·min(n·u, 1)`` CPU-seconds per second, so
  queries leave at ``D(n) = c·W·min(n·u, 1) / w̄`` per second (processor sharing, Markovian approximation);
- at most L run (the concurrency limit); the rest wait in order. The number in the system is a birth-death
  chain with births λ and deaths ``D(min(n, L))``; beyond L it is geometric with ratio
  ``r = λ / D(L)``, so (PASTA) an arriving query waits with probability ``P(N ≥ L)`` and then, for
  exponential work, for an exponential time of rate ``D(L) − λ``. Query work is heavy-tailed: a full
  cluster then empties its queue more slowly (its slots are held by the long queries), so the rate is
  divided by :data:`TAIL_FACTOR`: ``P(wait > t) = P(N ≥ L)·exp(−(D(L) − λ)·t / TAIL_FACTOR)``. Against the
  work model of :mod:`autoscaler.sim.trino_work`, ``P(N ≥ L)`` matches within a few percent and the
  factor keeps lognormal work of σ 1.5 on the safe side (tests/autoscaler/decision/test_work_sizing.py);
- without a limit nothing queues; the utilisation ``λ·w̄ / (c·W)`` is then kept at or below
  :data:`MAX_UTILISATION`, which also bounds how slow queries get.

:func:`workers_for_work` returns the fewest workers meeting a wait percentile target. :func:`query_share`
learns u from what the cluster shows: the CPU rate of one running query ``w̄ / R`` (R its mean run time)
over the cluster's cores is u while queries do not fill the cores, and ``1/n`` once they do, so only
unsaturated observations teach it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from autoscaler.decision.queueing import GroupLoad, QueueObservation, counter_increase

__all__ = [
    "DEFAULT_SHARE",
    "MAX_UTILISATION",
    "TAIL_FACTOR",
    "WorkLoad",
    "WorkSizing",
    "concurrency_limit",
    "cpu_per_query",
    "query_share",
    "wait_exceeds",
    "workers_for_work",
]

#: Highest utilisation planned for when no concurrency limit queues queries (nothing would wait, but every
#: query would run ``1 / (1 − ρ)`` times slower than alone on average).
MAX_UTILISATION = 0.9
#: A query's share of the cores before the cluster has shown one: small, which plans for more queries
#: sharing the cores at once and so for longer runs (the cautious side).
DEFAULT_SHARE = 0.1
#: How much more slowly than exponential work a heavy-tailed load empties a full cluster's queue.
TAIL_FACTOR = 4.0
#: States of the chain below the limit summed exactly; the tail beyond is geometric.
_MAX_STATES = 100_000


@dataclass(frozen=True, slots=True)
class WorkLoad:
    """What arrives: ``arrival_rate`` queries/s of ``cpu_per_query`` CPU-seconds on average; one query
    alone keeps a share ``share`` of the cluster's cores busy; ``limit`` queries may run at once (None: no
    limit)."""

    arrival_rate: float
    cpu_per_query: float
    share: float
    limit: int | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.arrival_rate) and self.arrival_rate >= 0):
            raise ValueError(f"arrival rate must be >= 0, not {self.arrival_rate}")
        if not (math.isfinite(self.cpu_per_query) and self.cpu_per_query > 0):
            raise ValueError(f"CPU per query must be > 0 s, not {self.cpu_per_query}")
        if not 0 < self.share <= 1:
            raise ValueError(f"a query's share of the cores must be in (0, 1], not {self.share}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"the concurrency limit must be >= 1, not {self.limit}")

    @property
    def cpu_rate(self) -> float:
        """CPU-seconds arriving per second."""
        return self.arrival_rate * self.cpu_per_query


def _departures(n: int, workers: int, cores: float, load: WorkLoad) -> float:
    return cores * workers * min(n * load.share, 1.0) / load.cpu_per_query


def wait_exceeds(workers: int, cores_per_worker: float, load: WorkLoad, t: float) -> float:
    """P(a query waits longer than ``t`` s) on ``workers`` workers (1.0 when the queue would grow)."""
    if load.arrival_rate <= 0:
        return 0.0
    if workers <= 0:
        return 1.0
    if load.limit is None:
        return 0.0
    lam = load.arrival_rate
    full = _departures(load.limit, workers, cores_per_worker, load)
    if lam >= full:
        return 1.0
    # π_n ∝ Π λ/D(k) for n ≤ L, in logs to stay finite; the geometric tail beyond L sums to π_L / (1 − r).
    steps = min(load.limit, _MAX_STATES)
    log_terms = [0.0]
    for k in range(1, steps + 1):
        log_terms.append(log_terms[-1] + math.log(lam / _departures(k, workers, cores_per_worker, load)))
    top = max(log_terms)
    below = sum(math.exp(x - top) for x in log_terms[:-1])
    at_limit = math.exp(log_terms[-1] - top)
    r = lam / full
    tail = at_limit / (1.0 - r)
    p_queue = tail / (below + tail)
    return p_queue * math.exp(-(full - lam) * max(t, 0.0) / TAIL_FACTOR)


@dataclass(frozen=True, slots=True)
class WorkSizing:
    """Workers needed, the utilisation and P(wait > target) there, and why."""

    workers: int
    utilisation: float
    p_exceed: float
    reason: str


def workers_for_work(
    load: WorkLoad,
    cores_per_worker: float,
    target_wait_seconds: float,
    percentile: float,
    *,
    max_workers: int = 10_000,
) -> WorkSizing:
    """The fewest workers (at most ``max_workers``) whose ``percentile`` queue wait is at most
    ``target_wait_seconds`` and whose utilisation is at most :data:`MAX_UTILISATION` without a limit."""
    if not 0 < percentile < 1:
        raise ValueError(f"percentile must be in (0, 1), not {percentile}")
    if not cores_per_worker > 0:
        raise ValueError(f"cores per worker must be > 0, not {cores_per_worker}")
    allowed = 1.0 - percentile
    if load.arrival_rate <= 0:
        return WorkSizing(0, 0.0, 0.0, "no queries arriving: no worker needed for work")
    # The utilisation bound is the least any answer needs; search upward from it.
    floor = load.cpu_rate / cores_per_worker
    start = max(1, math.ceil(floor / MAX_UTILISATION - 1e-9) if load.limit is None else math.floor(floor) + 1)
    workers = start
    p = wait_exceeds(workers, cores_per_worker, load, target_wait_seconds)
    while p > allowed and workers < max_workers:
        workers += 1
        p = wait_exceeds(workers, cores_per_worker, load, target_wait_seconds)
    utilisation = floor / workers
    limit = "no concurrency limit" if load.limit is None else f"at most {load.limit} running"
    reason = (
        f"work: λ={load.arrival_rate:.3g}/s × {load.cpu_per_query:.3g} CPU-s = {load.cpu_rate:.3g} cores busy, "
        f"a query alone using {load.share:.2g} of the cores, {limit} → {workers} workers of "
        f"{cores_per_worker:g} cores ({utilisation:.0%} busy, P(wait > {target_wait_seconds:g}s)={p:.3f})"
    )
    return WorkSizing(workers, utilisation, p, reason)


def query_share(
    cpu_per_query: float, run_seconds: float, mean_running: float, workers: int, cores_per_worker: float
) -> float | None:
    """The share of the cluster's cores one query keeps busy, as observed; None when the observation
    cannot teach it (nothing ran, or queries filled the cores so each got only ``1/n``)."""
    if run_seconds <= 0 or workers <= 0 or cores_per_worker <= 0 or cpu_per_query <= 0:
        return None
    share = cpu_per_query / run_seconds / (workers * cores_per_worker)
    if mean_running * share >= 0.8:
        return None
    return min(1.0, share)


def cpu_per_query(history: Sequence[QueueObservation]) -> float | None:
    """Mean CPU-seconds of the queries that ended over ``history``: the CPU counter's increase over the
    completion counter's (None without both counters, or when neither moved)."""
    points = [o for o in history if o.completed_total is not None and o.cpu_seconds_total is not None]
    if len(points) < 2:
        return None
    ended = counter_increase([o.completed_total for o in points if o.completed_total is not None])
    cpu = counter_increase([o.cpu_seconds_total for o in points if o.cpu_seconds_total is not None])
    if ended <= 0 or cpu <= 0:
        return None
    return cpu / ended


def concurrency_limit(groups: Sequence[GroupLoad]) -> int | None:
    """How many queries may run at once: the sum of the root groups' ``hardConcurrencyLimit`` (None when
    no group was polled)."""
    roots = [g for g in groups if "." not in g.id]
    if not roots:
        return None
    return max(1, sum(g.hard_concurrency_limit for g in roots))
