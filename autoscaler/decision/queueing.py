"""Queue-aware sizing of a Trino cluster: Erlang C (M/M/c), Little's law, and what a queue means.

The model: queries arrive at rate ``λ`` (Poisson), each holds one of ``c`` *query slots* for a mean service
time ``S`` (exponential), and waits in one FCFS queue while every slot is busy. The offered load is
``A = λ·S``; with ``c > A`` the queue is stable and

- ``P(wait) = C(c, A)`` (Erlang C), computed with the stable recursion of REFERENCE.md §6
  (``B0 = 1, Bk = A·B(k−1) / (k + A·B(k−1))``, ``C = Bc / (1 − (A/c)(1 − Bc))``), which never forms
  ``A^c`` or ``c!`` and so holds for thousands of slots;
- ``E[Wq] = C·S / (c − A)`` and ``P(Wq > t) = C·exp(−(c − A)·t / S)``.

A Trino worker does not have hard query slots: ``slots_per_worker`` is the policy's statement of how many
queries one worker runs concurrently at acceptable speed, which turns slots into workers.

Trino queues a query only in a resource group (REFERENCE.md §3). A group at its ``hardConcurrencyLimit``
with queries queued is *limit-bound*: its limit is a fixed count, so more workers never start those queries.
:func:`trino_workers_needed` gives such groups exactly their limit in slots, sizes only the rest of the
load, and says so in the reason. Queries waiting for ``query-manager.required-workers`` are not queued at
all, so ``required_workers`` is the floor that wakes a cluster from zero.

Everything here is a pure function of its arguments; nothing reads a clock.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.resource_groups import GroupCounts, at_limit, split_queued

__all__ = [
    "GroupLoad",
    "QueueObservation",
    "Rates",
    "TrinoLoad",
    "TrinoSizing",
    "WaitTarget",
    "counter_increase",
    "erlang_c",
    "estimate_rates",
    "limit_bound_queued",
    "mean_wait",
    "servers_for_wait",
    "trino_workers_needed",
    "wait_exceeds",
    "wait_percentile",
]


def _check_load(servers: int, offered_load: float) -> None:
    if servers < 0:
        raise ValueError(f"servers must be >= 0, not {servers}")
    if not (math.isfinite(offered_load) and offered_load >= 0):
        raise ValueError(f"offered load must be a finite number >= 0, not {offered_load}")


def _erlang_b_next(k: int, offered_load: float, b_prev: float) -> float:
    """One step of the Erlang B recursion: ``B(k)`` from ``B(k−1)``."""
    ab = offered_load * b_prev
    return ab / (k + ab)


def _erlang_c_from_b(servers: int, offered_load: float, b: float) -> float:
    return b / (1.0 - (offered_load / servers) * (1.0 - b))


def erlang_c(servers: int, offered_load: float) -> float:
    """``P(wait)``: the probability that an arriving query finds every one of ``servers`` slots busy.

    1.0 when ``offered_load >= servers`` (the queue grows without bound, everyone waits), 0.0 without load.
    """
    _check_load(servers, offered_load)
    if offered_load == 0:
        return 0.0
    if offered_load >= servers:
        return 1.0
    b = 1.0
    for k in range(1, servers + 1):
        b = _erlang_b_next(k, offered_load, b)
    return _erlang_c_from_b(servers, offered_load, b)


def _check_service(service_seconds: float) -> None:
    if not (math.isfinite(service_seconds) and service_seconds > 0):
        raise ValueError(f"service time must be a positive finite number of seconds, not {service_seconds}")


def mean_wait(servers: int, offered_load: float, service_seconds: float) -> float:
    """``E[Wq]`` in seconds: the mean time a query waits in the queue (``inf`` when unstable)."""
    _check_service(service_seconds)
    c = erlang_c(servers, offered_load)
    if c == 0.0:
        return 0.0
    if offered_load >= servers:
        return math.inf
    return c * service_seconds / (servers - offered_load)


def wait_exceeds(servers: int, offered_load: float, service_seconds: float, t: float) -> float:
    """``P(Wq > t)``: the share of queries that wait in the queue longer than ``t`` seconds."""
    _check_service(service_seconds)
    c = erlang_c(servers, offered_load)
    if offered_load >= servers and offered_load > 0:
        return 1.0
    if t < 0:
        return 1.0
    return c * math.exp(-(servers - offered_load) * t / service_seconds)


def _check_quantile(q: float) -> None:
    if not (0.0 < q < 1.0):
        raise ValueError(f"percentile must be a fraction strictly between 0 and 1 (0.95 for p95), not {q}")


def _quantile_from_c(c: float, servers: int, offered_load: float, service_seconds: float, q: float) -> float:
    tail = 1.0 - q
    if c <= tail:
        return 0.0
    if offered_load >= servers:
        return math.inf
    return service_seconds / (servers - offered_load) * math.log(c / tail)


def wait_percentile(servers: int, offered_load: float, service_seconds: float, q: float) -> float:
    """The ``q``-quantile of queue wait in seconds (``q = 0.95`` is p95).

    Wait is 0 with probability ``1 − P(wait)``, so the quantile is 0 whenever ``P(wait) <= 1 − q``;
    otherwise it solves ``C·exp(−(c − A)·t / S) = 1 − q``. ``inf`` when the queue is unstable.
    """
    _check_service(service_seconds)
    _check_quantile(q)
    return _quantile_from_c(erlang_c(servers, offered_load), servers, offered_load, service_seconds, q)


def _search_bound(offered_load: float) -> int:
    # Square-root staffing c ≈ A + β√A with β ≈ 3.3 reaches P(wait) ≈ 1e-3; ten times that margin plus a
    # constant covers every sensible target, and a bound keeps a nonsense target from looping forever.
    return math.floor(offered_load) + 1 + math.ceil(30.0 * math.sqrt(offered_load)) + 100


def servers_for_wait(
    arrival_rate: float, service_seconds: float, target_wait_seconds: float, percentile: float
) -> int:
    """The fewest slots ``c`` whose ``percentile`` of queue wait is at most ``target_wait_seconds``.

    ``target_wait_seconds = 0`` asks for ``P(wait) <= 1 − percentile``. No load needs no slot. The search
    starts at the first stable count ``floor(A) + 1`` and extends the Erlang B recursion one slot at a
    time, so it costs O(c); it stops at a generous bound (``A + 30√A + 100``) and returns that bound if even
    it misses the target (only targets with ``percentile`` within ~1e-12 of 1 get there).
    """
    if not (math.isfinite(arrival_rate) and arrival_rate >= 0):
        raise ValueError(f"arrival rate must be a finite number >= 0, not {arrival_rate}")
    _check_service(service_seconds)
    _check_quantile(percentile)
    if not (math.isfinite(target_wait_seconds) and target_wait_seconds >= 0):
        raise ValueError(f"target wait must be a finite number of seconds >= 0, not {target_wait_seconds}")
    offered = arrival_rate * service_seconds
    if offered == 0:
        return 0
    start = math.floor(offered) + 1
    bound = _search_bound(offered)
    b = 1.0
    for k in range(1, start):
        b = _erlang_b_next(k, offered, b)
    for c in range(start, bound + 1):
        b = _erlang_b_next(c, offered, b)
        wait = _quantile_from_c(_erlang_c_from_b(c, offered, b), c, offered, service_seconds, percentile)
        if wait <= target_wait_seconds:
            return c
    return bound


# --------------------------------------------------------------------------------------------------------
# Estimating λ and S from what the adapter serves
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueObservation:
    """One poll of a Trino cluster at ``at`` (Unix seconds).

    ``completed_total`` and ``started_total`` are monotonic counters when the source has them, else ``None``;
    a counter that goes down is taken as a restart of the coordinator. With Trino's ``QueryManager``
    semantics, ``started_total`` counts queries that reached RUNNING and ``completed_total`` every query
    that ended, finished or failed, including those that failed or were cancelled while queued.
    """

    at: float
    queued: float
    running: float
    completed_total: float | None = None
    started_total: float | None = None
    cpu_seconds_total: float | None = None


@dataclass(frozen=True, slots=True)
class Rates:
    """What :func:`estimate_rates` could tell about the load over its window.

    ``service_seconds`` is ``None`` when it cannot be estimated (no counter and no hint, or no query
    finished in the window); ``offered_load`` is then the carried load ``mean_running`` (a lower bound when
    queries queued). ``observed_wait_seconds`` is Little's ``Wq = Lq / λ`` (``None`` without arrivals).
    """

    arrival_rate: float
    service_seconds: float | None
    offered_load: float
    throughput: float | None
    mean_running: float
    mean_queued: float
    observed_wait_seconds: float | None
    span_seconds: float
    samples: int
    method: str


def counter_increase(values: Sequence[float]) -> float:
    """Sum of increases of a counter, treating a decrease as a reset to 0 (as Prometheus' ``increase``)."""
    total = 0.0
    for prev, cur in itertools.pairwise(values):
        total += cur - prev if cur >= prev else cur
    return total


def _time_average(times: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoid time-average of a gauge sampled at ``times``."""
    area = 0.0
    for i in range(1, len(times)):
        area += 0.5 * (values[i] + values[i - 1]) * (times[i] - times[i - 1])
    return area / (times[-1] - times[0])


def estimate_rates(
    history: Sequence[QueueObservation],
    now: float,
    window_seconds: float,
    *,
    service_seconds_hint: float | None = None,
    min_span_seconds: float = 30.0,
) -> Rates | None:
    """Arrival rate ``λ``, mean service time ``S`` and offered load ``A`` over ``[now − window, now]``.

    The estimator, by what the history holds:

    - **start counter** (preferred when both counters are there): ``X = Δstarted / Δt`` is the rate queries
      enter service, so ``S = mean(running) / X`` (Little's law on the running queries, ``L = λW``) and
      ``λ = X + Δqueued / Δt``. Trino's completion counter also counts queries that failed or were
      cancelled in the queue, which never used a slot: under rejections it would make ``S`` too short.
    - **completion counter**: throughput ``X = Δcompleted / Δt``; ``S = mean(running) / X``; arrivals by
      conservation, ``λ = X + Δ(queued + running) / Δt`` (what came in either ended or is still there).
    - **counts only**: ``λ = mean(running) / S_hint + Δqueued / Δt`` with a configured ``service_seconds_hint``;
      without a hint ``S`` stays unknown and ``A`` falls back to the carried load ``mean(running)``.
      A counter that did not move in the window (queries longer than the window) tells nothing about
      ``λ`` either, so it is read the same way.

    ``A = λ·S`` when ``S`` is known. Failure modes, all visible in the result rather than hidden:

    - fewer than two observations in the window, or a span under ``min_span_seconds`` → ``None``
      (too little history to tell a rate from noise);
    - no query finished (or started) in the window while some ran → ``S`` is ``None``: the queries
      are longer than the window, and a longer window or the hint is needed;
    - a sliding window over a transient (a burst that just started) under-states ``λ`` by averaging;
      the reactive capacity signal covers that case;
    - ``λ`` below 0 from a shrinking system is clamped to 0 (the window saw a drain, not negative arrivals).
    """
    if window_seconds <= 0:
        raise ValueError(f"window must be > 0 seconds, not {window_seconds}")
    points = sorted((o for o in history if now - window_seconds <= o.at <= now), key=lambda o: o.at)
    if len(points) < 2:
        return None
    times = [o.at for o in points]
    span = times[-1] - times[0]
    if span < min_span_seconds or span <= 0:
        return None
    mean_running = _time_average(times, [o.running for o in points])
    mean_queued = _time_average(times, [o.queued for o in points])
    first, last = points[0], points[-1]
    d_queued = last.queued - first.queued
    d_system = d_queued + (last.running - first.running)

    completed = [o.completed_total for o in points]
    started = [o.started_total for o in points]
    throughput: float | None
    if all(v is not None for v in started):
        throughput = counter_increase([v for v in started if v is not None]) / span
        arrival = throughput + d_queued / span
        method = "start counter (Little's law on running queries)"
    elif all(v is not None for v in completed):
        throughput = counter_increase([v for v in completed if v is not None]) / span
        arrival = throughput + d_system / span
        method = "completion counter (Little's law on running queries)"
    else:
        throughput = None
        arrival = 0.0
        method = "running and queued counts"

    service: float | None
    if throughput:
        # No sample saw a running query (short, rare queries): the service time is unknown, not 0.
        service = mean_running / throughput if mean_running > 0 else None
        if service is None and service_seconds_hint is not None:
            service = service_seconds_hint
    else:
        # Without a counter, or with one that did not move (every query outlived the window), λ by
        # conservation would miss the queries still running and size for almost nothing.
        service = service_seconds_hint
        if service is not None:
            arrival = mean_running / service + d_queued / span
            method += " with the configured service time"
    if service is not None:
        _check_service(service)
    arrival = max(0.0, arrival)
    offered = arrival * service if service is not None else mean_running
    observed_wait = mean_queued / arrival if arrival > 0 else None
    return Rates(
        arrival_rate=arrival,
        service_seconds=service,
        offered_load=offered,
        throughput=throughput,
        mean_running=mean_running,
        mean_queued=mean_queued,
        observed_wait_seconds=observed_wait,
        span_seconds=span,
        samples=len(points),
        method=method,
    )


# --------------------------------------------------------------------------------------------------------
# Trino workers
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupLoad:
    """One resource group now: dotted ``id`` (``global.adhoc``), counts and its ``hardConcurrencyLimit``."""

    id: str
    queued: int
    running: int
    hard_concurrency_limit: int

    @property
    def limit_bound(self) -> bool:
        return at_limit(self.queued, self.running, self.hard_concurrency_limit)


def limit_bound_queued(groups: Sequence[GroupLoad]) -> tuple[int, tuple[GroupLoad, ...]]:
    """Queued queries that more workers would not start, and the limit-bound groups holding them.

    Counts are taken from leaf groups (a parent's counts include its children's); a leaf's queued queries
    are limit-bound when the leaf or any listed ancestor is at its limit with a queue: the formula of the
    adapter's ``trino_capacity_queued_queries`` (:func:`core.resource_groups.split_queued`), a group being a
    leaf when no other listed id nests under it.
    """
    counts = [
        GroupCounts(
            tuple(g.id.split(".")),
            g.queued,
            g.running,
            g.hard_concurrency_limit,
            leaf=not any(other.id.startswith(g.id + ".") for other in groups),
        )
        for g in groups
    ]
    return split_queued(counts).held, tuple(g for g in groups if g.limit_bound)


@dataclass(frozen=True, slots=True)
class TrinoLoad:
    """The state of one Trino cluster as the engine sees it now.

    ``rates`` comes from :func:`estimate_rates` (``None`` when history is too short); ``groups`` are the
    polled resource groups (empty when not polled: then no queue is known to be limit-bound).
    """

    running: int
    queued: int
    required_workers: int = 0
    rates: Rates | None = None
    groups: Sequence[GroupLoad] = ()


@dataclass(frozen=True, slots=True)
class WaitTarget:
    """What a QueueWait metric asks of a Trino cluster (the policy model's section is
    :class:`autoscaler.policy.models.TrinoTarget`: where the cluster is).

    ``target_wait_seconds`` at ``percentile`` (0.95 = p95) is the queue-wait objective; ``0`` seconds asks
    for ``P(wait) <= 1 − percentile``. ``slots_per_worker`` is how many queries one worker runs at once at
    acceptable speed. ``queries_per_worker``, when set, adds the reactive capacity signal
    ``(running + queued that workers would start) / queries_per_worker``.
    """

    target_wait_seconds: float
    percentile: float
    slots_per_worker: int
    queries_per_worker: float | None = None

    def __post_init__(self) -> None:
        _check_quantile(self.percentile)
        if self.slots_per_worker < 1:
            raise ValueError(f"slots per worker must be >= 1, not {self.slots_per_worker}")
        if not (math.isfinite(self.target_wait_seconds) and self.target_wait_seconds >= 0):
            raise ValueError(
                f"target wait must be a finite number of seconds >= 0, not {self.target_wait_seconds}"
            )
        if self.queries_per_worker is not None and not (
            math.isfinite(self.queries_per_worker) and self.queries_per_worker > 0
        ):
            raise ValueError(f"queries per worker must be > 0, not {self.queries_per_worker}")


@dataclass(frozen=True, slots=True)
class TrinoSizing:
    """Workers needed and why; the intermediate figures are ``None`` when that signal had no input.

    ``signal`` names the signal that won (``queue-model``, ``capacity``, ``required-workers``, ``idle``).
    ``arrival_rate``/``service_seconds``/``offered_load`` describe the load sized by Erlang C (after
    setting limit-bound groups apart); ``p_wait`` and ``predicted_wait_seconds`` hold at the returned
    workers' slots (excluding the limit-bound groups' slots).
    """

    workers: int
    reason: str
    limit_bound: bool
    signal: str
    slots: int | None
    arrival_rate: float | None
    service_seconds: float | None
    offered_load: float | None
    p_wait: float | None
    predicted_wait_seconds: float | None
    limit_bound_queued: int
    limit_bound_slots: int


def trino_workers_needed(obs: TrinoLoad, target: WaitTarget) -> TrinoSizing:
    """Workers that keep the queue wait of ``obs`` within ``target``; signals combine by max.

    1. **Queue model** (needs ``obs.rates`` with a service time): limit-bound groups get their
       ``hardConcurrencyLimit`` in slots; the rest of the offered load, ``A × (share of the current
       population outside limit-bound groups)``, gets the fewest slots meeting the wait target by Erlang C;
       workers = ``ceil(slots / slots_per_worker)``.
    2. **Capacity** (with ``queries_per_worker``): ``ceil((running + queued that workers would start) /
       queries_per_worker)``; without a usable queue model and without ``queries_per_worker`` the current
       population is packed into slots instead, so a cluster is never sized blind.
    3. **Required workers**: at least ``required_workers`` (scale from zero).

    Queued queries held by a concurrency limit never raise the count; the reason says how many and where.
    Bounds, stabilisation and the forecast floor are the engine's business, not this function's.
    """
    held, bound_groups = limit_bound_queued(obs.groups)
    held = min(held, obs.queued)
    free_queued = obs.queued - held
    lb_slots = sum(g.hard_concurrency_limit for g in bound_groups if not _has_bound_ancestor(g, bound_groups))
    lb_running = sum(g.running for g in bound_groups if not _has_bound_ancestor(g, bound_groups))
    spw = target.slots_per_worker
    notes: list[str] = []
    candidates: list[tuple[int, str, str]] = []

    slots: int | None = None
    arrival = service = offered = p_wait = predicted = None
    rates = obs.rates
    if rates is not None and rates.service_seconds is not None:
        service = rates.service_seconds
        population = obs.running + obs.queued
        lb_population = lb_running + held
        free_share = 1.0 if population <= 0 else max(0.0, 1.0 - lb_population / population)
        offered = rates.offered_load * free_share
        arrival = offered / service
        free_slots = servers_for_wait(arrival, service, target.target_wait_seconds, target.percentile)
        slots = free_slots + lb_slots
        workers_q = math.ceil(slots / spw)
        have = workers_q * spw - lb_slots
        p_wait = erlang_c(have, offered) if have >= 0 else 1.0
        predicted = wait_percentile(max(have, 0), offered, service, target.percentile) if offered > 0 else 0.0
        pct = _pct(target.percentile)
        candidates.append(
            (
                workers_q,
                "queue-model",
                f"queue model: λ={arrival:.3g}/s × S={service:.3g}s → A={offered:.3g}; {free_slots} slots keep "
                f"{pct} queue wait ≤ {target.target_wait_seconds:g}s (P(wait)={p_wait:.3f})"
                + (f", plus {lb_slots} slots for limit-bound groups" if lb_slots else "")
                + f" → {workers_q} workers of {spw} slots",
            )
        )
    elif rates is None:
        notes.append("queue model skipped: too little history to estimate rates")
    else:
        notes.append("queue model skipped: no service time (no query finished in the window, no hint)")

    demand = obs.running + free_queued
    if target.queries_per_worker is not None:
        workers_c = math.ceil(demand / target.queries_per_worker - 1e-9) if demand > 0 else 0
        candidates.append(
            (
                workers_c,
                "capacity",
                f"capacity: {obs.running} running + {free_queued} queued that workers would start "
                f"at {target.queries_per_worker:g} per worker → {workers_c} workers",
            )
        )
    elif slots is None:
        workers_c = math.ceil(demand / spw) if demand > 0 else 0
        candidates.append(
            (
                workers_c,
                "capacity",
                f"capacity: {obs.running} running + {free_queued} queued that workers would start "
                f"in slots of {spw} per worker → {workers_c} workers",
            )
        )

    if obs.required_workers > 0:
        candidates.append(
            (
                obs.required_workers,
                "required-workers",
                f"required workers: queries wait for {obs.required_workers} workers",
            )
        )

    if held > 0:
        names = ", ".join(
            f"{g.id} (running {g.running} of hardConcurrencyLimit {g.hard_concurrency_limit}, {g.queued} queued)"
            for g in bound_groups
        )
        notes.append(
            f"{held} queued queries are held by a concurrency limit in {names}: "
            "more workers would not start them, so they do not count"
        )

    if not candidates or max(c[0] for c in candidates) == 0:
        workers, signal, why = 0, "idle", "no load: no worker needed"
    else:
        workers, signal, why = max(candidates, key=lambda c: c[0])
        others = [c[2] for c in candidates if c[1] != signal]
        if others:
            why += "; also " + "; ".join(others)
    reason = "; ".join([why, *notes])
    return TrinoSizing(
        workers=workers,
        reason=reason,
        limit_bound=held > 0,
        signal=signal,
        slots=slots,
        arrival_rate=arrival,
        service_seconds=service,
        offered_load=offered,
        p_wait=p_wait,
        predicted_wait_seconds=predicted,
        limit_bound_queued=held,
        limit_bound_slots=lb_slots,
    )


def _has_bound_ancestor(group: GroupLoad, bound: Sequence[GroupLoad]) -> bool:
    # A limit-bound parent caps its children too: count the outermost bound group's limit only once.
    return any(group.id.startswith(other.id + ".") for other in bound)


def _pct(q: float) -> str:
    return f"p{q * 100:g}"
