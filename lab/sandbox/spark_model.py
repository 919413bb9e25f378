"""The emulated Spark standalone pool: workers, applications, jobs, stages, executors.

A pure model: nothing moves except in :meth:`SparkPool.advance`, which takes the model time as an
argument and replays every event (task end, executor start, idle timeout) in time order up to it, so
the figures do not depend on how often it is called. The HTTP faces live in
:mod:`lab.sandbox.spark_http`.

What it keeps from real Spark (shared/REFERENCE.md §4):

- the standalone master hands executors of ``executor_cores`` cores to applications in submission
  order (FIFO), spreading them over the alive workers with the most free cores; an application that
  never got an executor is ``WAITING``;
- a task runs on one free slot (``tasksPerExecutor = executor cores // task cpus``); stages of a job run
  one after another (later stages are ``PENDING`` until their parent completes), jobs of one application
  run side by side, earliest stage first;
- dynamic allocation asks for ``ceil(remaining x ratio / tasksPerExecutor)`` executors clamped to
  [min, max] (at least ``initialExecutors`` until the first job) and gives back executors idle for
  ``executorIdleTimeout``. Unlike Spark it asks for the whole target at once, without the 1, 2, 4, ...
  ramp;
- a decommissioned worker takes no new executors; its executors finish their running tasks, take no
  new ones and leave; the drained worker then leaves the pool. A killed (``DEAD``) worker loses its
  executors at once and their running tasks go back to pending as failed attempts.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

ALIVE = "ALIVE"
DECOMMISSIONED = "DECOMMISSIONED"
DEAD = "DEAD"

WAITING = "WAITING"
RUNNING = "RUNNING"
FINISHED = "FINISHED"

STAGE_PENDING = "PENDING"
STAGE_ACTIVE = "ACTIVE"
STAGE_COMPLETE = "COMPLETE"

JOB_RUNNING = "RUNNING"
JOB_SUCCEEDED = "SUCCEEDED"

DRIVER_ID = "driver"
SPARK_VERSION = "4.0.0"


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One stage to run: ``tasks`` tasks of ``task_seconds`` seconds each."""

    tasks: int
    task_seconds: float
    name: str = ""

    def __post_init__(self) -> None:
        if self.tasks < 1:
            raise ValueError("a stage has at least one task")
        if not self.task_seconds > 0:
            raise ValueError("task_seconds must be positive")


@dataclass(frozen=True, slots=True)
class DynamicAllocation:
    """``spark.dynamicAllocation.*``; ``max_executors=None`` is Spark's unbounded default."""

    min_executors: int = 0
    max_executors: int | None = None
    initial_executors: int | None = None
    executor_allocation_ratio: float = 1.0
    executor_idle_timeout_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.min_executors < 0:
            raise ValueError("min_executors must not be negative")
        if self.max_executors is not None and self.max_executors < max(1, self.min_executors):
            raise ValueError("max_executors must be at least 1 and at least min_executors")
        if not 0 < self.executor_allocation_ratio <= 1:
            raise ValueError("executor_allocation_ratio must be in (0, 1]")

    def clamp(self, executors: int) -> int:
        low = max(executors, self.min_executors)
        return low if self.max_executors is None else min(low, self.max_executors)


