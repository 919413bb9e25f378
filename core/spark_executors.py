"""The executors a Spark application asks for: dynamic allocation's formula, once for the adapter and the controller.

:func:`executors_needed` is ``ExecutorAllocationManager.maxNumExecutorsNeededPerResourceProfile`` of
apache/spark (``core/src/main/scala/org/apache/spark/ExecutorAllocationManager.scala``) followed by the
``[minExecutors, maxExecutors]`` clamp Spark applies to its target:

- ``tasksPerExecutor = executorCores / taskCpus`` in *integer* division (``ResourceProfile.maxTasksPerExecutor``
  for the default profile); 0 is a configuration error in Spark ("spark.executor.cores must not be less
  than spark.task.cpus") and a ``ValueError`` here;
- ``maxNeeded = ceil((pending + pendingSpeculative + running) × executorAllocationRatio / tasksPerExecutor)``,
  computed in binary floating point like the JVM's ``Double`` (so ``25 × 0.28 = 7.000000000000001``
  rounds up to 8 there and here alike);
- one extra executor when that gives exactly 1, ``tasksPerExecutor > 1`` and a speculative task is pending
  (a speculative copy must not run on the executor of its original);
- with unschedulable task sets (executors excluded after failures), at least
  ``current executors + ceil(unschedulable × ratio / tasksPerExecutor)``.

Spark re-evaluates this every 100 ms and ramps its target up in rounds of 1, 2, 4, ... executors; an
external autoscaler sizes for the end point of that ramp, which is what these functions return.
"""

from __future__ import annotations

import math

__all__ = ["executors_needed", "max_executors_needed", "tasks_per_executor"]


def tasks_per_executor(executor_cores: int, task_cpus: int = 1) -> int:
    """Task slots of one executor: ``executor_cores // task_cpus`` (Spark's integer division)."""
    if executor_cores < 1 or task_cpus < 1:
        raise ValueError(f"executor cores ({executor_cores}) and task cpus ({task_cpus}) must be >= 1")
    slots = executor_cores // task_cpus
    if slots == 0:
        raise ValueError(
            f"executor cores ({executor_cores}) must not be less than task cpus ({task_cpus}): "
            "an executor would have no task slot"
        )
    return slots


def max_executors_needed(
    remaining_tasks: int,
    executor_cores: int,
    task_cpus: int = 1,
    allocation_ratio: float = 1.0,
    *,
    pending_speculative: int = 0,
    unschedulable_task_sets: int = 0,
    current_executors: int = 0,
) -> int:
    """Spark's ``maxNumExecutorsNeeded`` before any clamp (see the module documentation).

    ``remaining_tasks`` is pending + running tasks of active stages; ``pending_speculative`` are speculative
    copies not yet started (Spark counts them too, and they trigger the locality extra executor).
    """
    if remaining_tasks < 0 or pending_speculative < 0 or unschedulable_task_sets < 0 or current_executors < 0:
        raise ValueError("task, task-set and executor counts must be >= 0")
    if not (math.isfinite(allocation_ratio) and 0 < allocation_ratio <= 1.0):
        raise ValueError(f"executorAllocationRatio must be in (0, 1], not {allocation_ratio}")
    per_executor = tasks_per_executor(executor_cores, task_cpus)
    demand = remaining_tasks + pending_speculative
    needed = math.ceil(demand * allocation_ratio / per_executor)
    if per_executor > 1 and needed == 1 and pending_speculative > 0:
        needed += 1
    if unschedulable_task_sets > 0:
        extra = math.ceil(unschedulable_task_sets * allocation_ratio / per_executor)
        needed = max(needed, current_executors + extra)
    return needed


def executors_needed(
    remaining_tasks: int,
    executor_cores: int,
    task_cpus: int = 1,
    allocation_ratio: float = 1.0,
    min_executors: int = 0,
    max_executors: int | None = None,
    *,
    pending_speculative: int = 0,
    unschedulable_task_sets: int = 0,
    current_executors: int = 0,
) -> int:
    """Executors one application needs: :func:`max_executors_needed` clamped to ``[min, max]``.

    ``min_executors`` wins over ``max_executors`` only if a caller passes ``min > max``, which Spark refuses
    at start-up and this function refuses too.
    """
    if min_executors < 0:
        raise ValueError(f"min executors must be >= 0, not {min_executors}")
    if max_executors is not None and max_executors < min_executors:
        raise ValueError(f"min executors ({min_executors}) must be <= max executors ({max_executors})")
    needed = max_executors_needed(
        remaining_tasks,
        executor_cores,
        task_cpus,
        allocation_ratio,
        pending_speculative=pending_speculative,
        unschedulable_task_sets=unschedulable_task_sets,
        current_executors=current_executors,
    )
    if max_executors is not None:
        needed = min(needed, max_executors)
    return max(needed, min_executors)
