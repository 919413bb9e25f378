"""The one list of metrics queuescale serves.

It drives API discovery, the README table, and (later) the dashboards, so a metric added here shows up
everywhere. Sources may only emit names found in the catalog they were built with; the Prometheus
source may extend the catalog with operator-defined metrics at start.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

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
    TRINO_BLOCKED_QUERIES,
    TRINO_CAPACITY_QUEUED_QUERIES,
    TRINO_CLUSTER_MEMORY_BYTES,
    TRINO_COMPLETED_QUERIES_TOTAL,
    TRINO_CONSUMED_CPU_SECONDS_TOTAL,
    TRINO_NODES,
    TRINO_QUEUED_QUERIES,
    TRINO_REQUIRED_WORKERS,
    TRINO_RESOURCE_GROUP_HARD_CONCURRENCY_LIMIT,
    TRINO_RESOURCE_GROUP_LIMIT_BOUND,
    TRINO_RESOURCE_GROUP_QUEUED_QUERIES,
    TRINO_RESOURCE_GROUP_RUNNING_QUERIES,
    TRINO_RUNNING_QUERIES,
    TRINO_RUNNING_QUERIES_CPU_SECONDS,
    TRINO_STARTED_QUERIES_TOTAL,
)

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,199}$")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One catalog metric. ``zero_when_absent``: a fresh source with no series of it means there is none
    (a count, a sum), served as one 0; False for a figure that has no value without a series (a mean, a
    configured limit), where a 0 would be read as a measurement."""

    name: str
    family: str
    labels: tuple[str, ...]
    unit: str
    help: str
    zero_when_absent: bool = True


def _trino(name: str, labels: tuple[str, ...], unit: str, help_: str, *, zero: bool = True) -> MetricSpec:
    return MetricSpec(name, "trino", ("cluster", *labels), unit, help_, zero)


def _spark(name: str, labels: tuple[str, ...], unit: str, help_: str, *, zero: bool = True) -> MetricSpec:
    return MetricSpec(name, "spark", ("pool", *labels), unit, help_, zero)


_APP = ("app", "app_name")
_RG = ("resource_group",)