@dataclass(frozen=True, slots=True)
class AppSpec:
    """How an application was submitted: the settings its driver reports in ``/environment``."""

    name: str
    executor_cores: int = 1
    task_cpus: int = 1
    executor_memory_mb: int = 1024
    dynamic_allocation: DynamicAllocation | None = None
    max_cores: int | None = None
    local_cores: int | None = None
    finish_when_idle: bool = False
    user: str = "spark"
    extra_properties: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.executor_cores < 1 or self.task_cpus < 1:
            raise ValueError("executor_cores and task_cpus must be positive")
        if self.executor_cores < self.task_cpus:
            raise ValueError("executor_cores must not be less than task_cpus (Spark refuses to start)")
        if self.local_cores is not None and self.local_cores < 1:
            raise ValueError("local_cores must be positive")

    @property
    def tasks_per_executor(self) -> int:
        return self.executor_cores // self.task_cpus

    @property
    def local(self) -> bool:
        return self.local_cores is not None

    def spark_master(self, pool_url: str) -> str:
        return f"local[{self.local_cores}]" if self.local_cores is not None else pool_url

    def properties(self, app_id: str, pool_url: str) -> dict[str, str]:
        props = {
            "spark.app.id": app_id,
            "spark.app.name": self.name,
            "spark.master": self.spark_master(pool_url),
            "spark.executor.memory": f"{self.executor_memory_mb}m",
            "spark.executor.id": DRIVER_ID,
            "spark.driver.host": "127.0.0.1",
            "spark.submit.deployMode": "client",
        }
        # Like a real submission, settings left at their defaults are absent from the environment.
        if self.executor_cores != 1:
            props["spark.executor.cores"] = str(self.executor_cores)
        if self.task_cpus != 1:
            props["spark.task.cpus"] = str(self.task_cpus)
        if self.max_cores is not None:
            props["spark.cores.max"] = str(self.max_cores)
        da = self.dynamic_allocation
        if da is not None:
            props["spark.dynamicAllocation.enabled"] = "true"
            props["spark.dynamicAllocation.shuffleTracking.enabled"] = "true"
            props["spark.dynamicAllocation.minExecutors"] = str(da.min_executors)
            if da.max_executors is not None:
                props["spark.dynamicAllocation.maxExecutors"] = str(da.max_executors)
            if da.initial_executors is not None:
                props["spark.dynamicAllocation.initialExecutors"] = str(da.initial_executors)
            if da.executor_allocation_ratio != 1.0:
                props["spark.dynamicAllocation.executorAllocationRatio"] = str(da.executor_allocation_ratio)
            props["spark.dynamicAllocation.executorIdleTimeout"] = f"{da.executor_idle_timeout_seconds:g}s"
        props.update(self.extra_properties)
        return props


@dataclass(slots=True)
class Worker:
    worker_id: str
    host: str
    port: int
    cores: int
    memory_mb: int
    registered_at: float
    state: str = ALIVE
    executors: list[Executor] = field(default_factory=list)

    @property
    def cores_used(self) -> int:
        return sum(e.cores for e in self.executors)

    @property
    def memory_used_mb(self) -> int:
        return sum(e.memory_mb for e in self.executors)

    @property
    def cores_free(self) -> int:
        return self.cores - self.cores_used if self.state == ALIVE else 0


@dataclass(slots=True)
class RunningTask:
    stage: Stage
    started_at: float
    ends_at: float


@dataclass(slots=True)
class Executor:
    executor_id: str
    app_id: str
    worker: Worker | None
    cores: int
    slots: int
    memory_mb: int
    added_at: float
    ready_at: float
    running: list[RunningTask] = field(default_factory=list)
    completed_tasks: int = 0
    failed_tasks: int = 0
    busy_seconds: float = 0.0
    idle_since: float | None = None
    decommissioning: bool = False

    @property
    def host(self) -> str:
        return self.worker.host if self.worker is not None else "127.0.0.1"

    def ready(self, now: float) -> bool:
        return self.ready_at <= now

    def free_slots(self, now: float) -> int:
        if self.decommissioning or not self.ready(now):
            return 0
        return self.slots - len(self.running)


@dataclass(slots=True)
class Stage:
    stage_id: int
    job_id: int
    num_tasks: int
    task_seconds: float
    name: str
    status: str = STAGE_PENDING
    running: int = 0
    completed: int = 0
    failed: int = 0
    submitted_at: float | None = None
    first_launch_at: float | None = None
    completed_at: float | None = None
    run_seconds: float = 0.0

    @property
    def unstarted(self) -> int:
        return self.num_tasks - self.completed - self.running

    @property
    def remaining(self) -> int:
        return self.num_tasks - self.completed


@dataclass(slots=True)
class Job:
    job_id: int
    name: str
    stages: list[Stage]
    submitted_at: float
    status: str = JOB_RUNNING
    completed_at: float | None = None


