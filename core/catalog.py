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

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,199}$")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    family: str
    labels: tuple[str, ...]
    unit: str
    help: str


def _trino(name: str, labels: tuple[str, ...], unit: str, help_: str) -> MetricSpec:
    return MetricSpec(name, "trino", ("cluster", *labels), unit, help_)


def _spark(name: str, labels: tuple[str, ...], unit: str, help_: str) -> MetricSpec:
    return MetricSpec(name, "spark", ("pool", *labels), unit, help_)


_APP = ("app", "app_name")
_RG = ("resource_group",)

BUILTIN: tuple[MetricSpec, ...] = (
    _trino("trino_queued_queries", (), "queries", "Queries waiting in a resource-group queue."),
    _trino(
        "trino_running_queries",
        (),
        "queries",
        "Queries running (QueryManager): fully blocked ones included since Trino 430, left out before.",
    ),
    _trino(
        "trino_blocked_queries",
        (),
        "queries",
        "Running queries fully blocked waiting for memory or data (QueryManager FullyBlockedQueries "
        "since Trino 470, counted from the running queries before).",
    ),
    _trino(
        "trino_required_workers",
        (),
        "workers",
        "The configured query-manager.required-workers while a query waits for workers, else 0; a waiting "
        "query is neither queued nor running. Scales a cluster from zero.",
    ),
    _trino(
        "trino_nodes",
        ("state",),
        "nodes",
        "Nodes by state: active, inactive, draining, drained, shutting_down.",
    ),
    _trino(
        "trino_cluster_memory_bytes",
        (),
        "bytes",
        "Memory of the cluster (ClusterMemoryManager): the coordinator and every node active, draining, "
        "drained or shutting down, until it has left; percentage softMemoryLimits follow it.",
    ),
    _trino(
        "trino_capacity_queued_queries",
        (),
        "queries",
        "Queued queries that more workers would start: excludes groups held at their concurrency limit.",
    ),
    _trino(
        "trino_started_queries_total",
        (),
        "queries",
        "Queries that began running since the coordinator started (QueryManager StartedQueries): a counter "
        "that restarts from 0 with the coordinator, for rates and queue models; never an HPA target.",
    ),
    _trino(
        "trino_completed_queries_total",
        (),
        "queries",
        "Queries that ended since the coordinator started, finished or failed, including those failed or "
        "cancelled before running (QueryManager CompletedQueries): a counter that restarts from 0 with the "
        "coordinator, for rates and queue models; never an HPA target.",
    ),
    _trino(
        "trino_consumed_cpu_seconds_total",
        (),
        "seconds",
        "CPU-seconds of the queries that ended since the coordinator started, finished, failed or cancelled "
        "(QueryManager ConsumedCpuTimeSecs): each query adds its CPU time cut to whole seconds when it ends, "
        "so a sub-second query adds 0; a counter that restarts from 0 with the coordinator, for the work "
        "rate; never an HPA target.",
    ),
    _trino(
        "trino_running_queries_cpu_seconds",
        (),
        "seconds",
        "CPU-seconds the running queries have spent so far (queryStats.totalCpuTime over /v1/query): Trino "
        "moves it in steps of seconds as task statuses arrive, and a query leaves it when it ends, for "
        "trino_consumed_cpu_seconds_total to count. Only with the source's running_query_cpu.",
    ),
    _trino("trino_resource_group_queued_queries", _RG, "queries", "Queries queued in one resource group."),
    _trino("trino_resource_group_running_queries", _RG, "queries", "Queries running in one resource group."),
    _trino(
        "trino_resource_group_hard_concurrency_limit",
        _RG,
        "queries",
        "The group's hardConcurrencyLimit: a fixed count that more workers do not raise.",
    ),
    _trino(
        "trino_resource_group_limit_bound",
        _RG,
        "bool",
        "1 when the group queues because it is at its concurrency limit (adding workers will not help).",
    ),
    _spark(
        "spark_remaining_tasks",
        _APP,
        "tasks",
        "Tasks of active stages not yet complete (pending + running): Spark's own demand figure.",
    ),
    _spark("spark_pending_tasks", _APP, "tasks", "Tasks of active stages not yet started."),
    _spark("spark_running_tasks", _APP, "tasks", "Tasks running now."),
    _spark("spark_next_wave_tasks", _APP, "tasks", "Tasks of stages submitted but waiting on parents."),
    _spark("spark_task_slots", _APP, "slots", "Task slots of the application's live executors."),
    _spark("spark_executors", _APP, "executors", "Live executors of the application (driver excluded)."),
    _spark(
        "spark_executors_needed",
        _APP,
        "executors",
        "ceil(remaining x allocationRatio / tasksPerExecutor), clamped like dynamic allocation.",
    ),
    _spark("spark_pool_workers", ("state",), "workers", "Standalone workers by state (alive, dead, ...)."),
    _spark("spark_pool_cores", (), "cores", "Cores of the standalone pool's alive workers."),
    _spark("spark_pool_cores_used", (), "cores", "Cores in use on the standalone pool."),
    _spark("spark_waiting_apps", (), "applications", "Applications waiting for cores on the master."),
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
