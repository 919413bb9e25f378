"""Prometheus as a source: one instant PromQL query per served metric.

Each configured query becomes one metric. Its result series keep only the labels the query names; series
that differ only in dropped labels are added up, so every kept-label set carries exactly one value. The
presets read the catalog's Trino and Spark metrics from what Prometheus already scrapes, in every naming
scheme those projects have shipped (Trino's own OpenMetrics endpoint and the chart's JMX-exporter sidecar;
Spark's executor endpoint and its PrometheusServlet sink).

A poll is all or nothing: if one query fails the whole poll fails and the previous collection stays in
the store until it ages out. Serving a fresh value for one metric next to a stale one for another would
mix ages inside what the HPA and the controller take as one snapshot, and a failing query is nearly
always a configuration error that should be seen, not papered over.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adapter.samples import Sample
from adapter.sources.base import SourceSettings
from adapter.sources.http import HttpEndpoint, new_session, off_loop, read_capped
from core.catalog import DEFAULT_CATALOG, MetricSpec
from core.errors import SourceError
from core.metric_names import (
    SPARK_EXECUTORS,
    SPARK_EXECUTORS_NEEDED,
    SPARK_POOL_CORES,
    SPARK_POOL_CORES_USED,
    SPARK_POOL_WORKERS,
    SPARK_RUNNING_TASKS,
    SPARK_TASK_SLOTS,
    SPARK_WAITING_APPS,
    TRINO_CLUSTER_MEMORY_BYTES,
    TRINO_COMPLETED_QUERIES_TOTAL,
    TRINO_CONSUMED_CPU_SECONDS_TOTAL,
    TRINO_NODES,
    TRINO_QUEUED_QUERIES,
    TRINO_REQUIRED_WORKERS,
    TRINO_RUNNING_QUERIES,
    TRINO_STARTED_QUERIES_TOTAL,
)

log = logging.getLogger(__name__)

METRIC_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,199}$"
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
_LABEL_NAME = re.compile(LABEL_NAME_PATTERN)

Preset = Literal["trino", "spark"]

# The catalog label that names the backend of each family; the Prometheus label `cluster_label` maps to it.
_IDENTITY_LABEL = {"trino": "cluster", "spark": "pool"}

# Share of the source timeout this source spends itself. The poller bounds collect() by the same timeout;
# finishing first lets the error that names the slow metric win over the poller's anonymous one.
_BUDGET_SHARE = 0.9


class PrometheusQuery(BaseModel):
    """One served metric computed by one PromQL instant query."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(
        pattern=METRIC_NAME_PATTERN,
        description="Served name: a catalog metric (e.g. trino_queued_queries) or a new lower_snake name.",
    )
    query: str = Field(
        min_length=1,
        description="PromQL instant query; must give an instant vector or a scalar.",
    )
    labels: list[str] | None = Field(
        default=None,
        description=(
            "Result labels kept on the served series; the others are dropped and values summed over them. "
            "The Prometheus label named by the source's cluster_label is served as the catalog's `cluster` "
            "(Trino) or `pool` (Spark). Default: the catalog metric's labels, or none for a new metric."
        ),
    )
    help: str = Field(default="", description="Meaning of a new metric (not for catalog metrics).")
    unit: str = Field(
        default="", description="Unit of a new metric, e.g. queries, bytes (not for catalog metrics)."
    )

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: list[str] | None) -> list[str] | None:
        for label in labels or ():
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ValueError(f"{label!r} is not a label name a served series can carry")
        if labels is not None and len(set(labels)) != len(labels):
            raise ValueError(f"labels {labels} name a label twice")
        return labels


