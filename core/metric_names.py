"""The names of the metrics in queuescale's catalog (:mod:`core.catalog`), one constant each.

Code that reads or writes a catalog metric uses these, so a rename is one edit and a typo is an import error.
Tests keep the literal names: they check what goes over the wire.
"""

from __future__ import annotations

from typing import Final

TRINO_QUEUED_QUERIES: Final = "trino_queued_queries"
TRINO_RUNNING_QUERIES: Final = "trino_running_queries"
TRINO_BLOCKED_QUERIES: Final = "trino_blocked_queries"
TRINO_REQUIRED_WORKERS: Final = "trino_required_workers"
TRINO_NODES: Final = "trino_nodes"
TRINO_CLUSTER_MEMORY_BYTES: Final = "trino_cluster_memory_bytes"
TRINO_CAPACITY_QUEUED_QUERIES: Final = "trino_capacity_queued_queries"
TRINO_STARTED_QUERIES_TOTAL: Final = "trino_started_queries_total"
TRINO_COMPLETED_QUERIES_TOTAL: Final = "trino_completed_queries_total"
TRINO_CONSUMED_CPU_SECONDS_TOTAL: Final = "trino_consumed_cpu_seconds_total"
TRINO_RUNNING_QUERIES_CPU_SECONDS: Final = "trino_running_queries_cpu_seconds"
TRINO_RESOURCE_GROUP_QUEUED_QUERIES: Final = "trino_resource_group_queued_queries"
TRINO_RESOURCE_GROUP_RUNNING_QUERIES: Final = "trino_resource_group_running_queries"
TRINO_RESOURCE_GROUP_HARD_CONCURRENCY_LIMIT: Final = "trino_resource_group_hard_concurrency_limit"
TRINO_RESOURCE_GROUP_LIMIT_BOUND: Final = "trino_resource_group_limit_bound"
SPARK_REMAINING_TASKS: Final = "spark_remaining_tasks"
SPARK_PENDING_TASKS: Final = "spark_pending_tasks"
SPARK_RUNNING_TASKS: Final = "spark_running_tasks"
SPARK_NEXT_WAVE_TASKS: Final = "spark_next_wave_tasks"
SPARK_TASK_SECONDS: Final = "spark_task_seconds"
SPARK_TASK_SLOTS: Final = "spark_task_slots"
SPARK_EXECUTORS: Final = "spark_executors"
SPARK_EXECUTORS_NEEDED: Final = "spark_executors_needed"
SPARK_POOL_WORKERS: Final = "spark_pool_workers"
SPARK_POOL_CORES: Final = "spark_pool_cores"
SPARK_POOL_CORES_USED: Final = "spark_pool_cores_used"
SPARK_WAITING_APPS: Final = "spark_waiting_apps"