@dataclass(slots=True)
class Application:
    app_id: str
    spec: AppSpec
    submitted_at: float
    state: str = WAITING
    finished_at: float | None = None
    jobs: list[Job] = field(default_factory=list)
    executors: list[Executor] = field(default_factory=list)
    removed_executors: int = 0
    next_executor: int = 0
    initializing: bool = True

    @property
    def stages(self) -> list[Stage]:
        return [s for job in self.jobs for s in job.stages]

    def active_stages(self) -> list[Stage]:
        return [s for s in self.stages if s.status == STAGE_ACTIVE]

    def pending_stages(self) -> list[Stage]:
        return [s for s in self.stages if s.status == STAGE_PENDING]

    @property
    def remaining_tasks(self) -> int:
        return sum(s.remaining for s in self.active_stages())

    @property
    def running_tasks(self) -> int:
        return sum(s.running for s in self.active_stages())

    @property
    def cores_granted(self) -> int:
        return 0 if self.spec.local else sum(e.cores for e in self.executors)

    def executors_needed(self) -> int:
        """Spark's ``maxNumExecutorsNeeded`` (unclamped)."""
        ratio = (
            self.spec.dynamic_allocation.executor_allocation_ratio if self.spec.dynamic_allocation else 1.0
        )
        return math.ceil(self.remaining_tasks * ratio / self.spec.tasks_per_executor)

    def executor_target(self) -> int | None:
        """Executors this application asks the master for; ``None`` means as many as fit."""
        da = self.spec.dynamic_allocation
        if da is None:
            if self.spec.max_cores is None:
                return None
            return self.spec.max_cores // self.spec.executor_cores
        target = da.clamp(self.executors_needed())
        if self.initializing:
            initial = da.initial_executors if da.initial_executors is not None else da.min_executors
            target = max(target, da.clamp(initial))
        return target