BUILTIN: tuple[MetricSpec, ...] = (
    _trino(TRINO_QUEUED_QUERIES, (), "queries", "Queries waiting in a resource-group queue."),
    _trino(
        TRINO_RUNNING_QUERIES,
        (),
        "queries",
        "Queries running (QueryManager): fully blocked ones included since Trino 430, left out before.",
    ),
    _trino(
        TRINO_BLOCKED_QUERIES,
        (),
        "queries",
        "Running queries fully blocked waiting for memory or data (QueryManager FullyBlockedQueries "
        "since Trino 470, counted from the running queries before).",
    ),
    _trino(
        TRINO_REQUIRED_WORKERS,
        (),
        "workers",
        "The configured query-manager.required-workers while a query waits for workers, else 0; a waiting "
        "query is neither queued nor running. Scales a cluster from zero.",
    ),
    _trino(
        TRINO_NODES,
        ("state",),
        "nodes",
        "Nodes by state: active, inactive, draining, drained, shutting_down.",
    ),
    _trino(
        TRINO_CLUSTER_MEMORY_BYTES,
        (),
        "bytes",
        "Memory of the cluster (ClusterMemoryManager): the coordinator and every node active, draining, "
        "drained or shutting down, until it has left; percentage softMemoryLimits follow it.",
    ),
    _trino(
        TRINO_CAPACITY_QUEUED_QUERIES,
        (),
        "queries",
        "Queued queries that more workers would start: excludes groups held at their concurrency limit.",
    ),
    _trino(
        TRINO_STARTED_QUERIES_TOTAL,
        (),
        "queries",
        "Queries that began running since the coordinator started (QueryManager StartedQueries): a counter "
        "that restarts from 0 with the coordinator, for rates and queue models; never an HPA target.",
    ),
    _trino(
        TRINO_COMPLETED_QUERIES_TOTAL,
        (),
        "queries",
        "Queries that ended since the coordinator started, finished or failed, including those failed or "
        "cancelled before running (QueryManager CompletedQueries): a counter that restarts from 0 with the "
        "coordinator, for rates and queue models; never an HPA target.",
    ),
    _trino(
        TRINO_CONSUMED_CPU_SECONDS_TOTAL,
        (),
        "seconds",
        "CPU-seconds of the queries that ended since the coordinator started, finished, failed or cancelled "
        "(QueryManager ConsumedCpuTimeSecs): each query adds its CPU time cut to whole seconds when it ends, "
        "so a sub-second query adds 0; a counter that restarts from 0 with the coordinator, for the work "
        "rate; never an HPA target.",
    ),
    _trino(
        TRINO_RUNNING_QUERIES_CPU_SECONDS,
        (),
        "seconds",
        "CPU-seconds the running queries have spent so far (queryStats.totalCpuTime over /v1/query): Trino "
        "moves it in steps of seconds as task statuses arrive, and a query leaves it when it ends, for "
        "trino_consumed_cpu_seconds_total to count. Only with the source's running_query_cpu.",
    ),
    _trino(TRINO_RESOURCE_GROUP_QUEUED_QUERIES, _RG, "queries", "Queries queued in one resource group."),
    _trino(TRINO_RESOURCE_GROUP_RUNNING_QUERIES, _RG, "queries", "Queries running in one resource group."),
    _trino(
        TRINO_RESOURCE_GROUP_HARD_CONCURRENCY_LIMIT,
        _RG,
        "queries",
        "The group's hardConcurrencyLimit: a fixed count that more workers do not raise; absent for a "
        "group no query has selected yet (Trino creates groups lazily).",
        zero=False,
    ),
    _trino(
        TRINO_RESOURCE_GROUP_LIMIT_BOUND,
        _RG,
        "bool",
        "1 when the group queues because it is at its concurrency limit (adding workers will not help).",
    ),
    _spark(
        SPARK_REMAINING_TASKS,
        _APP,
        "tasks",
        "Tasks of active stages not yet complete (pending + running): Spark's own demand figure.",
    ),
    _spark(SPARK_PENDING_TASKS, _APP, "tasks", "Tasks of active stages not yet started."),
    _spark(SPARK_RUNNING_TASKS, _APP, "tasks", "Tasks running now."),
    _spark(SPARK_NEXT_WAVE_TASKS, _APP, "tasks", "Tasks of stages submitted but waiting on parents."),
    _spark(
        SPARK_TASK_SECONDS,
        _APP,
        "seconds",
        "Mean run time of the finished tasks of active stages; absent until one has finished.",
        zero=False,
    ),
    _spark(SPARK_TASK_SLOTS, _APP, "slots", "Task slots of the application's live executors."),
    _spark(SPARK_EXECUTORS, _APP, "executors", "Live executors of the application (driver excluded)."),
    _spark(
        SPARK_EXECUTORS_NEEDED,
        _APP,
        "executors",
        "ceil(remaining x allocationRatio / tasksPerExecutor), clamped like dynamic allocation.",
    ),
    _spark(SPARK_POOL_WORKERS, ("state",), "workers", "Standalone workers by state (alive, dead, ...)."),
    _spark(SPARK_POOL_CORES, (), "cores", "Cores of the standalone pool's alive workers."),
    _spark(SPARK_POOL_CORES_USED, (), "cores", "Cores in use on the standalone pool."),
    _spark(SPARK_WAITING_APPS, (), "applications", "Applications waiting for cores on the master."),
)


class Catalog:
    """An immutable, sorted set of metric specs with lookup by name."""

    def __init__(self, specs: Iterable[MetricSpec]) -> None:
        by_name: dict[str, MetricSpec] = {}
        for spec in specs:
            if not _NAME.match(spec.name):
                raise ValueError(f"metric name {spec.name!r} must match {_NAME.pattern}")
            if spec.name in by_name and by_name[spec.name] != spec:
                raise ValueError(f"metric {spec.name!r} is defined twice with different meanings")
            by_name[spec.name] = spec
        self._by_name = dict(sorted(by_name.items()))

    def __iter__(self) -> Iterator[MetricSpec]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> MetricSpec | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return list(self._by_name)

    def extended(self, specs: Iterable[MetricSpec]) -> Catalog:
        return Catalog([*self, *specs])


DEFAULT_CATALOG = Catalog(BUILTIN)


def markdown_table(catalog: Catalog = DEFAULT_CATALOG) -> str:
    rows = ["| metric | labels | unit | meaning |", "|---|---|---|---|"]
    rows += [
        f"| `{s.name}` | {', '.join(f'`{label}`' for label in s.labels)} | {s.unit} | {s.help} |"
        for s in catalog
    ]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print the metric catalog.")
    parser.add_argument("--markdown", action="store_true", help="as the README's Markdown table")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_table(), end="")
    else:
        for spec in DEFAULT_CATALOG:
            print(spec.name)


if __name__ == "__main__":
    main()