class PrometheusSettings(SourceSettings):
    """Read metrics from a Prometheus server with instant queries."""

    endpoint: HttpEndpoint = Field(description="The Prometheus server (or a proxy in front of it).")
    queries: list[PrometheusQuery] = Field(
        default_factory=list,
        description="Operator-defined queries; one overrides a preset query of the same metric.",
    )
    presets: list[Preset] = Field(
        default_factory=list,
        description="Ready-made queries for the catalog's trino_* and spark_* metrics.",
    )
    cluster_label: str = Field(
        default="cluster",
        pattern=LABEL_NAME_PATTERN,
        description="Prometheus label naming a Trino cluster or Spark pool; served as `cluster` / `pool`.",
    )
    poll_interval_seconds: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="Seconds between two polls; Prometheus itself rarely scrapes faster than every 15 s.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> PrometheusSettings:
        if len(set(self.presets)) != len(self.presets):
            raise ValueError(f"presets {self.presets} name a preset twice")
        seen: set[str] = set()
        for query in self.queries:
            if query.metric in seen:
                raise ValueError(f"metric {query.metric!r} is defined by more than one query")
            seen.add(query.metric)
        if not self.queries and not self.presets:
            raise ValueError("configure at least one query or preset")
        taken = sorted(
            {label for spec in DEFAULT_CATALOG if spec.family in _IDENTITY_LABEL for label in spec.labels[1:]}
        )
        if self.cluster_label in taken:
            raise ValueError(
                f"cluster_label {self.cluster_label!r} is a label of its own on catalog metrics ({taken}); "
                "name the Prometheus label that identifies the Trino cluster or Spark pool"
            )
        problems = [p for q in self.effective_queries() for p in _check(q, self.cluster_label)]
        if problems:
            raise ValueError("; ".join(problems))
        # The catalog has the last word on names (and refuses a clash with a built-in metric).
        DEFAULT_CATALOG.extended(self.custom_specs())
        return self

    def effective_queries(self) -> list[PrometheusQuery]:
        """Preset queries overlaid by the operator's, sorted by metric name."""
        by_name: dict[str, PrometheusQuery] = {}
        for preset in self.presets:
            for query in PRESETS[preset](self.cluster_label):
                by_name[query.metric] = query
        for query in self.queries:
            by_name[query.metric] = query
        return [by_name[name] for name in sorted(by_name)]

    def label_map(self, query: PrometheusQuery) -> tuple[tuple[str, str], ...]:
        """Pairs (Prometheus result label, served label) for ``query``."""
        return _label_map(query, self.cluster_label)

    def custom_specs(self) -> list[MetricSpec]:
        """Catalog entries for the operator's new metric names (family ``custom``)."""
        specs = []
        for query in self.effective_queries():
            if query.metric in DEFAULT_CATALOG:
                continue
            served = tuple(dst for _, dst in self.label_map(query))
            help_ = query.help or f"Operator-defined PromQL: {_shorten(query.query, 160)}"
            specs.append(MetricSpec(query.metric, "custom", served, query.unit, help_))
        return specs


def _label_map(query: PrometheusQuery, cluster_label: str) -> tuple[tuple[str, str], ...]:
    spec = DEFAULT_CATALOG.get(query.metric)
    if spec is None:
        return tuple((label, label) for label in query.labels or ())
    identity = _IDENTITY_LABEL.get(spec.family)
    if query.labels is not None:
        source = query.labels
    else:
        source = [cluster_label if label == identity else label for label in spec.labels]
    return tuple((label, identity if identity and label == cluster_label else label) for label in source)


def _check(query: PrometheusQuery, cluster_label: str) -> list[str]:
    spec = DEFAULT_CATALOG.get(query.metric)
    if spec is None:
        return []
    problems = []
    if query.help or query.unit:
        problems.append(f"{query.metric!r} is a catalog metric: its help and unit come from the catalog")
    served = [dst for _, dst in _label_map(query, cluster_label)]
    if sorted(served) != sorted(spec.labels) or len(set(served)) != len(served):
        identity = _IDENTITY_LABEL.get(spec.family)
        mapping = f" (Prometheus label {cluster_label!r} is served as {identity!r})" if identity else ""
        problems.append(
            f"query for {query.metric!r} would serve labels {served}, but the catalog defines it with "
            f"{list(spec.labels)}{mapping}"
        )
    return problems


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------------------
# Presets. Every expression aggregates `by` the cluster label first, so the two naming schemes of the same
# figure meet on equal label sets and `or` keeps one of them: a cluster scraped under both (say during a
# move from the JMX sidecar to the built-in endpoint) is counted once, the newer name winning.


def _trino_either(agg: str, domain: str, bean: str, attr: str, c: str, exporter_attr: str = "") -> str:
    # Trino's /metrics writes the MBean `trino.<domain>:name=<bean>` as trino_<domain>_name_<bean>_<attr>;
    # the chart's JMX exporter (default format, no rename rule) drops the `name` key. A CounterStat is one
    # counter (its total) on /metrics but a set of JMX attributes (`<attr>.TotalCount`, `<attr>.OneMinute.Count`,
    # ...) to the exporter, hence `exporter_attr`.
    builtin = f"{agg} by ({c}) (trino_{domain}_name_{bean}_{attr})"
    exporter = f"{agg} by ({c}) (trino_{domain}_{bean}_{exporter_attr or attr})"
    return f"{builtin} or {exporter}"


def _constant_label(expr: str, label: str, value: str) -> str:
    return f'label_replace({expr}, "{label}", "{value}", "__name__", ".*")'