class SparkPool:
    """One standalone master with its workers and applications.

    ``now`` is model time in seconds; ``epoch`` is the Unix time that model time 0 stands for (dates
    in the JSON). Every mutating call acts at the current model time.
    """

    def __init__(
        self,
        *,
        name: str = "sandbox",
        now: float = 0.0,
        epoch: float = 1_750_000_000.0,
        decommission_enabled: bool = False,
        executor_start_seconds: float = 0.0,
        master_host: str = "127.0.0.1",
        master_port: int = 7077,
    ) -> None:
        if executor_start_seconds < 0:
            raise ValueError("executor_start_seconds must not be negative")
        self.name = name
        self.now = now
        self.epoch = epoch
        self.decommission_enabled = decommission_enabled
        self.executor_start_seconds = executor_start_seconds
        self.url = f"spark://{master_host}:{master_port}"
        self.workers: list[Worker] = []
        self.departed_workers: list[Worker] = []
        self.apps: list[Application] = []
        self._next_app = 0
        self._next_job: dict[str, int] = {}
        self._next_stage: dict[str, int] = {}
        self._next_worker = 0

    # ------------------------------------------------------------------ queries

    def app(self, app_id: str) -> Application:
        for app in self.apps:
            if app.app_id == app_id:
                return app
        raise KeyError(app_id)

    def active_apps(self) -> list[Application]:
        return [a for a in self.apps if a.state != FINISHED]

    def completed_apps(self) -> list[Application]:
        return [a for a in self.apps if a.state == FINISHED]

    def alive_workers(self) -> list[Worker]:
        return [w for w in self.workers if w.state == ALIVE]

    def stamp(self, at: float) -> str:
        return time.strftime("%Y%m%d%H%M%S", time.gmtime(self.epoch + at))

    # ------------------------------------------------------------------ changes

    def add_worker(self, cores: int, *, memory_mb: int = 8192, host: str | None = None) -> Worker:
        if cores < 1 or memory_mb < 1:
            raise ValueError("a worker has at least one core and some memory")
        self._next_worker += 1
        n = self._next_worker
        host = host or f"10.0.{n // 250}.{n % 250 + 1}"
        port = 40000 + n
        worker = Worker(
            worker_id=f"worker-{self.stamp(self.now)}-{host}-{port}",
            host=host,
            port=port,
            cores=cores,
            memory_mb=memory_mb,
            registered_at=self.now,
        )
        self.workers.append(worker)
        self._reconcile(self.now)
        return worker

    def submit(self, spec: AppSpec, jobs: Iterable[Sequence[StageSpec]] = ()) -> Application:
        app_id = f"app-{self.stamp(self.now)}-{self._next_app:04d}"
        self._next_app += 1
        app = Application(app_id=app_id, spec=spec, submitted_at=self.now)
        if spec.local_cores is not None:
            app.state = RUNNING
            app.executors.append(
                Executor(
                    executor_id=DRIVER_ID,
                    app_id=app_id,
                    worker=None,
                    cores=spec.local_cores,
                    slots=spec.local_cores // spec.task_cpus,
                    memory_mb=spec.executor_memory_mb,
                    added_at=self.now,
                    ready_at=self.now,
                    idle_since=self.now,
                )
            )
        self.apps.append(app)
        self._next_job[app_id] = 0
        self._next_stage[app_id] = 0
        for stages in jobs:
            self._add_job(app, stages)
        self._reconcile(self.now)
        return app

    def submit_job(self, app_id: str, stages: Sequence[StageSpec], name: str = "") -> Job:
        app = self.app(app_id)
        if app.state == FINISHED:
            raise ValueError(f"{app_id} has finished")
        job = self._add_job(app, stages, name)
        self._reconcile(self.now)
        return job

    def finish_app(self, app_id: str) -> None:
        app = self.app(app_id)
        if app.state == FINISHED:
            return
        self._finish(app, self.now)
        self._reconcile(self.now)

    def decommission_hosts(self, hosts: Iterable[str]) -> int:
        """Decommission the alive workers on ``hosts``; returns how many (the master's answer)."""
        wanted = set(hosts)
        hit = 0
        for worker in self.workers:
            if worker.host in wanted and worker.state == ALIVE:
                worker.state = DECOMMISSIONED
                for executor in worker.executors:
                    executor.decommissioning = True
                hit += 1
        self._reconcile(self.now)
        return hit

    def kill_worker(self, worker_id: str) -> None:
        worker = next(w for w in self.workers if w.worker_id == worker_id)
        worker.state = DEAD
        for executor in list(worker.executors):
            for task in executor.running:
                task.stage.running -= 1
                task.stage.failed += 1
                executor.failed_tasks += 1
            executor.running.clear()
            self._remove_executor(executor)
        self._reconcile(self.now)

    def advance(self, now: float) -> None:
        """Replay every event up to ``now`` in time order."""
        if now < self.now:
            raise ValueError(f"model time goes forward only ({now} < {self.now})")
        while True:
            upcoming = self._next_event()
            if upcoming is None or upcoming > now:
                break
            self._end_tasks(upcoming)
            self.now = upcoming
            self._reconcile(upcoming)
        self.now = now
        self._reconcile(now)

    # ------------------------------------------------------------------ internals

    def _add_job(self, app: Application, specs: Sequence[StageSpec], name: str = "") -> Job:
        if not specs:
            raise ValueError("a job has at least one stage")
        job_id = self._next_job[app.app_id]
        self._next_job[app.app_id] += 1
        stages = []
        for spec in specs:
            stage_id = self._next_stage[app.app_id]
            self._next_stage[app.app_id] += 1
            stages.append(
                Stage(
                    stage_id=stage_id,
                    job_id=job_id,
                    num_tasks=spec.tasks,
                    task_seconds=spec.task_seconds,
                    name=spec.name or f"stage {stage_id} of job {job_id}",
                )
            )
        stages[0].status = STAGE_ACTIVE
        stages[0].submitted_at = self.now
        job = Job(job_id=job_id, name=name or f"job {job_id}", stages=stages, submitted_at=self.now)
        app.jobs.append(job)
        app.initializing = False
        return job

    def _next_event(self) -> float | None:
        times: list[float] = []
        for app in self.active_apps():
            da = app.spec.dynamic_allocation
            for executor in app.executors:
                times.extend(t.ends_at for t in executor.running)
                if executor.ready_at > self.now:
                    times.append(executor.ready_at)
                if da is not None and executor.idle_since is not None:
                    times.append(executor.idle_since + da.executor_idle_timeout_seconds)
        later = [t for t in times if t > self.now]
        return min(later) if later else None

    def _end_tasks(self, at: float) -> None:
        for app in self.active_apps():
            for executor in app.executors:
                done = [t for t in executor.running if t.ends_at <= at]
                if not done:
                    continue
                executor.running = [t for t in executor.running if t.ends_at > at]
                for task in done:
                    task.stage.running -= 1
                    task.stage.completed += 1
                    task.stage.run_seconds += task.ends_at - task.started_at
                    executor.completed_tasks += 1
                    executor.busy_seconds += task.ends_at - task.started_at
                if not executor.running:
                    executor.idle_since = at

    def _reconcile(self, now: float) -> None:
        for app in self.active_apps():
            self._promote_stages(app, now)
            if app.spec.finish_when_idle and app.jobs and all(j.status != JOB_RUNNING for j in app.jobs):
                self._finish(app, now)
        self._release_executors(now)
        self._allocate_executors(now)
        for app in self.active_apps():
            self._launch_tasks(app, now)

    def _promote_stages(self, app: Application, now: float) -> None:
        for job in app.jobs:
            if job.status != JOB_RUNNING:
                continue
            for i, stage in enumerate(job.stages):
                if stage.status == STAGE_ACTIVE and stage.completed >= stage.num_tasks:
                    stage.status = STAGE_COMPLETE
                    stage.completed_at = now
                    if i + 1 < len(job.stages):
                        following = job.stages[i + 1]
                        following.status = STAGE_ACTIVE
                        following.submitted_at = now
            if all(s.status == STAGE_COMPLETE for s in job.stages):
                job.status = JOB_SUCCEEDED
                job.completed_at = now

    def _finish(self, app: Application, now: float) -> None:
        app.state = FINISHED
        app.finished_at = now
        for executor in list(app.executors):
            for task in executor.running:
                task.stage.running -= 1
            executor.running.clear()
            self._remove_executor(executor)

    def _remove_executor(self, executor: Executor) -> None:
        app = self.app(executor.app_id)
        app.executors.remove(executor)
        app.removed_executors += 1
        if executor.worker is not None:
            executor.worker.executors.remove(executor)

    def _release_executors(self, now: float) -> None:
        for app in self.active_apps():
            if app.spec.local:
                continue
            for executor in [e for e in app.executors if e.decommissioning and not e.running]:
                self._remove_executor(executor)
            da = app.spec.dynamic_allocation
            if da is None:
                continue
            target = app.executor_target()
            assert target is not None
            idle = sorted(
                (
                    e
                    for e in app.executors
                    if e.idle_since is not None
                    and not e.running
                    and e.idle_since + da.executor_idle_timeout_seconds <= now
                ),
                key=lambda e: (e.idle_since, int(e.executor_id)),
            )
            for executor in idle:
                if len(app.executors) <= target:
                    break
                self._remove_executor(executor)
        for worker in [w for w in self.workers if w.state == DECOMMISSIONED and not w.executors]:
            self.workers.remove(worker)
            self.departed_workers.append(worker)

    def _allocate_executors(self, now: float) -> None:
        for app in self.active_apps():
            if app.spec.local:
                continue
            target = app.executor_target()
            while target is None or sum(not e.decommissioning for e in app.executors) < target:
                worker = self._place(app.spec)
                if worker is None:
                    break
                executor = Executor(
                    executor_id=str(app.next_executor),
                    app_id=app.app_id,
                    worker=worker,
                    cores=app.spec.executor_cores,
                    slots=app.spec.tasks_per_executor,
                    memory_mb=app.spec.executor_memory_mb,
                    added_at=now,
                    ready_at=now + self.executor_start_seconds,
                    idle_since=now + self.executor_start_seconds,
                )
                app.next_executor += 1
                app.executors.append(executor)
                worker.executors.append(executor)
            if app.state == WAITING and any(e.ready(now) for e in app.executors):
                app.state = RUNNING

    def _place(self, spec: AppSpec) -> Worker | None:
        fits = [
            w
            for w in self.workers
            if w.state == ALIVE
            and w.cores_free >= spec.executor_cores
            and w.memory_mb - w.memory_used_mb >= spec.executor_memory_mb
        ]
        if not fits:
            return None
        # spark.deploy.spreadOut (the default): the worker with the most free cores first.
        return max(fits, key=lambda w: (w.cores_free, -self.workers.index(w)))

    def _launch_tasks(self, app: Application, now: float) -> None:
        stages = sorted(app.active_stages(), key=lambda s: s.stage_id)
        if not stages:
            return
        executors = sorted(
            app.executors, key=lambda e: -1 if e.executor_id == DRIVER_ID else int(e.executor_id)
        )
        for executor in executors:
            free = executor.free_slots(now)
            for stage in stages:
                if free <= 0:
                    break
                start = min(free, stage.unstarted)
                for _ in range(start):
                    executor.running.append(RunningTask(stage, now, now + stage.task_seconds))
                stage.running += start
                free -= start
                if start and stage.first_launch_at is None:
                    stage.first_launch_at = now
            if executor.running:
                executor.idle_since = None


