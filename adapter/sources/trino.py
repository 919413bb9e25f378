"""Trino as a source: the coordinator's own endpoints, no Prometheus in between.

One poll makes these requests to the coordinator, concurrently, all sent with ``X-Trino-User``:

- ``GET /metrics`` (OpenMetrics; "read system information"): queued and running queries (``QueryManager``),
  the workers queries wait for (``ClusterSizeMonitor.RequiredWorkers``), cluster memory
  (``ClusterMemoryManager``) and node counts, named ``trino_node_name_CoordinatorNodeManager_*`` since 477
  and ``trino_metadata_name_DiscoveryNodeManager_*`` before. The counts include the coordinator itself.
  Also, when present, the ``QueryManager`` counters ``StartedQueries`` (queries that reached RUNNING) and
  ``CompletedQueries`` (every query that ended, finished or failed, even before running): airlift writes a
  ``CounterStat`` as a counter of its total count, without the ``_total`` suffix. They feed the
  controller's queue model; a coordinator without them still serves everything else. Likewise
  ``ConsumedCpuTimeSecs``: the CPU time of each query that ended, cut to whole seconds, added when it ends
  (tests/peers/TRINO_FACTS.md), for the work rate.
- ``GET /v1/query?state=RUNNING``: blocked queries are the running ones whose ``queryStats.fullyBlocked`` is
  true; ``QueryManager`` has no such gauge before 470 and ``/ui/api/stats`` needs a Web UI login. With
  ``running_query_cpu``, also the sum of their ``queryStats.totalCpuTime``: the CPU spent by queries that
  have not ended, which ``ConsumedCpuTimeSecs`` only counts once they do. The list only holds queries the
  user may view, so give the user the right to view all queries. It is read on every poll only when one of
  these needs it (about 2 KB per running query on a real 476).
- ``GET /v1/resourceGroupState/{a}/{b}`` for each configured root and, recursively, each sub-group it lists.
  Trino lists only sub-groups with running or queued queries, so idle groups have no series (idle = 0);
  groups are created on first use, so a root that answers 404 is also idle.

A poll is all or nothing: any failure, odd answer or missing gauge raises :class:`SourceError`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families
from pydantic import Field, field_validator

from adapter.samples import Sample
from adapter.sources.base import SourceSettings
from adapter.sources.http import HttpEndpoint, decode, fetch, new_session, off_loop, parse_json
from core.errors import SourceError
from core.metric_names import (
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
from core.resource_groups import GroupCounts, at_limit, split_queued

log = logging.getLogger(__name__)

ACCEPT_METRICS = "application/openmetrics-text; version=1.0.0, text/plain; version=0.0.4; q=0.5, */*; q=0.1"

QUEUED = "trino_execution_name_QueryManager_QueuedQueries"
RUNNING = "trino_execution_name_QueryManager_RunningQueries"
REQUIRED_WORKERS = "trino_execution_name_ClusterSizeMonitor_RequiredWorkers"
CLUSTER_MEMORY = "trino_memory_name_ClusterMemoryManager_ClusterMemoryBytes"
STARTED = "trino_execution_name_QueryManager_StartedQueries"
COMPLETED = "trino_execution_name_QueryManager_CompletedQueries"
CONSUMED_CPU = "trino_execution_name_QueryManager_ConsumedCpuTimeSecs"
# Since Trino 470; before, fully blocked queries are counted from the running-query list.
FULLY_BLOCKED = "trino_execution_name_QueryManager_FullyBlockedQueries"
# Newest naming first: the node manager moved from trino.metadata to trino.node in 477.
NODE_MANAGER_PREFIXES = (
    "trino_node_name_CoordinatorNodeManager_",
    "trino_metadata_name_DiscoveryNodeManager_",
)
NODE_STATES = {
    "Active": "active",
    "Inactive": "inactive",
    "Draining": "draining",
    "Drained": "drained",
    "ShuttingDown": "shutting_down",
}

CLUSTER_METRICS = (
    TRINO_BLOCKED_QUERIES,
    TRINO_CAPACITY_QUEUED_QUERIES,
    TRINO_CLUSTER_MEMORY_BYTES,
    TRINO_COMPLETED_QUERIES_TOTAL,
    TRINO_CONSUMED_CPU_SECONDS_TOTAL,
    TRINO_NODES,
    TRINO_QUEUED_QUERIES,
    TRINO_REQUIRED_WORKERS,
    TRINO_RUNNING_QUERIES,
    TRINO_STARTED_QUERIES_TOTAL,
)
RUNNING_CPU_METRIC = TRINO_RUNNING_QUERIES_CPU_SECONDS
RESOURCE_GROUP_METRICS = (
    TRINO_RESOURCE_GROUP_HARD_CONCURRENCY_LIMIT,
    TRINO_RESOURCE_GROUP_LIMIT_BOUND,
    TRINO_RESOURCE_GROUP_QUEUED_QUERIES,
    TRINO_RESOURCE_GROUP_RUNNING_QUERIES,
)

# Trino nests resource groups a few levels deep; anything deeper is a loop or a broken answer.
_MAX_GROUP_DEPTH = 16
# Share of the source timeout this source spends itself, so its error (naming the slow request) wins over
# the poller's anonymous one when both bound the same poll.
_BUDGET_SHARE = 0.9

# The OpenMetrics parser carries no annotations; give it the text parser's signature.
_parse_openmetrics: Callable[[str], Iterable[Metric]] = openmetrics_parser.text_string_to_metric_families

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")


class TrinoSettings(SourceSettings):
    """A Trino coordinator polled over its REST API."""

    endpoint: HttpEndpoint = Field(
        description=(
            "The coordinator: base URL (e.g. http://trino:8080), TLS options and credentials read from "
            "mounted Secret files (basic-auth password or bearer token)."
        )
    )
    user: str = Field(
        "queuescale",
        min_length=1,
        description=(
            "Trino user sent as X-Trino-User. It needs 'read system information' and the right to view all "
            "queries; with password or JWT authentication it must be the authenticated user."
        ),
    )
    resource_groups: list[str] = Field(
        default_factory=list,
        description=(
            "Root resource groups to poll, dotted (e.g. `global` or `global.adhoc`); each one and its "
            "active sub-groups, recursively, become `resource_group` series. Empty: no per-group metrics, "
            "and trino_capacity_queued_queries equals trino_queued_queries."
        ),
    )

    @field_validator("resource_groups")
    @classmethod
    def _group_ids(cls, value: list[str]) -> list[str]:
        for group in value:
            if not group or any(not part.strip() for part in group.split(".")):
                raise ValueError(
                    f"resource group {group!r} must be dotted non-empty names, e.g. global.adhoc"
                )
        if len(set(value)) != len(value):
            raise ValueError("resource_groups lists a group twice")
        return value

    running_query_cpu: bool = Field(
        False,
        description=(
            "Also read GET /v1/query?state=RUNNING on every poll and serve "
            "trino_running_queries_cpu_seconds, the CPU running queries have spent so far. It costs about "
            "2 KB per running query per poll, and the user needs the right to view all queries (else the "
            "sum silently covers only its own). Off: only trino_consumed_cpu_seconds_total, which counts a "
            "query's CPU when it ends."
        ),
    )


@dataclass(frozen=True)
class ResourceGroupState:
    """One group as read from ``/v1/resourceGroupState``."""

    id: tuple[str, ...]
    queued: int
    running: int
    hard_concurrency_limit: int
    children: tuple[tuple[str, ...], ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.id)

    @property
    def limit_bound(self) -> bool:
        """Queued because it is at its concurrency limit: more workers will not start these queries."""
        return at_limit(self.queued, self.running, self.hard_concurrency_limit)


@dataclass(frozen=True)
class CoordinatorMetrics:
    queued: float
    running: float
    required_workers: float
    cluster_memory_bytes: float
    nodes: Mapping[str, float]
    started_total: float | None = None
    completed_total: float | None = None
    consumed_cpu_seconds_total: float | None = None
    fully_blocked: float | None = None


def parse_exposition(url: str, text: str) -> dict[str, float]:
    """Sample name -> value of an OpenMetrics or Prometheus text exposition.

    airlift writes counters without the ``_total`` suffix OpenMetrics requires, which the strict
    OpenMetrics parser rejects; the Prometheus text parser reads the same body (``# EOF`` is a comment to it).
    """
    try:
        families = list(_parse_openmetrics(text))
    except ValueError as strict_error:
        try:
            families = list(text_string_to_metric_families(text))
        except ValueError as exc:
            raise SourceError(
                f"{url} answered something that is neither OpenMetrics nor Prometheus text: {exc}"
            ) from strict_error
    values: dict[str, float] = {}
    for family in families:
        for sample in family.samples:
            values.setdefault(sample.name, float(sample.value))
    return values


def coordinator_metrics(url: str, values: Mapping[str, float]) -> CoordinatorMetrics:
    """The gauges this source needs, in either naming era, and the query counters when present.

    A missing gauge or any value that is not a count is an error; a missing counter is ``None``.
    """

    def required(name: str) -> float:
        if name not in values:
            raise SourceError(f"{url} has no {name}: is this a Trino coordinator?")
        return _count(url, name, values[name])

    def counter(name: str) -> float | None:
        # The Prometheus text parser (and a strict OpenMetrics writer) call the sample <name>_total.
        for sample in (name, name + "_total"):
            if sample in values:
                return _count(url, sample, values[sample])
        return None

    prefix = next((p for p in NODE_MANAGER_PREFIXES if p + "ActiveNodeCount" in values), None)
    if prefix is None:
        names = " or ".join(p + "ActiveNodeCount" for p in NODE_MANAGER_PREFIXES)
        raise SourceError(f"{url} has no {names}: is this a Trino coordinator?")
    nodes = {
        state: _count(url, prefix + attribute + "NodeCount", values[prefix + attribute + "NodeCount"])
        for attribute, state in NODE_STATES.items()
        if prefix + attribute + "NodeCount" in values
    }
    return CoordinatorMetrics(
        queued=required(QUEUED),
        running=required(RUNNING),
        required_workers=required(REQUIRED_WORKERS),
        cluster_memory_bytes=required(CLUSTER_MEMORY),
        nodes=nodes,
        started_total=counter(STARTED),
        completed_total=counter(COMPLETED),
        consumed_cpu_seconds_total=counter(CONSUMED_CPU),
        fully_blocked=_count(url, FULLY_BLOCKED, values[FULLY_BLOCKED]) if FULLY_BLOCKED in values else None,
    )


def _count(url: str, name: str, value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise SourceError(f"{url} reports {name} = {value}, which is not a count")
    return value


_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h|d)$")
_DURATION_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration_seconds(url: str, text: Any) -> float:
    """An airlift ``Duration`` as Trino's JSON writes it (``11.07s``, ``5.00ms``, ``0.00ns``)."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise SourceError(f"{url} has a duration {text!r} that is not an airlift Duration")
    return float(match[1]) * _DURATION_SECONDS[match[2]]


def _query_list(url: str, payload: Any) -> list[Any]:
    if not isinstance(payload, list):
        raise SourceError(f"{url} answered {type(payload).__name__}, expected a list of queries")
    return payload


def running_cpu_seconds(url: str, payload: Any) -> float:
    """CPU spent so far by the running queries of a ``/v1/query`` list (``queryStats.totalCpuTime``)."""
    total = 0.0
    for item in _query_list(url, payload):
        stats = item.get("queryStats") if isinstance(item, dict) else None
        if not isinstance(stats, dict) or "totalCpuTime" not in stats:
            raise SourceError(f"{url} lists a query without queryStats.totalCpuTime")
        if item.get("state", "RUNNING") == "RUNNING":
            total += duration_seconds(url, stats["totalCpuTime"])
    return total


def blocked_queries(url: str, payload: Any) -> int:
    """Running queries whose every driver is blocked, from a ``/v1/query`` list."""
    payload = _query_list(url, payload)
    blocked = 0
    for item in payload:
        stats = item.get("queryStats") if isinstance(item, dict) else None
        flag = stats.get("fullyBlocked") if isinstance(stats, dict) else None
        if not isinstance(flag, bool):
            raise SourceError(f"{url} lists a query without queryStats.fullyBlocked")
        if item.get("state", "RUNNING") == "RUNNING" and flag:
            blocked += 1
    return blocked


def resource_group_state(url: str, payload: Any) -> ResourceGroupState:
    """Validate one ``ResourceGroupInfo`` document."""
    if not isinstance(payload, dict):
        raise SourceError(f"{url} answered {type(payload).__name__}, expected a resource group object")
    group_id = _group_id(url, payload.get("id"))
    numbers = {}
    for key in ("numQueuedQueries", "numRunningQueries", "hardConcurrencyLimit"):
        value = payload.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SourceError(f"{url} has no valid {key} for {'.'.join(group_id)}")
        numbers[key] = value
    sub_groups = payload.get("subGroups")
    if sub_groups is None:
        sub_groups = []
    if not isinstance(sub_groups, list):
        raise SourceError(f"{url} has subGroups that are not a list")
    children = []
    for sub in sub_groups:
        child = _group_id(url, sub.get("id") if isinstance(sub, dict) else None)
        if child[:-1] != group_id:
            raise SourceError(f"{url} lists {'.'.join(child)} as a sub-group of {'.'.join(group_id)}")
        children.append(child)
    return ResourceGroupState(
        id=group_id,
        queued=numbers["numQueuedQueries"],
        running=numbers["numRunningQueries"],
        hard_concurrency_limit=numbers["hardConcurrencyLimit"],
        children=tuple(children),
    )


def _group_id(url: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) and s for s in value):
        raise SourceError(f"{url} has a resource group without a valid id")
    return tuple(value)


