"""The Spark backlog dashboard: tasks waiting, their mean run time, slots, executors needed, per application
and pool."""

from __future__ import annotations

from autoscaler.dashboards.parts import (
    Board,
    Query,
    catalog_row,
    desired_vs_current,
    max_by,
    metric,
    namespace_variable,
    query_variable,
    selector,
    stat,
    sum_by,
    timeseries,
)
from core.catalog import Catalog
from core.metric_names import (
    SPARK_EXECUTORS,
    SPARK_EXECUTORS_NEEDED,
    SPARK_NEXT_WAVE_TASKS,
    SPARK_PENDING_TASKS,
    SPARK_POOL_CORES,
    SPARK_POOL_CORES_USED,
    SPARK_POOL_WORKERS,
    SPARK_REMAINING_TASKS,
    SPARK_RUNNING_TASKS,
    SPARK_TASK_SECONDS,
    SPARK_TASK_SLOTS,
    SPARK_WAITING_APPS,
)

UID = "queuescale-spark-backlog"
FILTER = {"pool": "$pool"}
APP = ["pool", "app", "app_name"]


def build(catalog: Catalog) -> Board:
    def spark(name: str, **matchers: str) -> str:
        return selector(metric(catalog, name), **FILTER, **matchers)

    def per_app(name: str) -> str:
        return max_by(APP, spark(name))

    def per_pool(name: str) -> str:
        # Applications first (one copy per adapter replica), then their sum per pool.
        return sum_by(["pool"], per_app(name))

    board = Board(
        UID,
        "queuescale / Spark backlog",
        "Remaining and pending tasks, mean task run time, task slots and executors needed, per application "
        "and pool.",
    )
    board.variable(
        query_variable(
            "pool",
            "Spark pool",
            f"label_values({metric(catalog, 'spark_remaining_tasks')}, pool)",
            "The adapter source's pool label.",
        )
    )
    board.variable(namespace_variable())

    def total(expr: str) -> Query:
        return Query(f"sum({expr})", "total")

    board.panel(
        stat(
            "Remaining tasks",
            "Tasks of active stages not yet complete: Spark's own demand figure.",
            total(per_app(SPARK_REMAINING_TASKS)),
        )
    )
    board.panel(
        stat("Pending tasks", "Tasks of active stages not yet started.", total(per_app(SPARK_PENDING_TASKS)))
    )
    board.panel(stat("Task slots", "Slots of the live executors.", total(per_app(SPARK_TASK_SLOTS))))
    board.panel(
        stat(
            "Executors needed",
            "What dynamic allocation would ask for now.",
            total(per_app(SPARK_EXECUTORS_NEEDED)),
        )
    )
    board.panel(stat("Executors", "Live executors.", total(per_app(SPARK_EXECUTORS))))
    board.panel(
        stat(
            "Waiting applications",
            "Applications waiting for cores on the master.",
            total(max_by(["pool"], spark(SPARK_WAITING_APPS))),
        )
    )

    board.panel(
        timeseries(
            "Remaining and pending tasks per application",
            "Remaining = pending + running: scale on it, since a fast scheduler drains pending to ~0.",
            [
                Query(per_app(SPARK_REMAINING_TASKS), "{{pool}} {{app_name}} remaining"),
                Query(per_app(SPARK_PENDING_TASKS), "{{pool}} {{app_name}} pending"),
            ],
            axis_label="tasks",
        )
    )
    board.panel(
        timeseries(
            "Running tasks vs task slots per application",
            "Running tasks below the slots of live executors mean idle executors.",
            [
                Query(per_app(SPARK_RUNNING_TASKS), "{{pool}} {{app_name}} running"),
                Query(per_app(SPARK_TASK_SLOTS), "{{pool}} {{app_name}} slots"),
            ],
            axis_label="tasks",
        )
    )
    board.panel(
        timeseries(
            "Executors needed vs present per application",
            "ceil(remaining x allocationRatio / tasksPerExecutor), clamped like dynamic allocation, "
            "against the live executors.",
            [
                Query(per_app(SPARK_EXECUTORS_NEEDED), "{{pool}} {{app_name}} needed"),
                Query(per_app(SPARK_EXECUTORS), "{{pool}} {{app_name}} present"),
            ],
            axis_label="executors",
        )
    )
    board.panel(
        timeseries(
            "Mean task run time per application",
            "Mean run time of the finished tasks of active stages; times the remaining tasks, the work "
            "waiting. No line until a task of an active stage has finished.",
            [Query(per_app(SPARK_TASK_SECONDS), "{{pool}} {{app_name}}")],
            unit="s",
        )
    )
    board.panel(
        timeseries(
            "Backlog per pool",
            "Every application of the pool added up; next wave: tasks of stages waiting on parents.",
            [
                Query(per_pool(SPARK_REMAINING_TASKS), "{{pool}} remaining"),
                Query(per_pool(SPARK_PENDING_TASKS), "{{pool}} pending"),
                Query(per_pool(SPARK_NEXT_WAVE_TASKS), "{{pool}} next wave"),
                Query(per_pool(SPARK_TASK_SLOTS), "{{pool}} slots"),
            ],
            axis_label="tasks",
        )
    )
    board.panel(
        timeseries(
            "Pool cores: total vs used",
            "Cores of the standalone pool's alive workers and those in use.",
            [
                Query(max_by(["pool"], spark(SPARK_POOL_CORES)), "{{pool}} cores"),
                Query(max_by(["pool"], spark(SPARK_POOL_CORES_USED)), "{{pool}} used"),
            ],
            axis_label="cores",
        )
    )
    board.panel(
        timeseries(
            "Pool workers by state",
            "Standalone workers by state; decommissioned workers were removed without losing work.",
            [Query(max_by(["pool", "state"], spark(SPARK_POOL_WORKERS)), "{{pool}} {{state}}")],
            stack=True,
            axis_label="workers",
        )
    )
    board.panel(
        timeseries(
            "Waiting applications",
            "Applications the master cannot give cores to.",
            [Query(max_by(["pool"], spark(SPARK_WAITING_APPS)), "{{pool}}")],
            axis_label="applications",
        )
    )
    board.panel(desired_vs_current({"namespace": "$namespace"}))
    board.row(
        catalog_row(
            "Every Spark metric (from the catalog)",
            (spec for spec in catalog if spec.family == "spark"),
            FILTER,
        )
    )
    return board
