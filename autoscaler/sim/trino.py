"""The simulator's slot model of a Trino cluster (``--model slots``), and what both simulator models share.

A fast event-driven model: workers with cores, memory and query slots, and resource groups; a query runs
on one worker. One of the project's three Trino cluster models: the simulator's default is the work model
(:class:`autoscaler.sim.trino_work.WorkCluster`), and the sandbox's emulated coordinator and workers
(:class:`lab.sandbox.trino_model.TrinoCluster`: protocol and state machines, for the demo and contract
tests) are a third. Where their assumptions coincide the three
give every query the same start and end (``tests/autoscaler/sim/test_trino_models_agree.py``); as a query here runs on
one worker, they coincide on one worker only, where the other two spread a query over every worker. The
configuration, the controller's view and the policy protocol here (:class:`ClusterConfig`,
:class:`ClusterView`, :class:`Policy`) serve both simulator models.

Model (see :mod:`autoscaler.sim.load` for the queries):

- A worker has ``slots_per_worker`` query slots, ``cores_per_worker`` cores (default: as many as slots)
  and ``memory_per_worker_gb`` of memory (default unlimited). It is *starting* from the moment it is
  requested until ``startup_seconds`` later, then *active*; a *draining* worker runs what it has, takes
  nothing new, and leaves when idle (Trino's ``DRAINING → DRAINED``, REFERENCE.md §3). Workers are billed
  from request until they leave.
- A query's service time is CPU-seconds of work at full speed. The queries running on a worker share its
  cores (processor sharing): each progresses at ``min(1, cores / running on that worker)``. With no more
  queries than cores a query takes exactly its service time, so the default (cores = slots) is the
  slot-seconds model: a worker's slots are independent servers. Completion instants are exact: each worker
  keeps a virtual clock (work done per query since it started) and its queries' finish tags on it; the next
  completion is re-predicted only when the worker's sharing rate changes.
- A query reserves its memory (``Load.memory``, 0 GB without one) on its worker from start to end and
  starts only on a worker with a free slot and that much free memory.
- One FIFO queue per resource group. A group starts a query only while it runs fewer than its
  ``hardConcurrencyLimit`` and its running queries' memory is below its ``softMemoryLimit`` (Trino's
  ``canRunMore``; the query that crosses the limit still runs). A soft limit is absolute (GB, or a Trino
  data size such as ``"12GB"``) or a share of the active workers' memory (``"50%"``): the latter grows with
  the cluster, a concurrency limit or an absolute limit does not. The queued head that arrived first among
  the groups able to run goes to the active worker with the most free slots (then the most free memory;
  Trino spreads work); when it fits nowhere, the next group's head is tried.
- Scale-down removes starting workers first (newest first, like a Deployment removing unready pods), then:
  ``drain`` marks the active workers running the fewest queries as draining; ``abrupt`` deletes the newest
  active workers and kills their running queries (counted); ``shutdown`` (the Trino chart's graceful
  shutdown: a preStop hook PUTs ``SHUTTING_DOWN``) takes the newest active workers, as a Deployment picks
  its victims without a pod-deletion-cost. Scale-up first takes back draining workers (``DRAINING →
  ACTIVE`` is reversible) before requesting new ones; a shutting-down worker never comes back.
- Grace periods (``grace_seconds`` G, Trino's ``shutdown.grace-period``; 0 by default): a draining or
  shutting-down worker waits G, then until its running queries are done, then G again, and leaves;
  billed until then. With G = 0 a drained worker leaves the moment it is idle. A shutting-down worker is
  killed ``termination_grace_seconds`` T after it started (the pod's ``terminationGracePeriodSeconds``),
  with the queries it still runs (counted as killed).

Event times are exact (arrivals, completions and workers becoming active happen at their own instants);
only the controller's decisions are tied to the caller's steps.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from autoscaler.sim.load import FloatArray, Load

__all__ = [
    "ABRUPT",
    "DRAIN",
    "SHUTDOWN",
    "ClusterConfig",
    "ClusterView",
    "Policy",
    "ScaleDownMode",
    "SlotCluster",
    "SoftMemoryLimit",
    "Worker",
    "parse_soft_memory_limit",
]

ScaleDownMode = Literal["drain", "abrupt", "shutdown"]
DRAIN: ScaleDownMode = "drain"
ABRUPT: ScaleDownMode = "abrupt"
# Trino's graceful shutdown (PUT SHUTTING_DOWN from a preStop hook): one-way, killed at the pod's
# terminationGracePeriodSeconds. Only the work model (autoscaler.sim.trino_work) simulates it.
SHUTDOWN: ScaleDownMode = "shutdown"

STARTING, ACTIVE, DRAINING, GONE, SHUTTING_DOWN = 0, 1, 2, 3, 4
# Timers of a leaving worker.
_GRACE_OVER, _EXIT, _TERMINATE = 0, 1, 2
# Query states.
PENDING, QUEUED, RUNNING, DONE, KILLED = 0, 1, 2, 3, 4

# Trino data sizes (airlift DataSize) are binary multiples; expressed in GB (GiB) here.
_UNITS_GB = {"B": 2.0**-30, "kB": 2.0**-20, "MB": 2.0**-10, "GB": 1.0, "TB": 2.0**10, "PB": 2.0**20}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|kB|MB|GB|TB|PB|%)\s*$")
# Slack for sums of floating-point memory reservations.
_MEMORY_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class SoftMemoryLimit:
    """A resource group's ``softMemoryLimit``: ``gb`` absolute, or ``fraction`` of the active workers' memory."""

    gb: float | None = None
    fraction: float | None = None

    def bytes_gb(self, cluster_memory_gb: float) -> float:
        """The limit in GB for a cluster of ``cluster_memory_gb`` (active workers' memory)."""
        if self.fraction is None:
            return math.inf if self.gb is None else self.gb
        # 0 × inf is nan: an empty (or zero-share) pool is a zero limit.
        if self.fraction == 0 or cluster_memory_gb == 0:
            return 0.0
        return self.fraction * cluster_memory_gb


def parse_soft_memory_limit(value: float | str) -> SoftMemoryLimit:
    """``12`` or ``12.5`` (GB), ``"12GB"``/``"512MB"`` (Trino data sizes) or ``"50%"`` (of cluster memory)."""
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match is None:
            raise ValueError(f"soft memory limit {value!r} is neither a data size like 12GB nor a percentage")
        amount, unit = float(match.group(1)), match.group(2)
        if unit == "%":
            return SoftMemoryLimit(fraction=amount / 100.0)
        return SoftMemoryLimit(gb=amount * _UNITS_GB[unit])
    gb = float(value)
    if not (gb >= 0 and not math.isnan(gb)):
        raise ValueError(f"soft memory limit must be >= 0 GB, not {value}")
    return SoftMemoryLimit(gb=gb)


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Static facts about the cluster. ``group_limits[g]`` is group ``g``'s ``hardConcurrencyLimit`` and
    ``group_memory_limits[g]`` its ``softMemoryLimit`` (see :func:`parse_soft_memory_limit`); None or a
    missing entry: unlimited. ``cores_per_worker`` None means one core per slot (queries never share a
    core). ``initial_workers`` None lets the policy's first decision at t=0 set the starting size (already
    active, not counted as a scale action)."""

    slots_per_worker: int = 4
    startup_seconds: float = 60.0
    max_workers: int = 200
    group_limits: tuple[int | None, ...] = ()
    slo_seconds: float = 60.0
    initial_workers: int | None = None
    cores_per_worker: float | None = None
    memory_per_worker_gb: float = math.inf
    group_memory_limits: tuple[float | str | None, ...] = ()
    grace_seconds: float = 0.0
    termination_grace_seconds: float = math.inf

    def __post_init__(self) -> None:
        if not (math.isfinite(self.grace_seconds) and self.grace_seconds >= 0):
            raise ValueError(f"grace_seconds must be >= 0, not {self.grace_seconds}")
        if not self.termination_grace_seconds >= 2 * self.grace_seconds:
            raise ValueError(
                "termination_grace_seconds must be at least twice grace_seconds (the Trino Helm chart "
                f"requires it), not {self.termination_grace_seconds} with grace {self.grace_seconds}"
            )
        if self.slots_per_worker < 1:
            raise ValueError("slots_per_worker must be >= 1")
        if not (math.isfinite(self.startup_seconds) and self.startup_seconds >= 0):
            raise ValueError("startup_seconds must be >= 0")
        if self.max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        if any(limit is not None and limit < 0 for limit in self.group_limits):
            raise ValueError("group limits must be >= 0")
        if self.cores_per_worker is not None and not (
            math.isfinite(self.cores_per_worker) and self.cores_per_worker > 0
        ):
            raise ValueError("cores_per_worker must be a positive number")
        if not self.memory_per_worker_gb > 0:
            raise ValueError("memory_per_worker_gb must be > 0 (math.inf: unlimited)")
        for limit in self.group_memory_limits:
            if limit is not None:
                parse_soft_memory_limit(limit)

    @property
    def cores(self) -> float:
        """Cores per worker: ``cores_per_worker``, or one per slot."""
        return float(self.slots_per_worker) if self.cores_per_worker is None else self.cores_per_worker


# Not frozen: a view is built on every pass of every run, and a frozen dataclass's __init__ (a
# object.__setattr__ call per field) took three times as long. Each pass gets a fresh view, so a policy
# that changed one would change nothing else.
@dataclass(slots=True)
class ClusterView:
    """What a controller can observe at ``now``.

    ``current_workers`` is the replica count last set (starting + active, not draining); ``ready_workers``
    the active ones among them. ``required_workers`` is the workers the queued and running queries would
    fill (``ceil((queued + running) / slots)``), the simulator's stand-in for a required-workers signal.
    ``busy_fraction`` is the CPU utilisation: cores in use over the cores of ready workers (a worker uses
    ``min(running, cores)``; 0 without ready workers), the HPA-on-CPU signal. ``memory_fraction`` is the
    memory reserved on ready workers over their memory (0 when memory is unlimited).

    Queued queries split three ways: ``limit_bound_queued`` wait on a limit more workers do not raise (the
    group is at its ``hardConcurrencyLimit``, or at an absolute ``softMemoryLimit``); ``memory_bound_queued``
    on a percentage ``softMemoryLimit`` (more workers raise it); the rest on slots, cores or worker memory.

    The last fields default to 0 and are filled by the work model (:mod:`autoscaler.sim.trino_work`) only:
    ``cpu_seconds_total`` is the CPU time of completed queries (Trino's QueryManager
    ``ConsumedCpuTimeSecs``), ``running_cpu_seconds`` the CPU time the running queries have consumed so
    far (what ``/v1/query``'s ``totalCpuTime`` sums to), ``busy_cores`` the cores in use, ``started`` how
    many queries have started running, ``failed`` how many were killed, ``shutting_down_workers`` the
    workers in Trino's one-way ``SHUTTING_DOWN`` state.
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
    memory_bound_queued: int = 0
    cores_per_worker: float = 0.0
    memory_per_worker_gb: float = math.inf
    memory_fraction: float = 0.0
    reserved_memory_gb: float = 0.0
    cpu_seconds_total: float = 0.0
    running_cpu_seconds: float = 0.0
    busy_cores: float = 0.0
    started: int = 0
    failed: int = 0
    shutting_down_workers: int = 0
    #: Core-seconds the workers have been busy since the start (a CPU usage counter, as cAdvisor's): the
    #: HPA's CPU utilisation is its rate over a window, not an instant's busy cores. 0: not simulated.
    busy_core_seconds_total: float = 0.0


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
    """One worker. Its virtual clock (work done per query) reads ``now + lag``: ``lag`` only falls while
    the worker is ``shared`` (more queries than cores; brought up to date at ``since``). Unshared, each
    running query has its own completion event; shared, the worker has one, for the smallest finish tag
    of the heap ``tags``. ``version`` tells current completion events from superseded ones."""

    wid: int
    requested_at: float
    ready_at: float
    state: int
    slots: int
    cores: float = 1.0
    memory_gb: float = math.inf
    running: set[int] = field(default_factory=set)
    tags: list[tuple[float, int]] = field(default_factory=list)
    shared: bool = False
    lag: float = 0.0
    since: float = 0.0
    version: int = 0
    memory_used: float = 0.0
    leave_version: int = 0
    grace_done: bool = False


class SlotCluster:
    """The simulator's slot model (``--model slots``; not the sandbox's emulated cluster,
    :class:`lab.sandbox.trino_model.TrinoCluster`): the cluster's state, advanced event by event with
    :meth:`advance`; see the module docstring."""

    def __init__(self, load: Load, config: ClusterConfig) -> None:
        self.config = config
        self.load = load
        self._arrivals: list[float] = load.arrivals.tolist()
        self._service: list[float] = load.service.tolist()
        self._group: list[int] = load.group.tolist()
        n = len(self._arrivals)
        self._memory: list[float] = load.memory.tolist() if load.memory is not None else [0.0] * n
        self._cores = config.cores
        self._worker_memory = config.memory_per_worker_gb
        self._memory_limited = math.isfinite(config.memory_per_worker_gb)
        if self._memory_limited and n and max(self._memory) > self._worker_memory + _MEMORY_EPSILON:
            raise ValueError(
                f"a query reserves {max(self._memory):g} GB, more than a worker's {self._worker_memory:g} GB: "
                "it could never start"
            )
        self.start: list[float] = [math.nan] * n
        #: When each query completed (nan while it has not; killed queries never complete).
        self.end: list[float] = [math.nan] * n
        self.qstate: list[int] = [PENDING] * n
        # Each query's finish tag on its worker's virtual clock.
        self._tag: list[float] = [0.0] * n
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
        self.workers: dict[int, Worker] = {}
        self._active = 0
        # The active workers in request order (the order placement scans them), rebuilt after a change.
        self._active_workers: list[Worker] | None = []
        self._next_wid = 0
        self._next_arrival = 0
        # (instant, query, worker, worker version): a query's completion on an unshared worker, or a shared
        # worker's next one; superseded when the worker's version moves on.
        self._completions: list[tuple[float, int, int, int]] = []
        self._ready: list[tuple[float, int]] = []
        # (instant, kind, worker, leave version): a leaving worker's grace periods, exit and termination.
        self._timers: list[tuple[float, int, int, int]] = []
        self.now = 0.0
        self.queued = 0
        self.running = 0
        self.completed = 0
        self.killed = 0
        self.worker_seconds = 0.0
        self.replicas = 0
        self.scale_actions = 0
        self.reserved_memory_gb = 0.0

    # ---------------------------------------------------------------- workers

    def _set_active(self, w: Worker, state: int) -> None:
        """Change ``w``'s state, keeping the active-worker count and the percentage memory limits current."""
        before = w.state == ACTIVE
        w.state = state
        after = state == ACTIVE
        if before != after:
            self._active += 1 if after else -1
            self._active_workers = None
            if self._has_fraction_limit:
                pool = self._active * self._worker_memory if self._active else 0.0
                self._memory_limits = [s.bytes_gb(pool) for s in self._soft]

    def _add_worker(self, now: float, ready_now: bool) -> None:
        delay = 0.0 if ready_now else self.config.startup_seconds
        w = Worker(
            self._next_wid,
            now,
            now + delay,
            STARTING,
            self.config.slots_per_worker,
            self._cores,
            self._worker_memory,
            since=now,
        )
        self._next_wid += 1
        self.workers[w.wid] = w
        if delay == 0.0:
            self._set_active(w, ACTIVE)
        else:
            heapq.heappush(self._ready, (w.ready_at, w.wid))

    def _leave(self, w: Worker, now: float) -> None:
        self._set_active(w, GONE)
        self.worker_seconds += now - w.requested_at
        del self.workers[w.wid]

    def set_replicas(
        self, desired: int, now: float, mode: ScaleDownMode, *, initial: bool = False
    ) -> list[int]:
        """Apply a replica count at ``now``; returns the ids of the queries killed at once (abrupt mode;
        a shutting-down worker's queries killed at its termination are counted in ``killed`` later)."""
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
                w.leave_version += 1
                w.grace_done = False
                self._set_active(w, ACTIVE)
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
                elif mode == SHUTDOWN:
                    active.sort(key=lambda w: -w.wid)
                    for w in active[:excess]:
                        self._wind_down(w, now, SHUTTING_DOWN)
                elif self.config.grace_seconds > 0:
                    active.sort(key=lambda w: (len(w.running), -w.wid))
                    for w in active[:excess]:
                        self._wind_down(w, now, DRAINING)
                else:
                    active.sort(key=lambda w: (len(w.running), -w.wid))
                    for w in active[:excess]:
                        if w.running:
                            self._set_active(w, DRAINING)
                        else:
                            self._leave(w, now)
            if killed:
                self._dispatch(now)
        return killed

    def _wind_down(self, w: Worker, now: float, state: int) -> None:
        """Start ``w``'s drain or shutdown at ``now``: its grace period, and for a shutdown its kill."""
        self._set_active(w, state)
        w.leave_version += 1
        w.grace_done = False
        timers = self._timers
        heapq.heappush(timers, (now + self.config.grace_seconds, _GRACE_OVER, w.wid, w.leave_version))
        if state == SHUTTING_DOWN and math.isfinite(self.config.termination_grace_seconds):
            at = now + self.config.termination_grace_seconds
            heapq.heappush(timers, (at, _TERMINATE, w.wid, w.leave_version))

    def _timer(self, at: float, kind: int, w: Worker) -> None:
        if kind == _GRACE_OVER:
            w.grace_done = True
            if not w.running:
                heapq.heappush(self._timers, (at + self.config.grace_seconds, _EXIT, w.wid, w.leave_version))
        elif kind == _EXIT:
            self._leave(w, at)
        else:
            self._kill_all(w)
            self._leave(w, at)
            if self.queued:
                self._dispatch(at)

    def _kill_all(self, w: Worker) -> list[int]:
        ids = sorted(w.running)
        for q in ids:
            self.qstate[q] = KILLED
            self._release(q)
        self.killed += len(ids)
        w.running.clear()
        w.tags = []
        w.shared = False
        w.version += 1
        return ids

    # ---------------------------------------------------------------- processor sharing

    def _catch_up(self, w: Worker, now: float, n: int) -> None:
        """Bring ``w``'s virtual clock to ``now`` before its number of running queries changes from ``n``."""
        if n > w.cores:
            w.lag += (now - w.since) * (w.cores / n - 1.0)
        w.since = now

    def _schedule_shared(self, w: Worker, now: float) -> None:
        """Predict a shared worker's next completion at its current rate (superseding the last one)."""
        w.version += 1
        finish, q = w.tags[0]
        at = now + max(0.0, finish - now - w.lag) * len(w.running) / w.cores
        heapq.heappush(self._completions, (at, q, w.wid, w.version))

    def _share(self, w: Worker, now: float) -> None:
        """``w`` now has more queries than cores: one completion event, for its smallest finish tag."""
        w.shared = True
        tag = self._tag
        w.tags = [(tag[q], q) for q in w.running]
        heapq.heapify(w.tags)
        self._schedule_shared(w, now)

    def _unshare(self, w: Worker, now: float) -> None:
        """``w`` is back to no more queries than cores: every query completes on its own at full speed."""
        w.shared = False
        w.tags = []
        w.version += 1
        completions = self._completions
        tag = self._tag
        for q in sorted(w.running):
            heapq.heappush(completions, (max(now, tag[q] - w.lag), q, w.wid, w.version))

    # ---------------------------------------------------------------- queries

    def _eligible(self, g: int) -> bool:
        return self._group_running[g] < self._limits[g] and self._group_memory[g] < self._memory_limits[g]

    def _dispatch(self, now: float) -> None:
        if not self.queued:
            return
        queues = self._queues
        arrivals = self._arrivals
        memory = self._memory
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
            worker = self._pick_worker(memory[queues[best_g][0]])
            if worker is None:
                if not self._memory_limited:
                    return  # no free slot anywhere
                placed = self._place_other_head(best_g)
                if placed is None:
                    return
                best_g, worker = placed
            self._start(queues[best_g].popleft(), worker, now)
            self.queued -= 1

    def _place_other_head(self, skipped: int) -> tuple[int, Worker] | None:
        """When the first head fits in no worker's memory, the earliest other group's head that does."""
        queues = self._queues
        others = sorted(
            (self._arrivals[queue[0]], g)
            for g, queue in enumerate(queues)
            if queue and g != skipped and self._eligible(g)
        )
        for _, g in others:
            worker = self._pick_worker(self._memory[queues[g][0]])
            if worker is not None:
                return g, worker
        return None

    def _pick_worker(self, memory_gb: float) -> Worker | None:
        active = self._active_workers
        if active is None:
            active = self._active_workers = [w for w in self.workers.values() if w.state == ACTIVE]
        best: Worker | None = None
        best_free = 0
        slots = self.config.slots_per_worker
        if not self._memory_limited:
            for w in active:
                free = slots - len(w.running)
                if free > best_free:
                    if free == slots:
                        return w  # an idle worker: no later one can beat it
                    best, best_free = w, free
            return best
        best_room = -math.inf
        for w in active:
            free = slots - len(w.running)
            room = w.memory_gb - w.memory_used
            if (
                free > 0
                and memory_gb <= room + _MEMORY_EPSILON
                and (free > best_free or (free == best_free and room > best_room))
            ):
                best, best_free, best_room = w, free, room
        return best

    def _start(self, q: int, w: Worker, now: float) -> None:
        n = len(w.running)
        w.running.add(q)
        self.qstate[q] = RUNNING
        self.start[q] = now
        g = self._group[q]
        self._group_running[g] += 1
        m = self._memory[q]
        if m:
            self._group_memory[g] += m
            w.memory_used += m
            self.reserved_memory_gb += m
        self.running += 1
        if n + 1 <= w.cores:
            # Full speed: the lag is constant, so the completion instant is known now (with no lag it is
            # exactly start + service, the slot model's figure).
            finish = now + w.lag + self._service[q]
            self._tag[q] = finish
            heapq.heappush(self._completions, (finish - w.lag, q, w.wid, w.version))
            return
        # The sharing rate changes for every query on the worker.
        self._catch_up(w, now, n)
        finish = now + w.lag + self._service[q]
        self._tag[q] = finish
        if w.shared:
            heapq.heappush(w.tags, (finish, q))
            self._schedule_shared(w, now)
        else:
            self._share(w, now)

    def _release(self, q: int) -> None:
        """Take a query that stops running off the cluster's and its group's counts."""
        g = self._group[q]
        self._group_running[g] -= 1
        self.running -= 1
        m = self._memory[q]
        if m:
            # Sums that reach zero are reset so floating-point residue never blocks a start.
            self._group_memory[g] = self._group_memory[g] - m if self._group_running[g] else 0.0
            self.reserved_memory_gb = self.reserved_memory_gb - m if self.running else 0.0

    def _arrive(self, q: int, now: float) -> None:
        g = self._group[q]
        if (
            not self.queued
            and self._group_running[g] < self._limits[g]
            and self._group_memory[g] < self._memory_limits[g]
        ):
            w = self._pick_worker(self._memory[q])
            if w is not None:
                self._start(q, w, now)
                return
        self.qstate[q] = QUEUED
        self._queues[g].append(q)
        self.queued += 1
        if len(self._queues) > 1:
            # Another group's queue may block the FIFO head while this group could run.
            self._dispatch(now)

    def _complete(self, q: int, w: Worker, now: float) -> None:
        if w.shared:
            self._catch_up(w, now, len(w.running))
            heapq.heappop(w.tags)
        self.qstate[q] = DONE
        self.end[q] = now
        self.completed += 1
        running = w.running
        running.discard(q)
        if self._memory[q]:
            w.memory_used = w.memory_used - self._memory[q] if running else 0.0
        self._release(q)
        if w.state == DRAINING and not running and not self.config.grace_seconds:
            self._leave(w, now)
        elif w.state in (DRAINING, SHUTTING_DOWN) and not running:
            if w.grace_done:
                heapq.heappush(self._timers, (now + self.config.grace_seconds, _EXIT, w.wid, w.leave_version))
        elif w.shared:
            if len(running) > w.cores:
                self._schedule_shared(w, now)
            else:
                self._unshare(w, now)
        # Even a leaving worker frees its group's concurrency and memory for a query elsewhere.
        if self.queued:
            self._dispatch(now)

    def advance(self, until: float) -> None:
        """Process every arrival, completion and worker start-up with a time ``<= until``."""
        arrivals = self._arrivals
        n = len(arrivals)
        completions = self._completions
        ready = self._ready
        timers = self._timers
        workers = self.workers
        inf = math.inf
        while True:
            i = self._next_arrival
            ta = arrivals[i] if i < n else inf
            tc = completions[0][0] if completions else inf
            tr = ready[0][0] if ready else inf
            if timers:
                tt = timers[0][0]
                # Leaving workers' timers after completions at the same instant (a query that ends at
                # the termination deadline is not killed), before start-ups and arrivals.
                if tt < tc and tt <= tr and tt <= ta:
                    if tt > until:
                        break
                    _, kind, wid, version = heapq.heappop(timers)
                    w = workers.get(wid)
                    if w is not None and w.leave_version == version and w.state in (DRAINING, SHUTTING_DOWN):
                        self._timer(tt, kind, w)
                    continue
            # Completions first at equal times so a freed slot serves an arrival at the same instant.
            if tc <= ta and tc <= tr:
                if tc > until:
                    break
                _, q, wid, version = heapq.heappop(completions)
                w = workers.get(wid)
                # A worker's version moves on when its queries' completion instants change (sharing).
                if w is not None and w.version == version:
                    self._complete(q, w, tc)
            elif tr <= ta:
                if tr > until:
                    break
                _, wid = heapq.heappop(ready)
                w = workers.get(wid)
                if w is not None and w.state == STARTING:
                    self._set_active(w, ACTIVE)
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
        current = ready = draining = shutting = 0
        used_cores = used_memory = 0.0
        cores = self._cores
        for w in self.workers.values():
            if w.state == STARTING:
                current += 1
            elif w.state == ACTIVE:
                current += 1
                ready += 1
                used_cores += min(len(w.running), cores)
                used_memory += w.memory_used
            elif w.state == DRAINING:
                draining += 1
            elif w.state == SHUTTING_DOWN:
                shutting += 1
        ready_cores = ready * cores
        ready_memory = ready * self._worker_memory
        limit_bound = memory_bound = 0
        for g, queue in enumerate(self._queues):
            if not queue:
                continue
            if self._group_running[g] >= self._limits[g]:
                limit_bound += len(queue)
            elif self._group_memory[g] >= self._memory_limits[g]:
                if self._soft[g].fraction is None:
                    limit_bound += len(queue)
                else:
                    memory_bound += len(queue)
        slots = self.config.slots_per_worker
        return ClusterView(
            now=now,
            queued=self.queued,
            running=self.running,
            required_workers=-(-(self.queued + self.running) // slots),
            current_workers=current,
            ready_workers=ready,
            draining_workers=draining,
            busy_fraction=used_cores / ready_cores if ready_cores else 0.0,
            completed=self.completed,
            arrived=self._next_arrival,
            slots_per_worker=slots,
            limit_bound_queued=limit_bound,
            memory_bound_queued=memory_bound,
            cores_per_worker=cores,
            memory_per_worker_gb=self._worker_memory,
            memory_fraction=used_memory / ready_memory if ready_memory and self._memory_limited else 0.0,
            reserved_memory_gb=self.reserved_memory_gb,
            shutting_down_workers=shutting,
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
