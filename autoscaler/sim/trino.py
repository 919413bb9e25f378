"""A fast event-driven model of a Trino cluster's workers, query slots and resource-group queues.

Model (see :mod:`autoscaler.sim.load` for the slot-seconds service model):

- A worker has ``slots_per_worker`` query slots. It is *starting* from the moment it is requested until
  ``startup_seconds`` later, then *active*; a *draining* worker runs what it has, takes nothing new, and
  leaves when idle (Trino's ``DRAINING → DRAINED``, REFERENCE.md §3). Workers are billed from request
  until they leave.
- One FIFO queue per resource group; a group runs at most its ``hardConcurrencyLimit`` queries, so its
  queue can hold queries while slots are idle (limit-bound). A free slot goes to the group whose head query
  arrived first among the groups below their limit; the query goes to the active worker with the most free
  slots (Trino spreads work).
- Scale-down removes starting workers first (newest first, like a Deployment removing unready pods), then:
  ``drain`` marks the active workers running the fewest queries as draining; ``abrupt`` deletes the newest
  active workers and kills their running queries (counted). Scale-up first takes back draining workers
  (``DRAINING → ACTIVE`` is reversible) before requesting new ones.

Event times are exact (arrivals, completions and workers becoming active happen at their own instants);
only the controller's decisions are tied to the caller's steps.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from autoscaler.sim.load import FloatArray, Load

__all__ = [
    "ABRUPT",
    "DRAIN",
    "ClusterConfig",
    "ClusterView",
    "Policy",
    "ScaleDownMode",
    "TrinoCluster",
    "Worker",
]

ScaleDownMode = Literal["drain", "abrupt"]
DRAIN: ScaleDownMode = "drain"
ABRUPT: ScaleDownMode = "abrupt"

STARTING, ACTIVE, DRAINING, GONE = 0, 1, 2, 3
# Query states.
PENDING, QUEUED, RUNNING, DONE, KILLED = 0, 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Static facts about the cluster. ``group_limits[g]`` is group ``g``'s ``hardConcurrencyLimit`` (None
    or a missing entry: unlimited). ``initial_workers`` None lets the policy's first decision at t=0 set the
    starting size (already active, not counted as a scale action)."""

    slots_per_worker: int = 4
    startup_seconds: float = 60.0
    max_workers: int = 200
    group_limits: tuple[int | None, ...] = ()
    slo_seconds: float = 60.0
    initial_workers: int | None = None

    def __post_init__(self) -> None:
        if self.slots_per_worker < 1:
            raise ValueError("slots_per_worker must be >= 1")
        if not (math.isfinite(self.startup_seconds) and self.startup_seconds >= 0):
            raise ValueError("startup_seconds must be >= 0")
        if self.max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        if any(limit is not None and limit < 0 for limit in self.group_limits):
            raise ValueError("group limits must be >= 0")


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What a controller can observe at ``now``.

    ``current_workers`` is the replica count last set (starting + active, not draining); ``ready_workers``
    the active ones among them. ``required_workers`` is the workers the queued and running queries would
    fill (``ceil((queued + running) / slots)``), the simulator's stand-in for a required-workers signal.
    ``busy_fraction`` is busy slots over the slots of ready workers (the CPU-utilisation proxy; 0 without
    ready workers). ``limit_bound_queued`` counts queued queries whose group is at its concurrency limit.
    """

    now: float
    queued: int
    running: int
    required_workers: int
    current_workers: int
    ready_workers: int
    draining_workers: int
    busy_fraction: float
    completed: int
    arrived: int
    slots_per_worker: int
    limit_bound_queued: int


class Policy(Protocol):
    """A scaling controller as the simulator drives it.

    ``desired`` is called every ``period_seconds`` of simulated time (at t=0 first) with what the controller
    observes, and returns the replica count to set; ``scale_down`` says how the cluster removes workers when
    that count drops (drain them, or delete them and kill their queries). A policy may keep state between
    calls; the simulator never calls it with a smaller ``now`` than before.
    """

    @property
    def name(self) -> str: ...

    @property
    def period_seconds(self) -> float: ...

    @property
    def scale_down(self) -> ScaleDownMode: ...

    def desired(self, now: float, view: ClusterView) -> int: ...


@dataclass(slots=True, eq=False)
class Worker:
    wid: int
    requested_at: float
    ready_at: float
    state: int
    slots: int
    running: set[int] = field(default_factory=set)


class TrinoCluster:
    """The cluster's state, advanced event by event with :meth:`advance`; see the module docstring."""

    def __init__(self, load: Load, config: ClusterConfig) -> None:
        self.config = config
        self.load = load
        self._arrivals: list[float] = load.arrivals.tolist()
        self._service: list[float] = load.service.tolist()
        self._group: list[int] = load.group.tolist()
        n = len(self._arrivals)
        self.start: list[float] = [math.nan] * n
        self.qstate: list[int] = [PENDING] * n
        self._where: list[int] = [-1] * n
        groups = (max(self._group) + 1) if n else 1
        groups = max(groups, len(config.group_limits))
        self._limits: list[float] = [
            math.inf
            if g >= len(config.group_limits) or config.group_limits[g] is None
            else float(config.group_limits[g] or 0)
            for g in range(groups)
        ]
        self._queues: list[deque[int]] = [deque() for _ in range(groups)]
        self._group_running: list[int] = [0] * groups
        self.workers: dict[int, Worker] = {}
        self._next_wid = 0
        self._next_arrival = 0
        self._completions: list[tuple[float, int]] = []
        self._ready: list[tuple[float, int]] = []
        self.now = 0.0
        self.queued = 0
        self.running = 0
        self.completed = 0
        self.killed = 0
        self.worker_seconds = 0.0
        self.replicas = 0
        self.scale_actions = 0

    # ---------------------------------------------------------------- workers

    def _add_worker(self, now: float, ready_now: bool) -> None:
        delay = 0.0 if ready_now else self.config.startup_seconds
        w = Worker(self._next_wid, now, now + delay, STARTING, self.config.slots_per_worker)
        self._next_wid += 1
        self.workers[w.wid] = w
        if delay == 0.0:
            w.state = ACTIVE
        else:
            heapq.heappush(self._ready, (w.ready_at, w.wid))

    def _leave(self, w: Worker, now: float) -> None:
        w.state = GONE
        self.worker_seconds += now - w.requested_at
        del self.workers[w.wid]

    def set_replicas(
        self, desired: int, now: float, mode: ScaleDownMode, *, initial: bool = False
    ) -> list[int]:
        """Apply a replica count at ``now``; returns the ids of the queries killed (abrupt mode only)."""
        self.advance(now)
        desired = max(0, min(int(desired), self.config.max_workers))
        if desired != self.replicas and not initial:
            self.scale_actions += 1
        self.replicas = desired
        members = [w for w in self.workers.values() if w.state in (STARTING, ACTIVE)]
        killed: list[int] = []
        if desired > len(members):
            missing = desired - len(members)
            draining = sorted(
                (w for w in self.workers.values() if w.state == DRAINING), key=lambda w: -len(w.running)
            )
            for w in draining[:missing]:
                w.state = ACTIVE
            for _ in range(missing - min(missing, len(draining))):
                self._add_worker(now, initial)
            self._dispatch(now)
        elif desired < len(members):
            excess = len(members) - desired
            starting = sorted((w for w in members if w.state == STARTING), key=lambda w: -w.wid)
            for w in starting[:excess]:
                self._leave(w, now)
            excess -= min(excess, len(starting))
            if excess:
                active = [w for w in members if w.state == ACTIVE]
                if mode == ABRUPT:
                    active.sort(key=lambda w: -w.wid)
                    for w in active[:excess]:
                        killed.extend(self._kill_all(w))
                        self._leave(w, now)
                else:
                    active.sort(key=lambda w: (len(w.running), -w.wid))
                    for w in active[:excess]:
                        if w.running:
                            w.state = DRAINING
                        else:
                            self._leave(w, now)
            if killed:
                self._dispatch(now)
        return killed

    def _kill_all(self, w: Worker) -> list[int]:
        ids = sorted(w.running)
        for q in ids:
            self.qstate[q] = KILLED
            self._group_running[self._group[q]] -= 1
        self.running -= len(ids)
        self.killed += len(ids)
        w.running.clear()
        return ids

    # ---------------------------------------------------------------- queries

    def _dispatch(self, now: float) -> None:
        if not self.queued:
            return
        queues = self._queues
        limits = self._limits
        group_running = self._group_running
        arrivals = self._arrivals
        while self.queued:
            best_g = -1
            best_a = math.inf
            for g, queue in enumerate(queues):
                if queue and group_running[g] < limits[g]:
                    a = arrivals[queue[0]]
                    if a < best_a:
                        best_a, best_g = a, g
            if best_g < 0:
                return
            worker = self._pick_worker()
            if worker is None:
                return
            self._start(queues[best_g].popleft(), worker, now)
            self.queued -= 1

    def _pick_worker(self) -> Worker | None:
        best: Worker | None = None
        best_free = 0
        for w in self.workers.values():
            if w.state == ACTIVE:
                free = w.slots - len(w.running)
                if free > best_free:
                    best, best_free = w, free
        return best

    def _start(self, q: int, w: Worker, now: float) -> None:
        w.running.add(q)
        self.qstate[q] = RUNNING
        self.start[q] = now
        self._where[q] = w.wid
        self._group_running[self._group[q]] += 1
        self.running += 1
        heapq.heappush(self._completions, (now + self._service[q], q))

    def _arrive(self, q: int, now: float) -> None:
        g = self._group[q]
        if not self.queued and self._group_running[g] < self._limits[g]:
            w = self._pick_worker()
            if w is not None:
                self._start(q, w, now)
                return
        self.qstate[q] = QUEUED
        self._queues[g].append(q)
        self.queued += 1
        if len(self._queues) > 1:
            # Another group's queue may block the FIFO head while this group could run.
            self._dispatch(now)

    def _complete(self, q: int, now: float) -> None:
        self.qstate[q] = DONE
        self.completed += 1
        self.running -= 1
        self._group_running[self._group[q]] -= 1
        w = self.workers[self._where[q]]
        w.running.discard(q)
        if w.state == DRAINING and not w.running:
            self._leave(w, now)
        elif self.queued:
            self._dispatch(now)

    def advance(self, until: float) -> None:
        """Process every arrival, completion and worker start-up with a time ``<= until``."""
        arrivals = self._arrivals
        n = len(arrivals)
        completions = self._completions
        ready = self._ready
        qstate = self.qstate
        workers = self.workers
        inf = math.inf
        while True:
            i = self._next_arrival
            ta = arrivals[i] if i < n else inf
            tc = completions[0][0] if completions else inf
            tr = ready[0][0] if ready else inf
            # Completions first at equal times so a freed slot serves an arrival at the same instant.
            if tc <= ta and tc <= tr:
                if tc > until:
                    break
                _, q = heapq.heappop(completions)
                if qstate[q] == RUNNING:
                    self._complete(q, tc)
            elif tr <= ta:
                if tr > until:
                    break
                _, wid = heapq.heappop(ready)
                w = workers.get(wid)
                if w is not None and w.state == STARTING:
                    w.state = ACTIVE
                    self._dispatch(tr)
            else:
                if ta > until:
                    break
                self._next_arrival = i + 1
                self._arrive(i, ta)
        self.now = max(self.now, until)

    # ---------------------------------------------------------------- observation

    def head_wait(self, now: float) -> float:
        """How long the oldest queued query has waited (0 with an empty queue)."""
        oldest = min((self._arrivals[q[0]] for q in self._queues if q), default=now)
        return now - oldest

    def view(self, now: float) -> ClusterView:
        current = ready = draining = 0
        ready_slots = busy = 0
        for w in self.workers.values():
            if w.state == STARTING:
                current += 1
            elif w.state == ACTIVE:
                current += 1
                ready += 1
                ready_slots += w.slots
                busy += len(w.running)
            elif w.state == DRAINING:
                draining += 1
        bound = sum(
            len(q) for g, q in enumerate(self._queues) if q and self._group_running[g] >= self._limits[g]
        )
        slots = self.config.slots_per_worker
        return ClusterView(
            now=now,
            queued=self.queued,
            running=self.running,
            required_workers=-(-(self.queued + self.running) // slots),
            current_workers=current,
            ready_workers=ready,
            draining_workers=draining,
            busy_fraction=busy / ready_slots if ready_slots else 0.0,
            completed=self.completed,
            arrived=self._next_arrival,
            slots_per_worker=slots,
            limit_bound_queued=bound,
        )

    @property
    def arrived(self) -> int:
        return self._next_arrival

    def billed_workers(self) -> int:
        return len(self.workers)

    def member_workers(self) -> int:
        """Starting and active workers: the replicas the cluster currently has."""
        return sum(1 for w in self.workers.values() if w.state in (STARTING, ACTIVE))

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
