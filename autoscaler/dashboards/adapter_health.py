"""The adapter health dashboard: API latency, source freshness and errors, operator-defined metrics."""

from __future__ import annotations

from autoscaler.dashboards.parts import (
    Board,
    Query,
    catalog_row,
    max_by,
    or_zero,
    per_minute,
    quantile,
    query_variable,
    selector,
    stat,
    sum_by,
    timeseries,
)
from core.catalog import Catalog

UID = "queuescale-adapter"
FILTER = {"source": "$source"}
# Families with dashboards of their own; every other catalog metric is operator-defined.
OWN_DASHBOARDS = ("trino", "spark")


def build(catalog: Catalog) -> Board:
    def source(name: str) -> str:
        return selector(name, **FILTER)

    up = source("queuescale_adapter_source_up")
    requests = "queuescale_adapter_request_duration_seconds"

    board = Board(
        UID,
        "queuescale / adapter",
        "What the HPA reads: API latency, how fresh each source's data is, and why a source fails.",
    )
    board.variable(
        query_variable(
            "source",
            "Source",
            "label_values(queuescale_adapter_source_up, source)",
            "A configured Trino, Spark or Prometheus source.",
        )
    )

    board.panel(
        stat(
            "Sources fresh",
            "Sources whose data is within its freshness bound; the others answer 503.",
            Query(f"sum({max_by(['source'], up)})", "fresh"),
        )
    )
    board.panel(
        stat(
            "Sources stale",
            "Sources the HPA cannot read: it holds its replicas.",
            Query(f"sum({max_by(['source'], up)} == bool 0)", "stale"),
        )
    )
    board.panel(
        stat(
            "Oldest sample",
            "Age of the oldest source's last successful collection.",
            Query(f"max({source('queuescale_adapter_sample_age_seconds')})", "age"),
            unit="s",
        )
    )
    board.panel(
        stat(
            "API p99",
            "99th percentile of API answer time.",
            Query(quantile(0.99, [], requests), "p99"),
            unit="s",
        )
    )
    board.panel(
        stat(
            "Requests / s",
            "API requests answered, every route.",
            Query(sum_by([], f"rate({requests}_count[$__rate_interval])"), "requests"),
            unit="reqps",
        )
    )
    board.panel(
        stat(
            "Poll errors / min",
            "Failed polls of the selected sources.",
            Query(
                f"sum({or_zero(per_minute(['source'], source('queuescale_adapter_source_poll_errors_total')), ['source'], up)})",
                "errors",
            ),
            unit="opm",
        )
    )

    board.panel(
        timeseries(
            "Requests by route and code",
            "API requests per second; 503 on a metric route means its source is stale.",
            [
                Query(
                    sum_by(["route", "code"], f"rate({requests}_count[$__rate_interval])"),
                    "{{route}} {{code}}",
                )
            ],
            unit="reqps",
        )
    )
    board.panel(
        timeseries(
            "Request latency",
            "Time to answer, by route; a metric read never waits on a backend.",
            [
                Query(quantile(0.5, ["route"], requests), "{{route}} p50"),
                Query(quantile(0.99, ["route"], requests), "{{route}} p99"),
            ],
            unit="s",
        )
    )
    board.panel(
        timeseries(
            "Sample age vs freshness bound",
            "Seconds since each source's last successful collection; past its bound the source's "
            "metrics answer 503.",
            [
                Query(
                    max_by(["source"], source("queuescale_adapter_sample_age_seconds")),
                    "{{source}} age",
                ),
                Query(
                    max_by(["source"], source("queuescale_adapter_freshness_bound_seconds")),
                    "{{source}} bound",
                ),
            ],
            unit="s",
        )
    )
    board.panel(
        timeseries(
            "Source fresh",
            "1 when the source's data is within its freshness bound.",
            [Query(max_by(["source"], up), "{{source}}")],
        )
    )
    board.panel(
        timeseries(
            "Source errors",
            "Failed polls per minute, by reason: error (the backend answered badly), timeout, bug.",
            [
                Query(
                    or_zero(
                        per_minute(
                            ["source", "reason"], source("queuescale_adapter_source_poll_errors_total")
                        ),
                        ["source"],
                        up,
                    ),
                    "{{source}} {{reason}}",
                )
            ],
            unit="opm",
        )
    )
    board.panel(
        timeseries(
            "Poll duration",
            "Time one poll of a source took, successful or not.",
            [
                Query(
                    quantile(0.5, ["source"], "queuescale_adapter_source_poll_duration_seconds", FILTER),
                    "{{source}} p50",
                ),
                Query(
                    quantile(0.99, ["source"], "queuescale_adapter_source_poll_duration_seconds", FILTER),
                    "{{source}} p99",
                ),
            ],
            unit="s",
        )
    )
    board.panel(
        timeseries(
            "Series per source",
            "Series held from each source's last collection.",
            [Query(max_by(["source"], source("queuescale_adapter_series")), "{{source}}")],
        )
    )
    custom = [spec for spec in catalog if spec.family not in OWN_DASHBOARDS]
    if custom:
        board.row(catalog_row("Operator-defined metrics (from the catalog)", custom, {}))
    return board
