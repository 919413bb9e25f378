"""The Trino capacity dashboard: queue, workers, and what the controller asked for."""

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
    TRINO_BLOCKED_QUERIES,
    TRINO_CAPACITY_QUEUED_QUERIES,
    TRINO_CLUSTER_MEMORY_BYTES,
    TRINO_NODES,
    TRINO_QUEUED_QUERIES,
    TRINO_REQUIRED_WORKERS,
    TRINO_RESOURCE_GROUP_HARD_CONCURRENCY_LIMIT,
    TRINO_RESOURCE_GROUP_LIMIT_BOUND,
    TRINO_RESOURCE_GROUP_QUEUED_QUERIES,
    TRINO_RESOURCE_GROUP_RUNNING_QUERIES,
    TRINO_RUNNING_QUERIES,
)

UID = "queuescale-trino-capacity"
FILTER = {"cluster": "$cluster"}


def build(catalog: Catalog) -> Board:
    def trino(name: str, **matchers: str) -> str:
        return selector(metric(catalog, name), **FILTER, **matchers)

    def per_cluster(name: str, **matchers: str) -> str:
        return max_by(["cluster"], trino(name, **matchers))

    board = Board(
        UID,
        "queuescale / Trino capacity",
        "Queued, running and blocked queries, the workers they need, and what the controller decided.",
    )
    board.variable(
        query_variable(
            "cluster",
            "Trino cluster",
            f"label_values({metric(catalog, 'trino_queued_queries')}, cluster)",
            "The adapter source's cluster label.",
        )
    )
    board.variable(namespace_variable())

    queued = per_cluster(TRINO_QUEUED_QUERIES)
    queue_bound = per_cluster(TRINO_CAPACITY_QUEUED_QUERIES)
    # The two figures come from different Trino endpoints read moments apart: never show a negative.
    limit_bound = f"clamp_min({queued} - {queue_bound}, 0)"

    def total(expr: str) -> Query:
        return Query(f"sum({expr})", "total")

    board.panel(stat("Queued", "Queries waiting in a resource-group queue.", total(queued)))
    board.panel(
        stat(
            "Queue-bound",
            "Queued queries that more workers would start.",
            total(queue_bound),
        )
    )
    board.panel(
        stat(
            "Limit-bound",
            "Queued queries held at their group's hardConcurrencyLimit: more workers do not help.",
            total(limit_bound),
        )
    )
    board.panel(stat("Running", "Queries running.", total(per_cluster(TRINO_RUNNING_QUERIES))))
    board.panel(
        stat(
            "Required workers",
            "Workers that queries wait for (query-manager.required-workers).",
            total(per_cluster(TRINO_REQUIRED_WORKERS)),
        )
    )
    board.panel(
        stat(
            "Active workers",
            "Nodes in state active.",
            total(per_cluster(TRINO_NODES, state="active")),
        )
    )

    board.panel(
        timeseries(
            "Queued, running and blocked queries",
            "Blocked queries are running but waiting for memory or data.",
            [
                Query(queued, "{{cluster}} queued"),
                Query(per_cluster(TRINO_RUNNING_QUERIES), "{{cluster}} running"),
                Query(per_cluster(TRINO_BLOCKED_QUERIES), "{{cluster}} blocked"),
            ],
            axis_label="queries",
        )
    )
    board.panel(
        timeseries(
            "Queue-bound vs limit-bound",
            "Queue-bound: queued queries that more workers would start (the scaling signal). "
            "Limit-bound: queued in groups at their hardConcurrencyLimit, a fixed count more workers "
            "do not raise.",
            [
                Query(queue_bound, "{{cluster}} queue-bound"),
                Query(limit_bound, "{{cluster}} limit-bound"),
            ],
            stack=True,
            axis_label="queries",
        )
    )
    board.panel(
        timeseries(
            "Required workers vs active workers",
            "query-manager.required-workers against the active nodes: a cluster below its requirement "
            "holds queries in WAITING_FOR_RESOURCES.",
            [
                Query(per_cluster(TRINO_REQUIRED_WORKERS), "{{cluster}} required"),
                Query(per_cluster(TRINO_NODES, state="active"), "{{cluster}} active"),
            ],
            axis_label="workers",
        )
    )
    board.panel(
        timeseries(
            "Workers by state",
            "Nodes by state: active, inactive, draining, drained, shutting_down. Draining workers are "
            "being removed without killing queries.",
            [Query(max_by(["cluster", "state"], trino(TRINO_NODES)), "{{cluster}} {{state}}")],
            stack=True,
            axis_label="nodes",
        )
    )
    board.panel(desired_vs_current({"namespace": "$namespace"}))
    groups = ["cluster", "resource_group"]
    board.panel(
        timeseries(
            "Resource groups: queued and running",
            "Per resource group (sub-groups included in their parents' figures).",
            [
                Query(
                    max_by(groups, trino(TRINO_RESOURCE_GROUP_QUEUED_QUERIES)),
                    "{{cluster}} {{resource_group}} queued",
                ),
                Query(
                    max_by(groups, trino(TRINO_RESOURCE_GROUP_RUNNING_QUERIES)),
                    "{{cluster}} {{resource_group}} running",
                ),
            ],
            axis_label="queries",
        )
    )
    board.panel(
        timeseries(
            "Resource groups at their concurrency limit",
            "Running queries against hardConcurrencyLimit; a group at its limit with a queue is limit-bound.",
            [
                Query(
                    max_by(groups, trino(TRINO_RESOURCE_GROUP_RUNNING_QUERIES)),
                    "{{cluster}} {{resource_group}} running",
                ),
                Query(
                    max_by(groups, trino(TRINO_RESOURCE_GROUP_HARD_CONCURRENCY_LIMIT)),
                    "{{cluster}} {{resource_group}} limit",
                ),
                Query(
                    sum_by(["cluster"], max_by(groups, trino(TRINO_RESOURCE_GROUP_LIMIT_BOUND))),
                    "{{cluster}} groups limit-bound",
                ),
            ],
            axis_label="queries",
        )
    )
    board.panel(
        timeseries(
            "Cluster memory",
            "Total memory of the cluster's worker pools.",
            [Query(per_cluster(TRINO_CLUSTER_MEMORY_BYTES), "{{cluster}}")],
            unit="bytes",
        )
    )
    board.row(
        catalog_row(
            "Every Trino metric (from the catalog)",
            (spec for spec in catalog if spec.family == "trino"),
            FILTER,
        )
    )
    return board