_TRINO_NODE_STATES = (
    ("active", "ActiveNodeCount"),
    ("inactive", "InactiveNodeCount"),
    ("draining", "DrainingNodeCount"),
    ("drained", "DrainedNodeCount"),
    ("shutting_down", "ShuttingDownNodeCount"),
)


def trino_preset(c: str) -> list[PrometheusQuery]:
    """Catalog trino_* metrics from Trino's OpenMetrics names or the chart's JMX-exporter names.

    Query counts and counters are summed per cluster (only the coordinator reports them). Cluster-wide
    views that several nodes may report alike (node counts, cluster memory, required workers) take the max.
    """
    nodes = " or ".join(
        _constant_label(
            # CoordinatorNodeManager since Trino 477, DiscoveryNodeManager before.
            f"({_trino_either('max', 'node', 'CoordinatorNodeManager', attr, c)}"
            f" or {_trino_either('max', 'metadata', 'DiscoveryNodeManager', attr, c)})",
            "state",
            state,
        )
        for state, attr in _TRINO_NODE_STATES
    )
    return [
        PrometheusQuery(
            metric=TRINO_QUEUED_QUERIES,
            query=_trino_either("sum", "execution", "QueryManager", "QueuedQueries", c),
        ),
        PrometheusQuery(
            metric=TRINO_RUNNING_QUERIES,
            query=_trino_either("sum", "execution", "QueryManager", "RunningQueries", c),
        ),
        PrometheusQuery(
            metric=TRINO_REQUIRED_WORKERS,
            query=_trino_either("max", "execution", "ClusterSizeMonitor", "RequiredWorkers", c),
        ),
        PrometheusQuery(
            metric=TRINO_CLUSTER_MEMORY_BYTES,
            query=_trino_either("max", "memory", "ClusterMemoryManager", "ClusterMemoryBytes", c),
        ),
        PrometheusQuery(metric=TRINO_NODES, query=nodes),
        PrometheusQuery(
            metric=TRINO_STARTED_QUERIES_TOTAL,
            query=_trino_either(
                "sum", "execution", "QueryManager", "StartedQueries", c, "StartedQueries_TotalCount"
            ),
        ),
        PrometheusQuery(
            metric=TRINO_COMPLETED_QUERIES_TOTAL,
            query=_trino_either(
                "sum", "execution", "QueryManager", "CompletedQueries", c, "CompletedQueries_TotalCount"
            ),
        ),
        PrometheusQuery(
            metric=TRINO_CONSUMED_CPU_SECONDS_TOTAL,
            query=_trino_either(
                "sum", "execution", "QueryManager", "ConsumedCpuTimeSecs", c, "ConsumedCpuTimeSecs_TotalCount"
            ),
        ),
    ]


def _spark_executor_series(selector: str) -> str:
    # /metrics/executors/prometheus labels every series with application_id, application_name, executor_id.
    return (
        f'label_replace(label_replace({selector}, "app", "$1", "application_id", "(.*)"),'
        f' "app_name", "$1", "application_name", "(.*)")'
    )


# PrometheusServlet turns every non-alphanumeric character of the metrics namespace into "_"; these undo it
# for the application ids Spark itself makes, so the `app` label matches the executor endpoint's.
_SPARK_APP_IDS = (
    ("app_([0-9]+)_([0-9]+)", "app-$1-$2"),  # standalone: app-20240101120000-0001
    ("local_([0-9]+)", "local-$1"),  # local mode: local-1700000000000
    ("spark_([0-9a-f]{32})", "spark-$1"),  # Kubernetes: spark-<uuid without dashes>
)


def _spark_driver_gauge(gauge: str, c: str) -> str:
    """A driver ExecutorAllocationManager gauge per (cluster, app), app_name joined in where known.

    The servlet embeds the namespace (the app id unless spark.metrics.namespace is set) in the metric
    name: metrics_<namespace>_driver_ExecutorAllocationManager_executors_<gauge>_Value{type="gauges"}.
    """
    name = f"metrics_(.+)_driver_ExecutorAllocationManager_executors_{gauge}_Value"
    expr = f'label_replace({{__name__=~"{name}"}}, "app", "$1", "__name__", "{name}")'
    for pattern, replacement in _SPARK_APP_IDS:
        expr = f'label_replace({expr}, "app", "{replacement}", "app", "{pattern}")'
    per_app = f"max by ({c}, app) ({expr})"
    names = f"group by ({c}, app, app_name) ({_spark_executor_series('metrics_executor_totalCores_Count')})"
    return f"({per_app} * on ({c}, app) group_left (app_name) {names}) or on ({c}, app) {per_app}"


