"""The simulator's work model of a Trino cluster, the benchmark's default (``--model work``).

A Trino cluster as Trino is: queries are CPU work spread over every active worker, no query slots. One of
the project's three Trino cluster models: the simulator's other is the slot model
(:class:`autoscaler.sim.trino.SlotCluster`, ``--model slots``), and the sandbox's emulated coordinator and
workers (:class:`lab.sandbox.trino_model.SlotCluster`: protocol and state machines, for the demo and
contract tests) are a third. Where their assumptions coincide the three give every query the same start
and end: ``tests/autoscaler/sim/test_trino_models_agree.py``.

Model (see :mod:`autoscaler.sim.load` for the queries; here a query's ``service`` is its **work**, in
CPU-seconds):

- **Processor sharing over the whole cluster.** A Trino query has tasks on every worker, so the running
  queries share the cores of all *active* workers equally. One query alone keeps at most a share
  ``query_parallelism`` (u) of each worker's cores busy (I/O waits, exchanges). With W active workers of c
  cores and n running queries, every running query progresses at ``c·W·min(u, 1/n)`` CPU-seconds per
  second, and ``c·W·min(n·u, 1)`` cores are busy. A query finishes sooner on a bigger cluster; with u = 1
  a static cluster is an M/G/1 processor-sharing queue of speed c·W. There are no query slots
  (:class:`~autoscaler.sim.trino.ClusterView` reports ``slots_per_worker`` 1).
- **One virtual clock.** Since every running query progresses at the same rate, the cluster keeps one
  clock V (dV/dt = that rate; 0 with no active worker or no query). A query started when V read V0
  finishes when V reaches ``V0 + work``; the finish tags sit in one heap and the next completion instant
  is predicted from the smallest tag and the current rate, re-predicted whenever the rate changes.
- **Admission.** One FIFO queue per resource group; a group starts its head query while it runs fewer
  than its ``hardConcurrencyLimit`` and its running queries' memory is below its ``softMemoryLimit``
  (absolute, or a share of the active workers' memory: see
  :func:`~autoscaler.sim.trino.parse_soft_memory_limit`). The eligible head that arrived first starts
  first. A query reserves its memory (``Load.memory``, 0 GB without) in the cluster from start to end and
  starts only if the cluster's free memory (active workers × ``memory_per_worker_gb`` minus what running
  queries reserve) holds it; when the first head does not fit, the next eligible group's head that fits
  starts instead (a group's own queue stays FIFO). Real Trino would start such a query and show it
  RUNNING, fully blocked on memory; the model counts that time as waiting. No query starts while fewer
  than ``required_workers`` workers are active (Trino's ``query-manager.required-workers``: the query
  sits in WAITING_FOR_RESOURCES, counted here as queued).
- **Workers** are *starting* for ``startup_seconds`` after they are requested, then *active*, and billed
  from request until they exit (or the end of the run). Scale-down removes starting workers first
  (newest first, at once), then active workers, newest first, by mode:

  - ``abrupt``: the pod is deleted and exits at once; since every running query has tasks on every
    active worker, **every running query fails** (counted as killed).
  - ``shutdown`` (the Helm chart's ``worker.gracefulShutdown``, PUT ``SHUTTING_DOWN`` from a preStop
    hook): from t0 the worker takes no new work and its cores leave the pool at once; Q0 are the queries
    running at t0. Trino waits the grace period G, then until every Q0 query has finished (or failed),
    then G again, and exits: ``exit = max(t0 + G, last Q0 completion) + G``. Kubernetes kills the pod at
    ``t0 + T`` (``termination_grace_seconds``) if it is still there, and every Q0 query still running then
    fails (counted as killed; these are not in :meth:`WorkCluster.set_replicas`' return value but in
    ``killed`` and ``killed_queries``). One-way: a scale-up requests new workers.
  - ``drain`` (Trino 468+ ``DRAINING → DRAINED``, then the controller deletes the pod): the same exit
    rule, no kill, and reversible: a scale-up first returns draining workers to active (their cores
    rejoin the pool at once; those that would exit last first) before requesting new ones.

  A winding-down worker's cores have left the pool, so with no active worker the clock stops: its Q0
  queries make no progress and it waits (a draining worker indefinitely) until workers become active.

Event times are exact (arrivals, completions, workers becoming active, grace and termination timers);
only the controller's decisions are tied to the caller's steps. At one instant completions come first,
then timers and start-ups, then arrivals.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from autoscaler.sim.load import FloatArray, Load
from autoscaler.sim.trino import (
    ABRUPT,
    DRAIN,
    SHUTDOWN,
    ClusterView,
    ScaleDownMode,
    SoftMemoryLimit,
    parse_soft_memory_limit,
)

__all__ = ["WorkCluster", "WorkConfig"]

# Worker states (a worker that exits is dropped from the cluster).
STARTING, ACTIVE, DRAINING, SHUTTING_DOWN = 0, 1, 2, 3
# Timer kinds; at one instant they run in this order.
_READY, _GRACE, _EXIT, _TERMINATE = 0, 1, 2, 3
# Slack for sums of floating-point memory reservations.
_MEMORY_EPSILON = 1e-9


def _finite_at_least(name: str, value: float, low: float) -> None:
    if not (math.isfinite(value) and value >= low):
        raise ValueError(f"{name} must be a finite number >= {low:g}, not {value}")


# Work figures that are whole seconds up to rounding still count as those seconds.
_CPU_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class WorkConfig:
    """Static facts about the cluster of the work model (see the module docstring).

    ``group_limits[g]`` is group ``g``'s ``hardConcurrencyLimit`` and ``group_memory_limits[g]`` its
    ``softMemoryLimit``; None or a missing entry: unlimited. ``initial_workers`` None lets the policy's
    first decision at t=0 set the starting size (already active, not a scale action), as in
    :class:`~autoscaler.sim.trino.ClusterConfig`. ``grace_seconds`` is Trino's ``shutdown.grace-period``
    and ``termination_grace_seconds`` the pod's ``terminationGracePeriodSeconds`` (the Helm chart requires
    it to be at least twice the grace period). ``required_workers`` is Trino's
    ``query-manager.required-workers``.
    """

    cores_per_worker: float = 8.0
    query_parallelism: float = 0.25
    memory_per_worker_gb: float = 64.0
    startup_seconds: float = 60.0
    max_workers: int = 200
    group_limits: tuple[int | None, ...] = ()
    group_memory_limits: tuple[float | str | None, ...] = ()
    slo_seconds: float = 60.0
    initial_workers: int | None = None
    grace_seconds: float = 120.0
    termination_grace_seconds: float = 300.0
    required_workers: int = 1

    @property
    def cores(self) -> float:
        """Cores per worker (the name the slot model's configuration uses too)."""
        return self.cores_per_worker

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cores_per_worker) and self.cores_per_worker > 0):
            raise ValueError(f"cores_per_worker must be a positive number, not {self.cores_per_worker}")
        if not (0 < self.query_parallelism <= 1):
            raise ValueError(
                f"query_parallelism is the share of a worker's cores one query keeps busy: in (0, 1], "
                f"not {self.query_parallelism}"
            )
        if not self.memory_per_worker_gb > 0:
            raise ValueError("memory_per_worker_gb must be > 0 (math.inf: unlimited)")
        _finite_at_least("startup_seconds", self.startup_seconds, 0.0)
        if self.max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        if any(limit is not None and limit < 0 for limit in self.group_limits):
            raise ValueError("group limits must be >= 0")
        for limit in self.group_memory_limits:
            if limit is not None:
                parse_soft_memory_limit(limit)
        _finite_at_least("slo_seconds", self.slo_seconds, 0.0)
        if self.initial_workers is not None and not 0 <= self.initial_workers <= self.max_workers:
            raise ValueError(f"initial_workers must be between 0 and max_workers ({self.max_workers})")
        _finite_at_least("grace_seconds", self.grace_seconds, 0.0)
        if not (
            math.isfinite(self.termination_grace_seconds)
            and self.termination_grace_seconds >= 2 * self.grace_seconds
        ):
            raise ValueError(
                "termination_grace_seconds must be at least twice grace_seconds (the Trino Helm chart "
                f"requires it), not {self.termination_grace_seconds} with grace {self.grace_seconds}"
            )
        if not 1 <= self.required_workers <= self.max_workers:
            raise ValueError(f"required_workers must be between 1 and max_workers ({self.max_workers})")