@dataclass
class MovingLoad:
    """A seeded, moving load for the demo: jobs arrive as a Poisson stream whose rate follows a sine.

    ``step(pool, now)`` submits what arrived up to ``now``; the same seed and the same sequence of
    ``now`` values give the same load. A few short-lived applications come and go, so drivers appear
    and vanish as they do in a real pool.
    """

    seed: int = 0
    period_seconds: float = 600.0
    jobs_per_minute: float = 6.0
    long_lived_apps: int = 2
    short_app_share: float = 0.15
    _rng: random.Random = field(init=False, repr=False)
    _next_arrival: float | None = field(default=None, init=False, repr=False)
    _apps: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def rate(self, now: float) -> float:
        """Arrivals per second at ``now``."""
        return self.jobs_per_minute / 60 * (1 + 0.8 * math.sin(2 * math.pi * now / self.period_seconds))

    def step(self, pool: SparkPool, now: float) -> None:
        if not self._apps:
            for i in range(self.long_lived_apps):
                spec = AppSpec(
                    name=f"etl-{i}",
                    executor_cores=2,
                    dynamic_allocation=DynamicAllocation(max_executors=8, executor_idle_timeout_seconds=30),
                )
                self._apps.append(pool.submit(spec).app_id)
            self._next_arrival = pool.now + self._rng.expovariate(self._peak())
        assert self._next_arrival is not None
        # The next arrival is drawn once and kept until its time comes: drawing again on every step would
        # push it past ``now`` forever when steps are shorter than the gaps between arrivals.
        while self._next_arrival <= now:
            at = self._next_arrival
            self._next_arrival += self._rng.expovariate(self._peak())
            pool.advance(max(pool.now, at))
            # Thinning turns the constant-rate stream at the peak into the sine-shaped one.
            if self._rng.random() * self._peak() <= self.rate(at):
                self._arrive(pool)

    def _peak(self) -> float:
        return self.jobs_per_minute / 60 * 1.8

    def _arrive(self, pool: SparkPool) -> None:
        rng = self._rng
        stages = [
            StageSpec(tasks=rng.randint(4, 48), task_seconds=round(rng.uniform(0.5, 6.0), 2))
            for _ in range(rng.randint(1, 3))
        ]
        if rng.random() < self.short_app_share:
            spec = AppSpec(
                name=f"adhoc-{rng.randrange(10_000)}",
                executor_cores=1,
                dynamic_allocation=DynamicAllocation(max_executors=4, executor_idle_timeout_seconds=10),
                finish_when_idle=True,
            )
            pool.submit(spec, [stages])
            return
        live = [a for a in self._apps if pool.app(a).state != FINISHED]
        if live:
            pool.submit_job(rng.choice(live), stages)


def demo_pool(seed: int = 0, *, workers: int = 3, cores_per_worker: int = 4) -> tuple[SparkPool, MovingLoad]:
    """A small decommission-enabled pool and its moving load, for ``queuescale adapter --sandbox``."""
    pool = SparkPool(name="sandbox", decommission_enabled=True, executor_start_seconds=2.0)
    for _ in range(workers):
        pool.add_worker(cores_per_worker)
    return pool, MovingLoad(seed=seed)
