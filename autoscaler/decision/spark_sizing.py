"""Spark pool sizing: the workers a pool needs for its applications' executors.

Each application's executors come from :func:`core.spark_executors.executors_needed` (Spark's
``ExecutorAllocationManager`` formula, shared with the adapter's ``spark_executors_needed``); here they are
packed onto workers of the pool's cores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.spark_executors import executors_needed

__all__ = ["AppDemand", "AppSizing", "BacklogSizing", "PoolSizing", "backlog_workers", "pool_workers_needed"]


@dataclass(frozen=True, slots=True)
class AppDemand:
    """One application on a pool: its backlog and its dynamic-allocation settings.

    ``executor_cores`` overrides the pool's default ``spark.executor.cores`` for this application.
    ``next_wave_tasks`` (tasks of stages waiting on their parents) count only when the caller opts in with
    ``include_next_wave``: they predict demand a little ahead of Spark itself. ``task_seconds`` is the mean
    run time of the application's completed tasks in its active stages (None before one completes).
    """

    app_id: str
    remaining_tasks: int
    executor_cores: int | None = None
    task_cpus: int = 1
    allocation_ratio: float = 1.0
    min_executors: int = 0
    max_executors: int | None = None
    pending_speculative: int = 0
    next_wave_tasks: int = 0
    include_next_wave: bool = False
    task_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class AppSizing:
    app_id: str
    executors: int
    executor_cores: int


@dataclass(frozen=True, slots=True)
class PoolSizing:
    """Workers a standalone pool needs for its applications, with the figures behind it."""

    workers: int
    reason: str
    executors: int
    cores: int
    apps: tuple[AppSizing, ...]
    clamped_by: str | None


def _pack_workers(executor_sizes: Sequence[int], cores_per_worker: int) -> int:
    """Workers for executors of the given core counts: first-fit decreasing.

    An executor never spans workers, so a pool of 4-core workers holds one 3-core executor per worker, not
    4/3; with equal sizes this is exactly ``ceil(n / (cores_per_worker // size))``.
    """
    free: list[int] = []
    for size in sorted(executor_sizes, reverse=True):
        for i, room in enumerate(free):
            if room >= size:
                free[i] = room - size
                break
        else:
            free.append(cores_per_worker - size)
    return len(free)


def pool_workers_needed(
    apps: Sequence[AppDemand],
    cores_per_worker: int,
    executor_cores: int,
    executors_per_worker: int | None = None,
    min_workers: int = 0,
    max_workers: int | None = None,
) -> PoolSizing:
    """Workers of a Spark standalone pool that hold every application's needed executors.

    Per application :func:`executors_needed`; then workers from executors: ``ceil(executors /
    executors_per_worker)`` when the pool pins executors per worker, otherwise the executors are packed by
    cores onto workers of ``cores_per_worker`` (first-fit decreasing). The result is clamped to
    ``[min_workers, max_workers]``, and the reason names the clamp. Memory per executor is not modelled:
    pools sized by memory should set ``executors_per_worker``.
    """
    if cores_per_worker < 1:
        raise ValueError(f"cores per worker must be >= 1, not {cores_per_worker}")
    if executors_per_worker is not None and executors_per_worker < 1:
        raise ValueError(f"executors per worker must be >= 1, not {executors_per_worker}")
    if min_workers < 0 or (max_workers is not None and max_workers < min_workers):
        raise ValueError(f"worker bounds [{min_workers}, {max_workers}] are not a valid range")
    sized: list[AppSizing] = []
    sizes: list[int] = []
    for app in apps:
        cores = app.executor_cores if app.executor_cores is not None else executor_cores
        if executors_per_worker is None and cores > cores_per_worker:
            raise ValueError(
                f"application {app.app_id}: an executor of {cores} cores does not fit a worker of "
                f"{cores_per_worker} cores"
            )
        remaining = app.remaining_tasks + (app.next_wave_tasks if app.include_next_wave else 0)
        n = executors_needed(
            remaining,
            cores,
            app.task_cpus,
            app.allocation_ratio,
            app.min_executors,
            app.max_executors,
            pending_speculative=app.pending_speculative,
        )
        sized.append(AppSizing(app.app_id, n, cores))
        sizes.extend([cores] * n)
    total_executors = len(sizes)
    total_cores = sum(sizes)
    if executors_per_worker is not None:
        raw = math.ceil(total_executors / executors_per_worker)
        how = f"{total_executors} executors at {executors_per_worker} per worker"
    else:
        raw = _pack_workers(sizes, cores_per_worker)
        how = (
            f"{total_executors} executors ({total_cores} cores) packed on workers of {cores_per_worker} cores"
        )
    workers = raw
    clamped_by: str | None = None
    if max_workers is not None and workers > max_workers:
        workers, clamped_by = max_workers, "maxWorkers"
    if workers < min_workers:
        workers, clamped_by = min_workers, "minWorkers"
    per_app = ", ".join(f"{a.app_id}: {a.executors}" for a in sized) or "no application"
    reason = f"executors needed ({per_app}); {how} → {raw} workers"
    if clamped_by is not None:
        reason += f"; clamped to {workers} by {clamped_by}"
    return PoolSizing(
        workers=workers,
        reason=reason,
        executors=total_executors,
        cores=total_cores,
        apps=tuple(sized),
        clamped_by=clamped_by,
    )


@dataclass(frozen=True, slots=True)
class BacklogSizing:
    """Workers that finish the waiting work in time, with the figures behind them."""

    workers: int
    work_core_seconds: float
    left_core_seconds: float
    reason: str


def backlog_workers(
    apps: Sequence[AppDemand],
    *,
    ready_workers: int,
    worker_cores: int,
    startup_seconds: float,
    backlog_seconds: float,
    fallback_task_seconds: float | None,
) -> BacklogSizing | None:
    """Workers to finish the applications' remaining work ``backlog_seconds`` after new workers are ready.

    The work is every remaining task (and the next wave's, which arrives while workers start) times its
    application's mean task run time (``fallback_task_seconds`` for an application with none measured yet)
    times its ``task_cpus``, in core-seconds. The ``ready_workers`` keep working while new ones start, so
    what they finish in ``startup_seconds`` needs no new worker: a worker that would arrive after the
    backlog is done only costs its start-up. None when some application's task time is unknown and there
    is no fallback (the caller then keeps the slot count).
    """
    if worker_cores < 1:
        raise ValueError(f"cores per worker must be >= 1, not {worker_cores}")
    if not backlog_seconds > 0:
        raise ValueError(f"backlog seconds must be > 0, not {backlog_seconds}")
    work = 0.0
    for app in apps:
        seconds = app.task_seconds if app.task_seconds is not None else fallback_task_seconds
        tasks = app.remaining_tasks + app.next_wave_tasks
        if tasks == 0:
            continue
        if seconds is None:
            return None
        work += tasks * seconds * app.task_cpus
    done_meanwhile = ready_workers * worker_cores * max(0.0, startup_seconds)
    left = max(0.0, work - done_meanwhile)
    workers = math.ceil(left / backlog_seconds / worker_cores - 1e-9)
    reason = (
        f"{work:.0f} core-s of tasks waiting, {min(work, done_meanwhile):.0f} done by {ready_workers} ready "
        f"workers during the {startup_seconds:g} s start-up; the rest in {backlog_seconds:g} s → {workers} workers"
    )
    return BacklogSizing(workers, work, left, reason)
