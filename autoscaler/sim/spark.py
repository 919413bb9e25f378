"""A fast event-driven model of a Spark standalone worker pool under dynamic allocation.

What it keeps from Spark (apache/spark ``ExecutorAllocationManager``, ``ExecutorMonitor``, the standalone
``Master``; shared/REFERENCE.md §4):

- **Workers** have ``cores_per_worker`` cores. A requested worker is *starting* for ``startup_seconds``
  (pod scheduling, JVM, registration), then ``ALIVE``; workers form a StatefulSet, so they have ordinals
  and scale-down takes the highest ones. Workers are billed from request until they leave.
- **The master** hands each application executors of ``executor_cores`` cores up to the application's
  requested total, applications in arrival order (FIFO), spreading each one's new executors round-robin
  over the ALIVE workers sorted by free cores (``spreadOut``). An application that has never been given an
  executor is ``WAITING``. A launched executor holds its cores at once and registers with the driver
  ``executor_startup_seconds`` later; only then does it run tasks.
- **Applications** (the driver runs outside the pool, client deploy mode) run a chain of stages; a stage's
  tasks become schedulable together when the previous stage has finished, and every task runs on one slot
  (``executor_cores // task_cpus`` slots per executor). A slot freed by a task takes the application's next
  pending task at once, as Spark offers a freed executor's resources back immediately.
- **Dynamic allocation**, per application: ``maxNeeded = ceil((pending + running) / slots per executor)``.
  When the scheduler becomes backlogged a timer starts; ``schedulerBacklogTimeout`` (1 s) later the target
  grows by 1, then every ``sustainedSchedulerBacklogTimeout`` (1 s) by 2, 4, 8, ... (a round that adds
  fewer than asked resets the step to 1), never above ``maxNeeded`` or ``maxExecutors``; the timer stops
  when no task is pending. The target drops to ``max(maxNeeded, minExecutors)`` as soon as the need falls.
  An executor idle for ``executorIdleTimeout`` (60 s) is released unless that would leave fewer than
  ``max(minExecutors, target)``; one kept that way is released as soon as the target allows. The shuffle
  service is assumed on (idle executors hold no shuffle data); a finished application releases everything.
  Spark evaluates all this every 100 ms; here it happens at the exact instants the inputs change.
- **Scale-down** (the caller's choice per call):

  - ``decommission``: the master marks the worker DECOMMISSIONED and takes its executors away from their
    applications (so replacements may launch elsewhere); executors without running tasks exit at once, the
    others take no new task and exit when their running tasks have finished; the worker leaves when its
    last executor has exited. Nothing is killed.
  - ``wait-idle``: no decommission support; the controller lowers the StatefulSet only past workers that
    hold no executor (the master's ``coresused`` is 0), starting from the highest ordinal and stopping at the
    first busy one, so the replica count set may stay above the one asked for. The master keeps placing
    executors on those workers meanwhile.
  - ``abrupt``: the highest-ordinal workers are deleted at once; the running tasks on their executors are
    killed (counted) and re-queued, so every application still finishes. Shuffle output lost with the
    workers is not modelled (it would only make abrupt removal costlier).

  Starting workers are removed first in every mode (they are the highest ordinals anyway). Scale-up always
  adds new workers: a decommissioned Spark worker cannot come back.

Task wait (what the simulator scores): from the moment a task first became schedulable (its stage was
submitted) until the start of the attempt that completed, so the rerun of a killed task counts as waiting.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

import numpy as np

from autoscaler.sim.load import FloatArray
from autoscaler.sim.spark_load import SparkLoad

__all__ = [
    "ABRUPT",
    "DECOMMISSION",
    "WAIT_IDLE",
    "AppView",
    "DynamicAllocation",
    "PoolConfig",
    "PoolModel",
    "PoolPolicy",
    "PoolScaleDown",
    "PoolView",
]

PoolScaleDown = Literal["decommission", "wait-idle", "abrupt"]
DECOMMISSION: PoolScaleDown = "decommission"
WAIT_IDLE: PoolScaleDown = "wait-idle"
ABRUPT: PoolScaleDown = "abrupt"

# Worker states.
STARTING, ALIVE, DECOMMISSIONED, GONE = 0, 1, 2, 3
# Executor states: launched on a worker, registered with the driver, decommissioning, exited.
LAUNCHING, ACTIVE, RETIRING, EXITED = 0, 1, 2, 3
# Timer kinds.
_WORKER_READY, _EXECUTOR_REGISTERED, _ADD_TIMER, _IDLE_TIMER = 0, 1, 2, 3

_INF = math.inf


@dataclass(frozen=True, slots=True)
class DynamicAllocation:
    """``spark.dynamicAllocation.*`` of every application (``max_executors`` None: Spark's unbounded)."""

    min_executors: int = 0
    max_executors: int | None = None
    initial_executors: int = 0
    scheduler_backlog_timeout_s: float = 1.0
    sustained_backlog_timeout_s: float = 1.0
    executor_idle_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.min_executors < 0:
            raise ValueError("min_executors must be >= 0")
        if self.max_executors is not None and self.max_executors < max(1, self.min_executors):
            raise ValueError("max_executors must be >= max(1, min_executors)")
        upper = self.max_executors if self.max_executors is not None else self.initial_executors
        if not self.min_executors <= self.initial_executors <= upper:
            raise ValueError("initial_executors must be within [min_executors, max_executors]")
        for name in ("scheduler_backlog_timeout_s", "sustained_backlog_timeout_s", "executor_idle_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds")


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Static facts about the pool. ``initial_workers`` None lets the policy's first decision at t=0 set the
    starting size (already ALIVE, not counted as a scale action)."""

    cores_per_worker: int = 4
    executor_cores: int = 1
    task_cpus: int = 1
    startup_seconds: float = 45.0
    executor_startup_seconds: float = 5.0
    max_workers: int = 16
    slo_seconds: float = 60.0
    initial_workers: int | None = None
    allocation: DynamicAllocation = field(default_factory=DynamicAllocation)

    def __post_init__(self) -> None:
        if self.cores_per_worker < 1 or self.executor_cores < 1 or self.task_cpus < 1:
            raise ValueError("cores per worker, executor cores and task cpus must be >= 1")
        if self.executor_cores > self.cores_per_worker:
            raise ValueError("an executor must fit on a worker: executor_cores <= cores_per_worker")
        if self.executor_cores < self.task_cpus:
            raise ValueError("executor_cores must not be less than task_cpus (an executor needs a slot)")
        for name in ("startup_seconds", "executor_startup_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0")
        if self.max_workers < 1:
            raise ValueError("max_workers must be >= 1")

    @property
    def slots_per_executor(self) -> int:
        return self.executor_cores // self.task_cpus

    @property
    def executors_per_worker(self) -> int:
        return self.cores_per_worker // self.executor_cores

    @property
    def slots_per_worker(self) -> int:
        """Task slots of a worker filled with executors."""
        return self.executors_per_worker * self.slots_per_executor


class AppView(NamedTuple):
    """One running application as the master and its driver report it."""

    app_id: int
    pending: int
    running: int
    next_wave: int
    executors: int
    target: int
    waiting: bool
    #: Mean run time of the active stage's completed tasks; None before one completes.
    task_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class PoolView:
    """What a controller can observe at ``now``.

    ``current_workers`` is the replica count in effect (starting + ALIVE, not decommissioned);
    ``ready_workers`` the ALIVE ones among them. ``busy_fraction`` is the cores running tasks over the cores
    of ready workers (the CPU-utilisation proxy; 0 without ready workers). ``cores_used`` counts cores the
    master has given to executors on ready workers (its ``coresused``). ``waiting_apps`` are applications
    that have never had an executor (the master's WAITING). ``next_wave_tasks`` are the tasks of each running
    application's next stage.
    """

    now: float
    pending_tasks: int
    running_tasks: int
    next_wave_tasks: int
    current_workers: int
    ready_workers: int
    decommissioning_workers: int
    cores_per_worker: int
    slots_per_worker: int
    ready_cores: int
    cores_used: int
    busy_fraction: float
    executors: int
    waiting_apps: int
    completed_tasks: int
    arrived_apps: int
    apps: tuple[AppView, ...]

    @property
    def remaining_tasks(self) -> int:
        return self.pending_tasks + self.running_tasks


class PoolPolicy(Protocol):
    """A scaling controller of a pool as the simulator drives it.

    ``desired`` is called every ``period_seconds`` of simulated time (at t=0 first) and returns the worker
    count to set; ``scale_down`` says how the pool removes workers when that count drops. A policy may
    keep state; the simulator never calls it with a smaller ``now`` than before.
    """

    @property
    def name(self) -> str: ...

    @property
    def period_seconds(self) -> float: ...

    @property
    def scale_down(self) -> PoolScaleDown: ...

    def desired(self, now: float, view: PoolView) -> int: ...


class _Worker:
    __slots__ = ("busy", "cores", "executors", "free", "ready_at", "requested_at", "state", "wid")

    def __init__(self, wid: int, requested_at: float, ready_at: float, cores: int) -> None:
        self.wid = wid
        self.requested_at = requested_at
        self.ready_at = ready_at
        self.state = STARTING
        self.cores = cores
        self.free = cores
        self.busy = 0
        self.executors: list[_Executor] = []


class _Executor:
    __slots__ = (
        "app",
        "cores",
        "eid",
        "idle_since",
        "running",
        "slots",
        "state",
        "tasks",
        "timed_out",
        "worker",
    )

    def __init__(self, eid: int, app: _App, worker: _Worker, cores: int, slots: int) -> None:
        self.eid = eid
        self.app = app
        self.worker = worker
        self.cores = cores
        self.slots = slots
        self.state = LAUNCHING
        self.running = 0
        self.tasks: list[int] = []
        self.idle_since = _INF
        self.timed_out = False


class _App:
    __slots__ = (
        "active",
        "add_time",
        "aid",
        "arrival",
        "done_count",
        "done_seconds",
        "free",
        "last_stage",
        "launching",
        "next_task",
        "pending",
        "retiring",
        "retry",
        "running",
        "stage",
        "stage_left",
        "target",
        "timed_out",
        "to_add",
        "waiting",
    )

    def __init__(self, aid: int, arrival: float, first_stage: int, last_stage: int, target: int) -> None:
        self.aid = aid
        self.arrival = arrival
        self.stage = first_stage
        self.last_stage = last_stage
        self.next_task = 0
        self.retry: list[int] = []
        self.pending = 0
        self.running = 0
        self.stage_left = 0
        self.launching = 0
        self.active = 0
        self.retiring = 0
        self.free: list[_Executor] = []
        self.timed_out: list[_Executor] = []
        self.target = target
        self.to_add = 1
        self.add_time = _INF
        self.waiting = True
        # Run time of the active stage's completed tasks: what the driver's stage list reports.
        self.done_seconds = 0.0
        self.done_count = 0


class PoolModel:
    """The pool's state, advanced event by event with :meth:`advance`; see the module docstring."""

    def __init__(self, load: SparkLoad, config: PoolConfig) -> None:
        self.config = config
        self.load = load
        alloc = config.allocation
        self._min_exec = alloc.min_executors
        self._max_exec = alloc.max_executors if alloc.max_executors is not None else 1 << 30
        self._tpe = config.slots_per_executor
        self._arrivals: list[float] = load.app_arrivals.tolist()
        self._app_stages: list[int] = load.app_stages.tolist()
        self._stage_tasks: list[int] = load.stage_tasks.tolist()
        self._seconds: list[float] = load.task_seconds.tolist()
        tasks = load.task_count
        #: Start and end of each task's final attempt and the worker it ran on (-1: not started).
        self.task_start: list[float] = [math.nan] * tasks
        self.task_end: list[float] = [math.nan] * tasks
        self.task_worker: list[int] = [-1] * tasks
        #: When each worker (by id) became ALIVE and when it left (nan: not yet).
        self.worker_ready: list[float] = []
        self.worker_left: list[float] = []
        self._attempt: list[int] = [0] * tasks
        self._task_exec: list[_Executor | None] = [None] * tasks
        self.stage_ready: list[float] = [math.nan] * load.stage_count
        self.app_done: list[float] = [math.nan] * load.app_count
        self._next_app = 0
        self.apps: dict[int, _App] = {}
        self.workers: dict[int, _Worker] = {}
        self.members: list[_Worker] = []
        self._completions: list[tuple[float, int, int]] = []
        self._timers: list[tuple[float, int, int, object]] = []
        self._seq = 0
        self._next_wid = 0
        self._next_eid = 0
        self._free_alive = 0
        self.now = 0.0
        self.pending = 0
        self.running = 0
        self.completed = 0
        self.arrived_tasks = 0
        self.killed = 0
        self.waiting_apps = 0
        self.apps_done = 0
        self.worker_seconds = 0.0
        self.replicas = 0
        self.scale_actions = 0

    # ---------------------------------------------------------------- timers

    def _timer(self, at: float, kind: int, ref: object) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (at, self._seq, kind, ref))

    # ---------------------------------------------------------------- workers

    def _add_worker(self, now: float, ready_now: bool) -> None:
        delay = 0.0 if ready_now else self.config.startup_seconds
        w = _Worker(self._next_wid, now, now + delay, self.config.cores_per_worker)
        self._next_wid += 1
        self.workers[w.wid] = w
        self.members.append(w)
        self.worker_ready.append(math.nan)
        self.worker_left.append(math.nan)
        if delay == 0.0:
            w.state = ALIVE
            self.worker_ready[w.wid] = now
            self._free_alive += w.free
        else:
            self._timer(w.ready_at, _WORKER_READY, w)

    def _leave(self, w: _Worker, now: float) -> None:
        if w.state == ALIVE:
            self._free_alive -= w.free
        w.state = GONE
        self.worker_left[w.wid] = now
        self.worker_seconds += now - w.requested_at
        del self.workers[w.wid]

    def _decommission(self, w: _Worker, now: float) -> None:
        self._free_alive -= w.free
        w.state = DECOMMISSIONED
        for e in list(w.executors):
            if e.state == ACTIVE and e.running:
                app = e.app
                e.state = RETIRING
                app.active -= 1
                app.retiring += 1
                if e.running < e.slots:
                    app.free.remove(e)
                e.timed_out = False
            else:
                self._exit(e)
        if not w.executors:
            self._leave(w, now)

    def _kill_worker(self, w: _Worker, now: float) -> None:
        touched: dict[int, _App] = {}
        attempt = self._attempt
        for e in w.executors:
            if e.tasks:
                app = e.app
                touched[app.aid] = app
                if not app.pending and app.add_time == _INF:
                    # A failed task re-marks the scheduler as backlogged (SPARK-8366).
                    app.add_time = now + self.config.allocation.scheduler_backlog_timeout_s
                    self._timer(app.add_time, _ADD_TIMER, app)
                n = len(e.tasks)
                for task in e.tasks:
                    attempt[task] += 1
                    self._task_exec[task] = None
                    self.task_start[task] = math.nan
                    self.task_worker[task] = -1
                    app.retry.append(task)
                app.running -= n
                app.pending += n
                self.running -= n
                self.pending += n
                self.killed += n
                w.busy -= n * self.config.task_cpus
                if e.running < e.slots:
                    app.free.remove(e)
                # Out of the application's slots before its running count is cleared.
                e.state = RETIRING
                app.active -= 1
                app.retiring += 1
                e.running = 0
                e.tasks.clear()
        for e in list(w.executors):
            self._exit(e)
        self._leave(w, now)
        for app in touched.values():
            self._offer(app, now)

    def set_replicas(self, desired: int, now: float, mode: PoolScaleDown, *, initial: bool = False) -> None:
        """Apply a worker count at ``now`` (``wait-idle`` may keep more; see the module docstring)."""
        self.advance(now)
        desired = max(0, min(int(desired), self.config.max_workers))
        members = self.members
        if desired > len(members):
            for _ in range(desired - len(members)):
                self._add_worker(now, initial)
        elif desired < len(members):
            if mode == WAIT_IDLE:
                while len(members) > desired:
                    w = members[-1]
                    if w.state != STARTING and w.executors:
                        break
                    members.pop()
                    self._leave(w, now)
            else:
                leaving = members[desired:]
                del members[desired:]
                for w in reversed(leaving):
                    if w.state == STARTING:
                        self._leave(w, now)
                    elif mode == ABRUPT:
                        self._kill_worker(w, now)
                    else:
                        self._decommission(w, now)
        self._schedule(now)
        count = len(members)
        if count != self.replicas and not initial:
            self.scale_actions += 1
        self.replicas = count

    # ---------------------------------------------------------------- the master

    def _schedule(self, now: float) -> None:
        cores = self.config.executor_cores
        if self._free_alive < cores or not self.apps:
            return
        wants: list[tuple[_App, int]] = []
        for app in self.apps.values():
            want = app.target - app.launching - app.active
            if want > 0:
                wants.append((app, want))
        if not wants:
            return
        for app, want in wants:
            usable = sorted(
                (w for w in self.members if w.state == ALIVE and w.free >= cores),
                key=lambda w: (-w.free, w.wid),
            )
            while want and usable:
                for w in usable:
                    if w.free >= cores:
                        self._launch(app, w, now)
                        want -= 1
                        if not want:
                            break
                usable = [w for w in usable if w.free >= cores]
            if self._free_alive < cores:
                return

    def _launch(self, app: _App, w: _Worker, now: float) -> None:
        cores = self.config.executor_cores
        e = _Executor(self._next_eid, app, w, cores, self._tpe)
        self._next_eid += 1
        w.free -= cores
        self._free_alive -= cores
        w.executors.append(e)
        app.launching += 1
        if app.waiting:
            app.waiting = False
            self.waiting_apps -= 1
        delay = self.config.executor_startup_seconds
        if delay > 0:
            self._timer(now + delay, _EXECUTOR_REGISTERED, e)
        else:
            self._register(e, now)

    def _register(self, e: _Executor, now: float) -> None:
        if e.state != LAUNCHING:
            return
        app = e.app
        e.state = ACTIVE
        app.launching -= 1
        app.active += 1
        app.free.append(e)
        self._idle(e, now)
        self._offer(app, now)
        if app.add_time <= now:
            # The executor count is an input of the add round Spark retries every tick.
            self._allocate(app, now)
        if app.timed_out:
            self._reap(app, now)

    def _exit(self, e: _Executor) -> None:
        """The executor leaves its worker (no running task may remain on it)."""
        app = e.app
        if e.state == LAUNCHING:
            app.launching -= 1
        elif e.state == ACTIVE:
            app.active -= 1
            if e.running < e.slots:
                app.free.remove(e)
        elif e.state == RETIRING:
            app.retiring -= 1
        e.state = EXITED
        w = e.worker
        w.free += e.cores
        if w.state == ALIVE:
            self._free_alive += e.cores
        w.executors.remove(e)

    # ---------------------------------------------------------------- dynamic allocation

    def _allocate(self, app: _App, now: float) -> None:
        """``updateAndSyncNumExecutorsTarget`` for one application."""
        needed = -(-(app.pending + app.running) // self._tpe)
        if needed < app.target:
            app.target = max(needed, self._min_exec)
            app.to_add = 1
            if app.timed_out:
                self._reap(app, now)
            return
        if app.add_time > now:
            return
        old = app.target
        if old >= self._max_exec:
            app.to_add = 1
            return
        target = max(old, app.active + app.retiring) + app.to_add
        target = max(min(target, needed, self._max_exec), self._min_exec)
        delta = target - old
        app.target = target
        if delta <= 0:
            app.to_add = 1
            return
        app.to_add = app.to_add * 2 if delta == app.to_add else 1
        app.add_time = now + self.config.allocation.sustained_backlog_timeout_s
        self._timer(app.add_time, _ADD_TIMER, app)
        self._schedule(now)

    def _idle(self, e: _Executor, now: float) -> None:
        e.idle_since = now
        self._timer(now + self.config.allocation.executor_idle_timeout_s, _IDLE_TIMER, e)

    def _reap(self, app: _App, now: float) -> None:
        """Release timed-out idle executors while at least ``max(min, target)`` stay (``removeExecutors``)."""
        count = app.active
        floor = max(self._min_exec, app.target)
        kept: list[_Executor] = []
        released = False
        for e in app.timed_out:
            if not e.timed_out or e.state != ACTIVE:
                continue
            if count - 1 < floor:
                kept.append(e)
                continue
            e.timed_out = False
            self._exit(e)
            count -= 1
            released = True
        app.timed_out = kept
        if released:
            self._schedule(now)

    # ---------------------------------------------------------------- applications and tasks

    def _arrive(self, a: int, now: float) -> None:
        first = self._app_stages[a]
        app = _App(a, now, first, self._app_stages[a + 1], self.config.allocation.initial_executors)
        self.apps[a] = app
        self.waiting_apps += 1
        self._submit(app, now)
        if app.target:
            self._schedule(now)

    def _submit(self, app: _App, now: float) -> None:
        s = app.stage
        self.stage_ready[s] = now
        first, end = self._stage_tasks[s], self._stage_tasks[s + 1]
        n = end - first
        app.next_task = first
        app.pending = n
        app.stage_left = n
        self.pending += n
        self.arrived_tasks += n
        if app.add_time == _INF:
            app.add_time = now + self.config.allocation.scheduler_backlog_timeout_s
            self._timer(app.add_time, _ADD_TIMER, app)
        self._offer(app, now)
        self._allocate(app, now)

    def _offer(self, app: _App, now: float) -> None:
        free = app.free
        while app.pending and free:
            e = free[-1]
            self._start(app, e, now)
            if e.running == e.slots:
                free.pop()

    def _start(self, app: _App, e: _Executor, now: float) -> None:
        if app.retry:
            task = app.retry.pop()
        else:
            task = app.next_task
            app.next_task = task + 1
        app.pending -= 1
        app.running += 1
        self.pending -= 1
        self.running += 1
        e.running += 1
        e.tasks.append(task)
        e.worker.busy += self.config.task_cpus
        e.idle_since = _INF
        e.timed_out = False
        self._task_exec[task] = e
        self.task_start[task] = now
        self.task_worker[task] = e.worker.wid
        heapq.heappush(self._completions, (now + self._seconds[task], task, self._attempt[task]))
        if not app.pending:
            # onSchedulerQueueEmpty: the add timer stops and the ramp restarts at 1.
            app.add_time = _INF
            app.to_add = 1

    def _complete(self, task: int, now: float) -> None:
        e = self._task_exec[task]
        assert e is not None
        self._task_exec[task] = None
        self.task_end[task] = now
        app = e.app
        e.running -= 1
        e.tasks.remove(task)
        e.worker.busy -= self.config.task_cpus
        app.running -= 1
        self.running -= 1
        self.completed += 1
        app.done_seconds += now - self.task_start[task]
        app.done_count += 1
        app.stage_left -= 1
        if app.stage_left == 0:
            app.stage += 1
            app.done_seconds, app.done_count = 0.0, 0
            if app.stage == app.last_stage:
                self._finish(app, now)
                return
            self._freed(e, now)
            self._submit(app, now)
            return
        if app.pending and e.state == ACTIVE:
            self._start(app, e, now)
            return
        self._freed(e, now)
        if -(-(app.pending + app.running) // self._tpe) < app.target:
            self._allocate(app, now)

    def _freed(self, e: _Executor, now: float) -> None:
        if e.state == ACTIVE:
            if e.running == e.slots - 1:
                e.app.free.append(e)
            if not e.running:
                self._idle(e, now)
        elif e.state == RETIRING and not e.running:
            w = e.worker
            self._exit(e)
            if w.state == DECOMMISSIONED and not w.executors:
                self._leave(w, now)

    def _finish(self, app: _App, now: float) -> None:
        """The driver stops: every executor of the application exits."""
        del self.apps[app.aid]
        self.apps_done += 1
        self.app_done[app.aid] = now
        if app.waiting:
            app.waiting = False
            self.waiting_apps -= 1
        app.add_time = _INF
        app.target = 0
        for w in list(self.workers.values()):
            mine = [e for e in w.executors if e.app is app]
            if not mine:
                continue
            for e in mine:
                e.state = EXITED
                w.free += e.cores
                if w.state == ALIVE:
                    self._free_alive += e.cores
            w.executors = [e for e in w.executors if e.app is not app]
            if w.state == DECOMMISSIONED and not w.executors:
                self._leave(w, now)
        self._schedule(now)

    # ---------------------------------------------------------------- the event loop

    def _fire(self, kind: int, ref: object, at: float) -> None:
        if kind == _IDLE_TIMER:
            assert isinstance(ref, _Executor)
            e = ref
            timeout = self.config.allocation.executor_idle_timeout_s
            if e.state == ACTIVE and not e.running and not e.timed_out and e.idle_since + timeout == at:
                e.timed_out = True
                e.app.timed_out.append(e)
                self._reap(e.app, at)
        elif kind == _ADD_TIMER:
            assert isinstance(ref, _App)
            if ref.add_time == at and ref.aid in self.apps:
                self._allocate(ref, at)
        elif kind == _EXECUTOR_REGISTERED:
            assert isinstance(ref, _Executor)
            self._register(ref, at)
        else:
            assert isinstance(ref, _Worker)
            if ref.state == STARTING:
                ref.state = ALIVE
                self.worker_ready[ref.wid] = at
                self._free_alive += ref.free
                self._schedule(at)

    def advance(self, until: float) -> None:
        """Process every arrival, task end, start-up and timer with a time ``<= until``."""
        arrivals = self._arrivals
        n = len(arrivals)
        completions = self._completions
        timers = self._timers
        attempt = self._attempt
        inf = _INF
        while True:
            i = self._next_app
            ta = arrivals[i] if i < n else inf
            tc = completions[0][0] if completions else inf
            tt = timers[0][0] if timers else inf
            # Task ends first at equal times so freed slots serve what arrives at the same instant.
            if tc <= tt and tc <= ta:
                if tc > until:
                    break
                _, task, att = heapq.heappop(completions)
                if att == attempt[task]:
                    self._complete(task, tc)
            elif tt <= ta:
                if tt > until:
                    break
                _, _, kind, ref = heapq.heappop(timers)
                self._fire(kind, ref, tt)
            else:
                if ta > until:
                    break
                self._next_app = i + 1
                self._arrive(i, ta)
        self.now = max(self.now, until)

    # ---------------------------------------------------------------- observation

    def view(self, now: float) -> PoolView:
        ready = ready_cores = used = busy = 0
        for w in self.members:
            if w.state == ALIVE:
                ready += 1
                ready_cores += w.cores
                used += w.cores - w.free
                busy += w.busy
        stage_tasks = self._stage_tasks
        apps: list[AppView] = []
        next_wave = executors = 0
        for app in self.apps.values():
            nxt = app.stage + 1
            wave = stage_tasks[nxt + 1] - stage_tasks[nxt] if nxt < app.last_stage else 0
            next_wave += wave
            executors += app.active
            done = app.done_count
            apps.append(
                AppView(
                    app.aid,
                    app.pending,
                    app.running,
                    wave,
                    app.active,
                    app.target,
                    app.waiting,
                    app.done_seconds / done if done else None,
                )
            )
        return PoolView(
            now=now,
            pending_tasks=self.pending,
            running_tasks=self.running,
            next_wave_tasks=next_wave,
            current_workers=len(self.members),
            ready_workers=ready,
            decommissioning_workers=len(self.workers) - len(self.members),
            cores_per_worker=self.config.cores_per_worker,
            slots_per_worker=self.config.slots_per_worker,
            ready_cores=ready_cores,
            cores_used=used,
            busy_fraction=busy / ready_cores if ready_cores else 0.0,
            executors=executors,
            waiting_apps=self.waiting_apps,
            completed_tasks=self.completed,
            arrived_apps=self._next_app,
            apps=tuple(apps),
        )

    @property
    def arrived_apps(self) -> int:
        return self._next_app

    def billed_workers(self) -> int:
        return len(self.workers)

    def member_workers(self) -> int:
        return len(self.members)

    def head_wait(self, now: float) -> float:
        """How long the oldest pending task has waited (0 with nothing pending)."""
        oldest = min((self.stage_ready[a.stage] for a in self.apps.values() if a.pending), default=now)
        return now - oldest

    def finish(self, end: float) -> float:
        """Worker-seconds including the workers still present at ``end``."""
        return self.worker_seconds + sum(end - w.requested_at for w in self.workers.values())

    def started_waits(self) -> FloatArray:
        """Waits of the tasks whose final attempt has started (see the module docstring)."""
        start = np.asarray(self.task_start, dtype=np.float64)
        ready = np.asarray(self.stage_ready, dtype=np.float64)[self.load.task_stage()]
        started = ~np.isnan(start)
        return start[started] - ready[started]

    def pending_waits(self, now: float) -> FloatArray:
        """How long each task still pending at ``now`` has waited."""
        waits: list[float] = []
        for app in self.apps.values():
            if app.pending:
                waits.extend([now - self.stage_ready[app.stage]] * app.pending)
        return np.asarray(waits, dtype=np.float64)

    def executor_count(self) -> int:
        return sum(len(w.executors) for w in self.workers.values())