@dataclass(slots=True, eq=False)
class _Worker:
    """One worker. While winding down (draining or shutting down) since ``since``: its Q0 are the running
    queries numbered below ``first_later`` (started before ``since``), the last of which finishes when the
    clock reaches ``last_tag``; ``waiting`` once its first grace period is over and Q0 still runs.
    ``version`` tells current timers from superseded ones (a drain taken back)."""

    wid: int
    requested_at: float
    state: int
    since: float = 0.0
    first_later: int = 0
    last_tag: float = -math.inf
    version: int = 0
    waiting: bool = False
    exit_at: float = math.inf


class WorkCluster:
    """The simulator's work model, the benchmark's default: the cluster's state, advanced event by event
    with :meth:`advance`; see the module docstring.

    The interface is :class:`~autoscaler.sim.trino.SlotCluster`'s, so one driver runs either model.
    """

    def __init__(self, load: Load, config: WorkConfig) -> None:
        self.config = config
        self.load = load
        self._arrivals: list[float] = load.arrivals.tolist()
        self._work: list[float] = load.service.tolist()
        self._group: list[int] = load.group.tolist()
        n = len(self._arrivals)
        self._memory: list[float] = load.memory.tolist() if load.memory is not None else [0.0] * n
        # Loads without memory skip every memory check on the hot path.
        self._has_memory = n > 0 and max(self._memory) > 0
        self._worker_memory = config.memory_per_worker_gb
        self._memory_limited = math.isfinite(config.memory_per_worker_gb)
        if self._has_memory and self._memory_limited:
            largest = config.max_workers * self._worker_memory
            if max(self._memory) > largest + _MEMORY_EPSILON:
                raise ValueError(
                    f"a query reserves {max(self._memory):g} GB, more than max_workers × "
                    f"memory_per_worker_gb = {largest:g} GB: it could never start"
                )
        self._cores = config.cores_per_worker
        self._u = config.query_parallelism
        self._required = config.required_workers
        #: When each query started and completed (nan while it has not; killed queries never complete).
        self.start: list[float] = [math.nan] * n
        self.end: list[float] = [math.nan] * n
        # Start order, so a winding-down worker can tell its Q0 from later queries.
        self._number: list[int] = [0] * n
        groups = (max(self._group) + 1) if n else 1
        groups = max(groups, len(config.group_limits), len(config.group_memory_limits))
        self._limits: list[float] = [
            math.inf
            if g >= len(config.group_limits) or config.group_limits[g] is None
            else float(config.group_limits[g] or 0)
            for g in range(groups)
        ]
        self._soft: list[SoftMemoryLimit] = [
            SoftMemoryLimit()
            if g >= len(config.group_memory_limits) or (limit := config.group_memory_limits[g]) is None
            else parse_soft_memory_limit(limit)
            for g in range(groups)
        ]
        self._has_fraction_limit = any(s.fraction is not None for s in self._soft)
        self._memory_limits: list[float] = [s.bytes_gb(0.0) for s in self._soft]
        self._queues: list[deque[int]] = [deque() for _ in range(groups)]
        self._group_running: list[int] = [0] * groups
        self._group_memory: list[float] = [0.0] * groups
        self.workers: dict[int, _Worker] = {}
        self._active = 0
        # Workers per state (STARTING, ACTIVE, DRAINING, SHUTTING_DOWN).
        self._counts = [0, 0, 0, 0]
        self._next_wid = 0
        self._next_arrival = 0
        # (instant, kind, worker, worker version): start-ups, grace periods, exits, termination kills.
        self._timers: list[tuple[float, int, int, int]] = []
        # Winding-down workers past their first grace period, waiting for their Q0 queries.
        self._waiting: list[_Worker] = []
        # The virtual clock: it read ``_v`` at ``_v_at`` and runs at ``_rate``.
        self._tags: list[tuple[float, int]] = []
        self._v = 0.0
        self._v_at = 0.0
        self._rate = 0.0
        self._next_completion = math.inf
        self.now = 0.0
        self.queued = 0
        self.running = 0
        self.started = 0
        self.completed = 0
        self.killed = 0
        #: The queries killed, in the order they were.
        self.killed_queries: list[int] = []
        #: CPU-seconds of the completed queries as Trino counts them (each cut to whole seconds).
        self.cpu_seconds_total = 0.0
        #: Work of the completed queries, exactly.
        self.work_done_total = 0.0
        #: Core-seconds of work done, killed queries' included (the integral of the busy cores).
        self.busy_core_seconds = 0.0
        self.worker_seconds = 0.0
        self.replicas = 0
        self.scale_actions = 0
        self.reserved_memory_gb = 0.0

    # ---------------------------------------------------------------- the clock

    def _sync(self, now: float) -> None:
        advanced = self._rate * (now - self._v_at)
        self._v += advanced
        self.busy_core_seconds += advanced * self.running
        self._v_at = now

    def _retime(self, now: float) -> None:
        """After the clock is synced to ``now``: the rate and the next completion instant."""
        n = self.running
        if n and self._active:
            u = self._u
            rate = self._cores * self._active * (u if n * u <= 1.0 else 1.0 / n)
            self._rate = rate
            ahead = self._tags[0][0] - self._v
            self._next_completion = now + ahead / rate if ahead > 0 else now
        else:
            self._rate = 0.0
            self._next_completion = math.inf

    def _restart_clock(self) -> None:
        """With nothing running, the clock restarts from 0: its readings stay small, so finish tags keep
        their precision over long runs. Every winding-down worker's Q0 is over by then."""
        self._v = 0.0
        if self._counts[DRAINING] or self._counts[SHUTTING_DOWN]:
            for w in self.workers.values():
                if w.state in (DRAINING, SHUTTING_DOWN):
                    w.last_tag = -math.inf

    def _clock_at(self, now: float) -> float:
        return self._v + self._rate * max(0.0, now - self._v_at)

    # ---------------------------------------------------------------- workers

    def _set_pool(self, w: _Worker, state: int, now: float) -> None:
        """Change ``w``'s state; when it joins or leaves the active pool, re-rate the clock and the
        percentage memory limits."""
        counts = self._counts
        before = w.state == ACTIVE
        counts[w.state] -= 1
        w.state = state
        if state >= 0:
            counts[state] += 1
        after = state == ACTIVE
        if before == after:
            return
        self._sync(now)
        self._active += 1 if after else -1
        self._retime(now)
        if self._has_fraction_limit:
            pool = self._active * self._worker_memory if self._active else 0.0
            self._memory_limits = [s.bytes_gb(pool) for s in self._soft]

    def _add_worker(self, now: float, ready_now: bool) -> None:
        w = _Worker(self._next_wid, now, STARTING)
        self._next_wid += 1
        self.workers[w.wid] = w
        self._counts[STARTING] += 1
        if ready_now or self.config.startup_seconds == 0:
            self._set_pool(w, ACTIVE, now)
        else:
            heapq.heappush(self._timers, (now + self.config.startup_seconds, _READY, w.wid, w.version))

    def _leave(self, w: _Worker, now: float) -> None:
        self._set_pool(w, -1, now)
        if w.waiting:
            self._waiting.remove(w)
            w.waiting = False
        self.worker_seconds += now - w.requested_at
        del self.workers[w.wid]

    def _wind_down(self, w: _Worker, now: float, state: int) -> None:
        """Start ``w``'s graceful exit at ``now``: its cores leave the pool, its Q0 is what runs now."""
        self._set_pool(w, state, now)
        w.since = now
        w.first_later = self.started
        w.last_tag = max((tag for tag, _ in self._tags), default=-math.inf)
        w.version += 1
        w.exit_at = math.inf
        heapq.heappush(self._timers, (now + self.config.grace_seconds, _GRACE, w.wid, w.version))
        if state == SHUTTING_DOWN:
            at = now + self.config.termination_grace_seconds
            heapq.heappush(self._timers, (at, _TERMINATE, w.wid, w.version))

    def _take_back(self, w: _Worker, now: float) -> None:
        """A draining worker returns to active: its timers are void, its cores rejoin the pool."""
        w.version += 1
        w.exit_at = math.inf
        if w.waiting:
            self._waiting.remove(w)
            w.waiting = False
        self._set_pool(w, ACTIVE, now)

    def _expected_exit(self, w: _Worker, now: float) -> float:
        """When a draining worker would exit if nothing changed (its Q0 end predicted at today's rate)."""
        if w.exit_at < math.inf:
            return w.exit_at
        ahead = w.last_tag - self._clock_at(now)
        if ahead <= 0:
            done = now
        elif self._rate > 0:
            done = now + ahead / self._rate
        else:
            return math.inf
        return max(w.since + self.config.grace_seconds, done) + self.config.grace_seconds

    def _schedule_exit(self, w: _Worker, at: float) -> None:
        w.exit_at = at
        heapq.heappush(self._timers, (at, _EXIT, w.wid, w.version))

    def _check_waiting(self, now: float) -> None:
        """Workers whose Q0 has just finished exit one grace period from now."""
        v = self._v
        for w in [w for w in self._waiting if w.last_tag <= v]:
            self._waiting.remove(w)
            w.waiting = False
            self._schedule_exit(w, now + self.config.grace_seconds)

    def set_replicas(
        self, desired: int, now: float, mode: ScaleDownMode, *, initial: bool = False
    ) -> list[int]:
        """Apply a replica count at ``now``; returns the ids of the queries killed at ``now`` (abrupt mode).

        ``initial``: the workers added are active at once and the change is not a scale action.
        """
        if mode not in (ABRUPT, DRAIN, SHUTDOWN):
            raise ValueError(f"scale-down mode must be drain, abrupt or shutdown, not {mode!r}")
        self.advance(now)
        desired = max(0, min(int(desired), self.config.max_workers))
        if desired != self.replicas and not initial:
            self.scale_actions += 1
        self.replicas = desired
        count = self._counts[STARTING] + self._counts[ACTIVE]
        if desired == count:
            return []
        members = [w for w in self.workers.values() if w.state in (STARTING, ACTIVE)]
        killed: list[int] = []
        if desired > count:
            missing = desired - count
            draining = [w for w in self.workers.values() if w.state == DRAINING]
            draining.sort(key=lambda w: (self._expected_exit(w, now), w.wid), reverse=True)
            for w in draining[:missing]:
                self._take_back(w, now)
            for _ in range(missing - min(missing, len(draining))):
                self._add_worker(now, initial)
            self._dispatch(now)
        else:
            excess = count - desired
            starting = sorted((w for w in members if w.state == STARTING), key=lambda w: -w.wid)
            for w in starting[:excess]:
                self._leave(w, now)
            excess -= min(excess, len(starting))
            victims = sorted((w for w in members if w.state == ACTIVE), key=lambda w: -w.wid)[:excess]
            if victims and mode == ABRUPT:
                for w in victims:
                    self._leave(w, now)
                killed = self._kill_all(now)
                self._dispatch(now)
            else:
                for w in victims:
                    self._wind_down(w, now, DRAINING if mode == DRAIN else SHUTTING_DOWN)
        # Timers due at once (a zero grace period) run before the caller looks again.
        self.advance(now)
        return killed

    # ---------------------------------------------------------------- queries

    def _fits(self, q: int) -> bool:
        """Whether query ``q``'s memory fits in the active workers' free memory."""
        free = self._active * self._worker_memory - self.reserved_memory_gb
        return self._memory[q] <= free + _MEMORY_EPSILON

    def _eligible(self, g: int) -> bool:
        return self._group_running[g] < self._limits[g] and self._group_memory[g] < self._memory_limits[g]

    def _dispatch(self, now: float) -> None:
        if not self.queued or self._active < self._required:
            return
        queues = self._queues
        arrivals = self._arrivals
        while self.queued:
            best_g = -1
            best_a = math.inf
            for g, queue in enumerate(queues):
                if queue and self._eligible(g):
                    a = arrivals[queue[0]]
                    if a < best_a:
                        best_a, best_g = a, g
            if best_g < 0:
                return
            if self._has_memory and not self._fits(queues[best_g][0]):
                best_g = self._other_head(best_g)
                if best_g < 0:
                    return
            self.queued -= 1
            self._start(queues[best_g].popleft(), now)

    def _other_head(self, skipped: int) -> int:
        """When the first head does not fit in free memory, the earliest other eligible head that does."""
        queues = self._queues
        others = sorted(
            (self._arrivals[queue[0]], g)
            for g, queue in enumerate(queues)
            if queue and g != skipped and self._eligible(g)
        )
        for _, g in others:
            if self._fits(queues[g][0]):
                return g
        return -1

    def _start(self, q: int, now: float) -> None:
        v = self._v + self._rate * (now - self._v_at)
        self.busy_core_seconds += (v - self._v) * self.running
        self._v = v
        self._v_at = now
        tags = self._tags
        heapq.heappush(tags, (v + self._work[q], q))
        n = self.running = self.running + 1
        self.start[q] = now
        self._number[q] = self.started
        self.started += 1
        g = self._group[q]
        self._group_running[g] += 1
        if self._has_memory:
            m = self._memory[q]
            self._group_memory[g] += m
            self.reserved_memory_gb += m
        # _retime, inlined: this runs once per query.
        active = self._active
        if active:
            u = self._u
            rate = self._rate = self._cores * active * (u if n * u <= 1.0 else 1.0 / n)
            ahead = tags[0][0] - v
            self._next_completion = now + ahead / rate if ahead > 0 else now

    def _release(self, q: int) -> None:
        """Take a query that stops running off the cluster's and its group's counts."""
        g = self._group[q]
        self._group_running[g] -= 1
        self.running -= 1
        if self._has_memory:
            m = self._memory[q]
            # Sums that reach zero are reset so floating-point residue never blocks a start.
            self._group_memory[g] = self._group_memory[g] - m if self._group_running[g] else 0.0
            self.reserved_memory_gb = self.reserved_memory_gb - m if self.running else 0.0

    def _complete(self, now: float) -> None:
        """The query with the smallest finish tag (and any tied with it) completes at ``now``."""
        tags = self._tags
        v = self._v + self._rate * (now - self._v_at)
        top = tags[0][0]
        # The instant was predicted for this tag: rounding must not leave the clock just short of it.
        if v < top:
            v = top
        self.busy_core_seconds += (v - self._v) * self.running
        self._v = v
        self._v_at = now
        end = self.end
        work = self._work
        group = self._group
        group_running = self._group_running
        has_memory = self._has_memory
        while tags and tags[0][0] <= v:
            q = heapq.heappop(tags)[1]
            end[q] = now
            self.completed += 1
            self.work_done_total += work[q]
            # Trino's QueryManager adds each ended query's CPU cut to whole seconds (QueryManagerStats).
            self.cpu_seconds_total += math.floor(work[q] + _CPU_EPSILON)
            if has_memory:
                self._release(q)
            else:
                group_running[group[q]] -= 1
                self.running -= 1
        # _retime, inlined: this runs once per query. A completion needs an active worker (a clock that
        # moves), so only the running count can have reached zero.
        n = self.running
        if n:
            u = self._u
            rate = self._rate = self._cores * self._active * (u if n * u <= 1.0 else 1.0 / n)
            ahead = tags[0][0] - v
            self._next_completion = now + ahead / rate if ahead > 0 else now
        else:
            self._rate = 0.0
            self._next_completion = math.inf
            self._restart_clock()
        if self._waiting:
            self._check_waiting(now)
        if self.queued:
            self._dispatch(now)

    def _kill(self, doomed: set[int], now: float) -> list[int]:
        """Fail the running queries in ``doomed`` at ``now``; winding-down workers re-read their Q0."""
        self._sync(now)
        ids = sorted(doomed)
        for q in ids:
            self._release(q)
        self._tags = [(tag, q) for tag, q in self._tags if q not in doomed]
        heapq.heapify(self._tags)
        self.killed += len(ids)
        self.killed_queries.extend(ids)
        if not self._tags:
            self._restart_clock()
        self._retime(now)
        number = self._number
        for w in self.workers.values():
            if w.state in (DRAINING, SHUTTING_DOWN) and w.last_tag > self._v:
                w.last_tag = max(
                    (tag for tag, q in self._tags if number[q] < w.first_later), default=-math.inf
                )
        if self._waiting:
            self._check_waiting(now)
        return ids

    def _kill_all(self, now: float) -> list[int]:
        if not self._tags:
            return []
        return self._kill({q for _, q in self._tags}, now)

    def _terminate(self, w: _Worker, now: float) -> None:
        """Kubernetes kills a shutting-down pod at its termination grace: Q0 queries still running fail."""
        self._leave(w, now)
        number = self._number
        doomed = {q for _, q in self._tags if number[q] < w.first_later}
        if doomed:
            self._kill(doomed, now)
            self._dispatch(now)

    def _arrive(self, q: int, now: float) -> None:
        g = self._group[q]
        if (
            not self.queued
            and self._active >= self._required
            and self._group_running[g] < self._limits[g]
            and self._group_memory[g] < self._memory_limits[g]
            and (not self._has_memory or self._fits(q))
        ):
            self._start(q, now)
            return
        self._queues[g].append(q)
        self.queued += 1
        if len(self._queues) > 1:
            # Another group's blocked queue may hold the FIFO head while this group could run.
            self._dispatch(now)

    def _timer(self, at: float) -> None:
        _, kind, wid, version = heapq.heappop(self._timers)
        w = self.workers.get(wid)
        if w is None or w.version != version:
            return
        if kind == _READY:
            if w.state == STARTING:
                self._set_pool(w, ACTIVE, at)
                self._dispatch(at)
        elif kind == _GRACE:
            if w.last_tag <= self._v:
                self._schedule_exit(w, at + self.config.grace_seconds)
            else:
                w.waiting = True
                self._waiting.append(w)
        elif kind == _EXIT:
            self._leave(w, at)
        else:
            self._terminate(w, at)

    def advance(self, until: float) -> None:
        """Process every arrival, completion, start-up and timer with a time ``<= until``."""
        arrivals = self._arrivals
        n = len(arrivals)
        timers = self._timers
        group = self._group
        group_running = self._group_running
        limits = self._limits
        required = self._required
        has_memory = self._has_memory
        inf = math.inf
        while True:
            i = self._next_arrival
            ta = arrivals[i] if i < n else inf
            tc = self._next_completion
            tt = timers[0][0] if timers else inf
            if tc <= ta and tc <= tt:
                # All three at infinity: nothing is left to happen, even for advance(math.inf).
                if tc > until or tc == inf:
                    break
                self._complete(tc)
            elif tt <= ta:
                if tt > until:
                    break
                self._timer(tt)
            else:
                if ta > until:
                    break
                self._next_arrival = i + 1
                # _arrive's common case, inlined: nothing queued and the query's group may start it.
                g = group[i]
                if (
                    not self.queued
                    and self._active >= required
                    and group_running[g] < limits[g]
                    and not has_memory
                    and self._group_memory[g] < self._memory_limits[g]
                ):
                    self._start(i, ta)
                else:
                    self._arrive(i, ta)
        self.now = max(self.now, until)

    # ---------------------------------------------------------------- observation

    def head_wait(self, now: float) -> float:
        """How long the oldest queued query has waited (0 with an empty queue)."""
        oldest = min((self._arrivals[q[0]] for q in self._queues if q), default=now)
        return now - oldest

    def busy_cores(self) -> float:
        """Cores in use: ``c·W·min(n·u, 1)`` over the W active workers."""
        return self._cores * self._active * min(self.running * self._u, 1.0)

    def running_cpu_seconds(self, now: float) -> float:
        """CPU-seconds the running queries have consumed by ``now``."""
        v = self._clock_at(now)
        work = self._work
        # Every view reads this: a list summed in the same order, the branch in place of max(0.0, ...).
        return sum([work[q] - (tag - v if tag > v else 0.0) for tag, q in self._tags])

    def view(self, now: float, *, running_cpu: bool = True) -> ClusterView:
        """What a controller observes; ``slots_per_worker`` is 1 as this model has no query slots, and
        ``required_workers`` is Trino's ClusterSizeMonitor figure (``required_workers`` while queries wait
        and fewer workers are active, else 0), not a sizing estimate. ``running_cpu`` False leaves
        ``running_cpu_seconds`` at 0 (a sum over every running query) for a policy that does not read it."""
        starting, active, draining, shutting = self._counts
        limit_bound = memory_bound = 0
        for g, queue in enumerate(self._queues if self.queued else ()):
            if not queue:
                continue
            if self._group_running[g] >= self._limits[g]:
                limit_bound += len(queue)
            elif self._group_memory[g] >= self._memory_limits[g]:
                if self._soft[g].fraction is None:
                    limit_bound += len(queue)
                else:
                    memory_bound += len(queue)
        pool_memory = active * self._worker_memory
        return ClusterView(
            now=now,
            queued=self.queued,
            running=self.running,
            required_workers=self._required if self.queued and active < self._required else 0,
            current_workers=starting + active,
            ready_workers=active,
            draining_workers=draining,
            busy_fraction=min(self.running * self._u, 1.0) if active else 0.0,
            completed=self.completed,
            arrived=self._next_arrival,
            slots_per_worker=1,
            limit_bound_queued=limit_bound,
            memory_bound_queued=memory_bound,
            cores_per_worker=self._cores,
            memory_per_worker_gb=self._worker_memory,
            memory_fraction=self.reserved_memory_gb / pool_memory if active and self._memory_limited else 0.0,
            reserved_memory_gb=self.reserved_memory_gb,
            cpu_seconds_total=self.cpu_seconds_total,
            running_cpu_seconds=self.running_cpu_seconds(now) if running_cpu and self.running else 0.0,
            busy_cores=self.busy_cores(),
            started=self.started,
            failed=self.killed,
            shutting_down_workers=shutting,
            busy_core_seconds_total=self.busy_core_seconds
            + self._rate * max(0.0, now - self._v_at) * self.running,
        )

    @property
    def arrived(self) -> int:
        return self._next_arrival

    def billed_workers(self) -> int:
        """Every worker present: starting, active and winding down."""
        return len(self.workers)

    def member_workers(self) -> int:
        """Starting and active workers: the replicas the cluster currently has."""
        return self._counts[STARTING] + self._counts[ACTIVE]

    def finish(self, end: float) -> float:
        """Worker-seconds including the workers still present at ``end``."""
        return self.worker_seconds + sum(end - w.requested_at for w in self.workers.values())

    def started_waits(self) -> FloatArray:
        start = np.asarray(self.start, dtype=np.float64)
        started = ~np.isnan(start)
        return start[started] - self.load.arrivals[started]

    def queued_waits(self, now: float) -> FloatArray:
        ids = [q for queue in self._queues for q in queue]
        return now - self.load.arrivals[np.asarray(ids, dtype=np.int64)]

    def run_times(self) -> FloatArray:
        """Completion minus start of every completed query."""
        end = np.asarray(self.end, dtype=np.float64)
        done = ~np.isnan(end)
        return end[done] - np.asarray(self.start, dtype=np.float64)[done]