_SPARK_WORKER_STATES = (
    ("alive", "aliveWorkers"),
    ("dead", "deadWorkers"),
    ("decommissioned", "decommissionedWorkers"),
    ("unknown", "unknownWorkers"),
)


def spark_preset(c: str) -> list[PrometheusQuery]:
    """Catalog spark_* metrics from the executor endpoint and the PrometheusServlet sink.

    Per application: the driver's /metrics/executors/prometheus (on by default since Spark 4.0) and the
    driver's servlet for the dynamic-allocation gauges. Per pool: the standalone master's and workers'
    servlets. Spark publishes no task backlog on either endpoint, so remaining/pending/next-wave task
    counts need the Spark REST source.
    """
    app_keys = f"{c}, app, app_name"
    workers = " or ".join(
        _constant_label(f"max by ({c}) (metrics_master_{gauge}_Value)", "state", state)
        for state, gauge in _SPARK_WORKER_STATES
    )
    keep_app = [c, "app", "app_name"]
    cores_used = f"sum by ({c}) (metrics_worker_coresUsed_Value)"
    executors = _spark_executor_series('metrics_executor_totalCores_Count{executor_id!="driver"}')
    return [
        PrometheusQuery(
            metric=SPARK_RUNNING_TASKS,
            query=f"sum by ({app_keys}) ({_spark_executor_series('metrics_executor_activeTasks_Count')})",
            labels=keep_app,
        ),
        PrometheusQuery(
            metric=SPARK_TASK_SLOTS,
            query=f"sum by ({app_keys}) ({_spark_executor_series('metrics_executor_maxTasks_Count')})",
            labels=keep_app,
        ),
        PrometheusQuery(
            metric=SPARK_EXECUTORS,
            query=(
                # The driver row is the executor only in local mode; it is never counted as one.
                f"count by ({app_keys}) ({executors})"
                f" or on ({c}, app) ({_spark_driver_gauge('numberAllExecutors', c)})"
            ),
            labels=keep_app,
        ),
        PrometheusQuery(
            metric=SPARK_EXECUTORS_NEEDED,
            query=_spark_driver_gauge("numberMaxNeededExecutors", c),
            labels=keep_app,
        ),
        PrometheusQuery(metric=SPARK_POOL_WORKERS, query=workers),
        PrometheusQuery(
            metric=SPARK_POOL_CORES,
            query=f"{cores_used} + sum by ({c}) (metrics_worker_coresFree_Value)",
        ),
        PrometheusQuery(metric=SPARK_POOL_CORES_USED, query=cores_used),
        PrometheusQuery(metric=SPARK_WAITING_APPS, query=f"max by ({c}) (metrics_master_waitingApps_Value)"),
    ]


PRESETS = {"trino": trino_preset, "spark": spark_preset}


# ---------------------------------------------------------------------------------------------------------
# Turning a query result into samples: pure, so it is tested without a server.


def samples_from_result(
    metric: str, result: Any, label_map: Sequence[tuple[str, str]]
) -> tuple[list[Sample], list[str]]:
    """Samples of ``metric`` from the ``data.result`` of an instant query, and the values it refused.

    ``result`` is a list of ``{"metric": {...}, "value": [ts, "v"]}`` (vector) or ``[ts, "v"]`` (scalar).
    NaN, infinities and negative values are left out (never summed in): an HPA must never see them.
    Raises ValueError on any other shape, e.g. the range vector of a ``[5m]`` query.
    """
    if _is_scalar(result):
        series: list[tuple[Mapping[str, str], Any]] = [({}, result[1])]
    elif isinstance(result, list):
        series = []
        for item in result:
            if not isinstance(item, dict) or "value" not in item:
                kind = "a range vector" if isinstance(item, dict) and "values" in item else "not a vector"
                raise ValueError(f"the result is {kind}; use an instant vector or a scalar")
            series.append((item.get("metric") or {}, item["value"][1]))
    else:
        raise ValueError(f"the result is a {type(result).__name__}, not a vector or a scalar")

    sums: dict[tuple[str, ...], float] = {}
    refused: list[str] = []
    for labels, raw in series:
        key = tuple(str(labels.get(src, "")) for src, _ in label_map)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"the value {raw!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            refused.append(f"{dict(labels)}={raw}")
            continue
        sums[key] = sums.get(key, 0.0) + value
    samples = [
        Sample(metric, {dst: value for (_, dst), value in zip(label_map, key, strict=True)}, total)
        for key, total in sorted(sums.items())
    ]
    return samples, refused


def _is_scalar(result: Any) -> bool:
    return (
        isinstance(result, list)
        and len(result) == 2
        and isinstance(result[0], int | float)
        and isinstance(result[1], str)
    )