def capacity_queued(groups: Sequence[ResourceGroupState]) -> int:
    """Queued queries that more workers would start (:func:`core.resource_groups.split_queued`; a group
    is a leaf when Trino lists no sub-groups under it)."""
    counts = [
        GroupCounts(g.id, g.queued, g.running, g.hard_concurrency_limit, leaf=not g.children) for g in groups
    ]
    return split_queued(counts).capacity


class TrinoSource:
    """Polls one coordinator; see the module documentation for what it reads."""

    def __init__(self, settings: TrinoSettings) -> None:
        self._settings = settings
        self._base = settings.endpoint.base()
        self._roots = [tuple(group.split(".")) for group in settings.resource_groups]
        self._session: aiohttp.ClientSession | None = None
        self._absent_roots: set[tuple[str, ...]] = set()
        self._warned_no_counters = False
        self._has_blocked_gauge = False

    @property
    def settings(self) -> TrinoSettings:
        return self._settings

    def identity(self) -> Mapping[str, str]:
        return {"cluster": self._settings.name}

    def served_metrics(self) -> Sequence[str]:
        served = list(CLUSTER_METRICS)
        if self._roots:
            served += RESOURCE_GROUP_METRICS
        if self._settings.running_query_cpu:
            served.append(RUNNING_CPU_METRIC)
        return sorted(served)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def collect(self, now: float) -> list[Sample]:
        budget = self._settings.timeout_seconds * _BUDGET_SHARE
        try:
            async with asyncio.timeout(budget):
                # A coordinator that exported FullyBlockedQueries last time is spared the running-query
                # list (every running query's stats, and a user allowed to view them all) unless the
                # running queries' CPU is asked for.
                scan = not self._has_blocked_gauge or self._settings.running_query_cpu
                metrics, listed, groups = await _all3(
                    self._coordinator_metrics(),
                    self._running() if scan else _nothing(),
                    self._resource_groups(),
                )
                self._has_blocked_gauge = metrics.fully_blocked is not None
                # Parsed even where the gauge makes it unneeded: an odd answer fails the poll all the same.
                scanned = blocked_queries(*listed) if listed is not None else None
                if metrics.fully_blocked is not None:
                    blocked = round(metrics.fully_blocked)
                elif scanned is not None:
                    blocked = scanned
                else:
                    listed = await self._running()
                    blocked = blocked_queries(*listed)
        except TimeoutError as exc:
            raise SourceError(f"{self._base} did not answer within {budget:g}s") from exc
        running_cpu = None
        if listed is not None and self._settings.running_query_cpu:
            running_cpu = running_cpu_seconds(*listed)
        return self._samples(metrics, blocked, groups, running_cpu)

    def _samples(
        self,
        metrics: CoordinatorMetrics,
        blocked: int,
        groups: Sequence[ResourceGroupState],
        running_cpu: float | None = None,
    ) -> list[Sample]:
        cluster = {"cluster": self._settings.name}
        samples = [
            Sample(TRINO_QUEUED_QUERIES, cluster, metrics.queued),
            Sample(TRINO_RUNNING_QUERIES, cluster, metrics.running),
            Sample(TRINO_BLOCKED_QUERIES, cluster, float(blocked)),
            Sample(TRINO_REQUIRED_WORKERS, cluster, metrics.required_workers),
            Sample(TRINO_CLUSTER_MEMORY_BYTES, cluster, metrics.cluster_memory_bytes),
        ]
        if running_cpu is not None:
            samples.append(Sample(RUNNING_CPU_METRIC, cluster, running_cpu))
        samples += [
            Sample(TRINO_NODES, {**cluster, "state": state}, count) for state, count in metrics.nodes.items()
        ]
        counters = {
            STARTED: (TRINO_STARTED_QUERIES_TOTAL, metrics.started_total),
            COMPLETED: (TRINO_COMPLETED_QUERIES_TOTAL, metrics.completed_total),
            CONSUMED_CPU: (TRINO_CONSUMED_CPU_SECONDS_TOTAL, metrics.consumed_cpu_seconds_total),
        }
        samples += [Sample(name, cluster, value) for name, value in counters.values() if value is not None]
        missing = [source for source, (_, value) in counters.items() if value is None]
        if missing and not self._warned_no_counters:
            self._warned_no_counters = True
            log.warning(
                "Trino %s has no %s on /metrics: the controller gets no query or work rates from them",
                self._base,
                ", ".join(missing),
            )
        if self._roots:
            samples.append(Sample(TRINO_CAPACITY_QUEUED_QUERIES, cluster, float(capacity_queued(groups))))
        else:
            samples.append(Sample(TRINO_CAPACITY_QUEUED_QUERIES, cluster, metrics.queued))
        for group in groups:
            labels = {**cluster, "resource_group": group.dotted}
            samples += [
                Sample(TRINO_RESOURCE_GROUP_QUEUED_QUERIES, labels, float(group.queued)),
                Sample(TRINO_RESOURCE_GROUP_RUNNING_QUERIES, labels, float(group.running)),
                Sample(
                    TRINO_RESOURCE_GROUP_HARD_CONCURRENCY_LIMIT, labels, float(group.hard_concurrency_limit)
                ),
                Sample(TRINO_RESOURCE_GROUP_LIMIT_BOUND, labels, 1.0 if group.limit_bound else 0.0),
            ]
        return samples

    # ---------------------------------------------------------------- requests

    def _headers(self, accept: str = "application/json") -> dict[str, str]:
        return {
            "X-Trino-User": self._settings.user,
            "Accept": accept,
            **self._settings.endpoint.auth_headers(),
        }

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = new_session(self._settings.endpoint, self._settings.timeout_seconds)
        return self._session

    async def _get(self, path: str, accept: str = "application/json") -> tuple[str, int, bytearray]:
        url = self._base + path
        headers = self._headers(accept)
        status, body = await fetch(
            self._client(), url, self._settings.max_response_bytes, headers, allow_redirects=False
        )
        return url, status, body

    async def _get_ok(self, path: str, accept: str = "application/json") -> tuple[str, bytearray]:
        url, status, body = await self._get(path, accept)
        if status != 200:
            raise SourceError(f"{url} answered HTTP {status}{_reason(body)}")
        return url, body

    async def _get_json(self, path: str) -> tuple[str, Any]:
        url, body = await self._get_ok(path)
        return url, await off_loop(len(body), lambda: parse_json(url, body))

    async def _coordinator_metrics(self) -> CoordinatorMetrics:
        url, body = await self._get_ok("/metrics", ACCEPT_METRICS)
        return await off_loop(
            len(body), lambda: coordinator_metrics(url, parse_exposition(url, decode(body)))
        )

    async def _running(self) -> tuple[str, Any]:
        return await self._get_json("/v1/query?state=RUNNING")

    async def _resource_groups(self) -> list[ResourceGroupState]:
        seen: dict[tuple[str, ...], ResourceGroupState] = {}
        level = list(self._roots)
        for _ in range(_MAX_GROUP_DEPTH):
            level = [g for g in dict.fromkeys(level) if g not in seen]
            if not level:
                return list(seen.values())
            found = await _all(*(self._group(group_id) for group_id in level))
            level = []
            for group in found:
                if group is not None:
                    seen[group.id] = group
                    level.extend(group.children)
        raise SourceError(f"{self._base} has resource groups nested deeper than {_MAX_GROUP_DEPTH} levels")

    async def _group(self, group_id: tuple[str, ...]) -> ResourceGroupState | None:
        path = "/v1/resourceGroupState/" + "/".join(quote(part, safe="") for part in group_id)
        url, status, body = await self._get(path)
        if status == 404:
            # Trino creates groups when the first query selects them: an unknown group is an idle one.
            if group_id in self._roots and group_id not in self._absent_roots:
                self._absent_roots.add(group_id)
                log.warning("Trino %s has no resource group %s (yet): it counts as idle", self._base, url)
            return None
        if status != 200:
            raise SourceError(f"{url} answered HTTP {status}{_reason(body)}")
        self._absent_roots.discard(group_id)
        payload = parse_json(url, body)
        group = resource_group_state(url, payload)
        if group.id != group_id:
            raise SourceError(f"{url} answered group {group.dotted}")
        return group


def _reason(body: bytes | bytearray) -> str:
    text = " ".join(decode(body[:4096]).split())[:200]
    return f": {text}" if text else ""


async def _all(*awaitables: Awaitable[T]) -> list[T]:
    """Await concurrently; the first failure cancels the rest instead of leaving them running."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        await _cancel(tasks)


async def _nothing() -> None:
    return None


async def _all3(a: Awaitable[A], b: Awaitable[B], c: Awaitable[C]) -> tuple[A, B, C]:
    first, second, third = asyncio.ensure_future(a), asyncio.ensure_future(b), asyncio.ensure_future(c)
    try:
        return await asyncio.gather(first, second, third)
    finally:
        await _cancel([first, second, third])


async def _cancel(tasks: Sequence[asyncio.Future[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