# ---------------------------------------------------------------------------------------------------------


class _QueryFailed(Exception):
    """Raised in the worker thread with a cause that is safe to show (no credentials, no bodies)."""


class PrometheusSource:
    """Runs the configured instant queries against one Prometheus server (``GET /api/v1/query``)."""

    def __init__(self, settings: PrometheusSettings) -> None:
        self._settings = settings
        self._queries = [(q, settings.label_map(q)) for q in settings.effective_queries()]
        self._url = settings.endpoint.base() + "/api/v1/query"
        self._session: aiohttp.ClientSession | None = None

    @property
    def settings(self) -> PrometheusSettings:
        return self._settings

    def identity(self) -> Mapping[str, str]:
        # Series name their own cluster/pool: one Prometheus usually watches many of them.
        return {}

    def served_metrics(self) -> Sequence[str]:
        return [query.metric for query, _ in self._queries]

    async def collect(self, now: float) -> list[Sample]:
        # ``now`` is not sent as the evaluation time: Prometheus's own clock avoids missing the latest
        # scrape when the adapter's clock runs behind the server's.
        # Credentials are read on every poll so a rotated Secret takes effect without a restart.
        headers = {"Accept": "application/json", **self._settings.endpoint.auth_headers()}
        budget = self._settings.timeout_seconds * _BUDGET_SHARE
        deadline = time.monotonic() + budget
        samples: list[Sample] = []
        for query, label_map in self._queries:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SourceError(
                    f"Prometheus query for metric {query.metric!r} not run: the poll used its {budget:g}s"
                )
            try:
                # asyncio.timeout, not wait_for: it never swallows the poll's own cancellation (3.11).
                async with asyncio.timeout(remaining):
                    result = await self._run(query.query, remaining, headers)
            except TimeoutError:
                raise SourceError(
                    f"Prometheus query for metric {query.metric!r} timed out after {remaining:.3g}s"
                ) from None
            except _QueryFailed as exc:
                raise SourceError(f"Prometheus query for metric {query.metric!r} failed: {exc}") from exc
            try:
                got, refused = samples_from_result(query.metric, result, label_map)
            except ValueError as exc:
                raise SourceError(f"Prometheus query for metric {query.metric!r}: {exc}") from exc
            if refused:
                log.warning(
                    "Prometheus query for metric %r: ignored %d NaN/infinite/negative value(s): %s",
                    query.metric,
                    len(refused),
                    _shorten(", ".join(refused), 300),
                )
            samples.extend(got)
        return samples

    async def _run(self, promql: str, timeout: float, headers: dict[str, str]) -> Any:
        """One instant query: ``data.result``; every failure is a _QueryFailed safe to show (no URL,
        which may carry credentials, and no body but Prometheus's own error)."""
        if self._session is None or self._session.closed:
            self._session = new_session(self._settings.endpoint, self._settings.timeout_seconds)
        # The `timeout` parameter also stops the evaluation on the server once nobody waits for it.
        params = {"query": promql, "timeout": f"{timeout:.3f}"}
        limit = self._settings.max_response_bytes
        try:
            async with self._session.get(self._url, params=params, headers=headers) as resp:
                status = resp.status
                body = await read_capped(resp, "Prometheus", limit)
        except SourceError as exc:
            raise _QueryFailed(str(exc)) from None
        except aiohttp.ClientConnectorCertificateError as exc:
            error = exc.certificate_error
            detail = getattr(error, "verify_message", None) or str(error)
            raise _QueryFailed(f"TLS failed: certificate verify failed: {detail}") from None
        except aiohttp.ClientSSLError as exc:
            raise _QueryFailed(f"TLS failed: {exc.__class__.__name__}") from None
        except aiohttp.ClientConnectorError as exc:
            raise _QueryFailed(f"cannot connect: {exc.os_error.strerror or exc.os_error}") from None
        except aiohttp.ClientError as exc:
            raise _QueryFailed(exc.__class__.__name__) from None
        document = await off_loop(len(body), lambda: _json_or_none(body))
        if status != 200:
            raise _QueryFailed(_http_failure(status, document))
        try:
            return document["data"]["result"]
        except (KeyError, TypeError) as exc:
            raise _QueryFailed(f"unexpected answer ({exc.__class__.__name__})") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _json_or_none(body: bytes | bytearray) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _http_failure(status: int, document: Any) -> str:
    """``HTTP 400: bad_data: parse error ...``: only Prometheus's own JSON error is quoted; any other
    body (a proxy's login page, say) is left out."""
    text = f"HTTP {status}"
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        text += f": {document.get('errorType', 'error')}: {_shorten(document['error'], 300)}"
    return text
