"""The HTTP faces of the emulated Trino cluster, one aiohttp application per node, and the runner.

Every node serves ``/v1/info``, ``/v1/info/state`` (GET/PUT), ``/v1/info/coordinator`` and ``/metrics``; the
coordinator adds ``/v1/resourceGroupState/{id...}``, ``/v1/query``, ``/v1/node``, ``/ui/api/stats`` and the
form login. Access rules follow Trino's ``ResourceSecurity`` types:

| access | endpoints | check |
|---|---|---|
| public | info, state GET | none |
| management read | /metrics, resourceGroupState, /v1/node | authenticated + "read system information" |
| management write | state PUT | authenticated + "write system information" |
| authenticated | /v1/query | authenticated (results filtered by view rights) |
| web UI | /ui/api/stats | UI session cookie (or protocol credentials when they are not insecure) |

Authentication modes: ``insecure`` (``X-Trino-User`` or Basic without password, Trino's default over HTTP),
``password`` (Basic) and ``jwt`` (Bearer). As upstream, ``password`` and ``jwt`` need HTTPS: the sandbox then
serves HTTPS with a throw-away certificate for 127.0.0.1/localhost (``TrinoSandbox.tls``), and refuses a
request over plain HTTP with 403 "Authentication over HTTP is not enabled".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import enum
import json
import logging
import math
import secrets
import shutil
import ssl
import tempfile
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal
from urllib.parse import unquote_plus

from aiohttp import web

from lab.sandbox.serve import Served, serve
from lab.sandbox.tls import SelfSigned, self_signed
from lab.sandbox.trino_model import (
    DRAINING_SINCE,
    FULLY_BLOCKED_GAUGE_SINCE,
    NODE_MANAGER_RENAMED_IN,
    RUNNING_INCLUDES_BLOCKED_SINCE,
    THREAD_PER_DRIVER_EXECUTOR_SINCE,
    TIME_SHARING_EXECUTOR_SINCE,
    WORKER_COUNT_GAUGES_SINCE,
    LoadPattern,
    Node,
    NodeState,
    Query,
    QueryState,
    ResourceGroup,
    StateChangeRefused,
    TrinoCluster,
    drive_load,
    format_data_size,
    format_duration,
    wall_time,
)

log = logging.getLogger(__name__)

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
BASIC_CHALLENGE = 'Basic realm="Trino"'
BEARER_CHALLENGE = 'Bearer realm="Trino"'
FORM_CHALLENGE = "Presto-Form-Login"
UI_COOKIE = "Trino-UI-Token"


class Access(enum.Enum):
    PUBLIC = "public"
    AUTHENTICATED_USER = "authenticated"
    MANAGEMENT_READ = "management-read"
    MANAGEMENT_WRITE = "management-write"


@dataclass
class TrinoAuth:
    """Authentication and the few access-control rules the sandbox honours; mutable while running."""

    mode: Literal["insecure", "password", "jwt"] = "insecure"
    passwords: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    read_users: frozenset[str] | None = None
    write_users: frozenset[str] = frozenset({"admin"})
    view_all_users: frozenset[str] | None = None

    def may_read(self, user: str) -> bool:
        """Trino's default access control lets everyone read system information."""
        return self.read_users is None or user in self.read_users

    def may_write(self, user: str) -> bool:
        """Writing (graceful shutdown, drain) is denied by default; the chart grants it to ``admin``."""
        return user in self.write_users

    def may_view_all(self, user: str) -> bool:
        return self.view_all_users is None or user in self.view_all_users


@dataclass(frozen=True)
class Fault:
    """What a node answers on a path instead of the real thing.

    ``status=None`` answers normally after ``delay_seconds``; ``hang`` never answers until the sandbox closes.
    """

    status: int | None = 500
    body: str = ""
    content_type: str = "text/plain"
    delay_seconds: float = 0.0
    hang: bool = False


class Faults:
    """Per-node fault rules: an exact path, or a prefix written with a trailing ``*``."""

    def __init__(self) -> None:
        self._rules: dict[str, Fault] = {}
        self._released: asyncio.Event | None = None

    def set(self, path: str, fault: Fault) -> None:
        self._rules[path] = fault

    def clear(self, path: str | None = None) -> None:
        if path is None:
            self._rules.clear()
        else:
            self._rules.pop(path, None)

    def match(self, path: str) -> Fault | None:
        if path in self._rules:
            return self._rules[path]
        best: tuple[int, Fault] | None = None
        for pattern, fault in self._rules.items():
            prefix_hit = pattern.endswith("*") and path.startswith(pattern[:-1])
            if prefix_hit and (best is None or len(pattern) > best[0]):
                best = (len(pattern), fault)
        return None if best is None else best[1]

    async def wait_released(self) -> None:
        if self._released is None:
            self._released = asyncio.Event()
        await self._released.wait()

    def release(self) -> None:
        """Let every hanging request answer (the sandbox is closing)."""
        if self._released is not None:
            self._released.set()

    def rearm(self) -> None:
        self._released = None


@dataclass
class _NodeContext:
    cluster: TrinoCluster
    node_id: str
    auth: TrinoAuth
    faults: Faults
    urls: dict[str, str]
    ui_sessions: dict[str, str]

    @property
    def node(self) -> Node:
        return self.cluster.node(self.node_id)

    def url(self, node_id: str | None = None) -> str:
        return self.urls.get(node_id or self.node_id, "")


_CTX = web.AppKey("trino_node", _NodeContext)


# ------------------------------------------------------------------ rendering


def java_double(value: float) -> str:
    """``Double.toString``: what airlift writes for gauges (``3.0``, ``6.8719476736E10``, ``NaN``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(float(value))
        return text if "e" not in text else format(value, "f")
    sign, digits, exponent = Decimal(repr(float(value))).as_tuple()
    assert isinstance(exponent, int)
    body = "".join(map(str, digits)).rstrip("0") or "0"
    scientific = len(digits) - 1 + exponent
    mantissa = body[0] + "." + (body[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{scientific}"


@dataclass(frozen=True)
class MetricFamily:
    name: str
    type: Literal["gauge", "counter"]
    value: float
    help: str = ""


def _node_manager_families(cluster: TrinoCluster) -> list[MetricFamily]:
    counts = cluster.node_counts()
    if cluster.version >= NODE_MANAGER_RENAMED_IN:
        prefix = "trino_node_name_CoordinatorNodeManager_"
    else:
        prefix = "trino_metadata_name_DiscoveryNodeManager_"
    states = [NodeState.ACTIVE, NodeState.INACTIVE]
    if cluster.version >= DRAINING_SINCE:
        states += [NodeState.DRAINING, NodeState.DRAINED]
    states.append(NodeState.SHUTTING_DOWN)
    attribute = {
        NodeState.ACTIVE: "Active",
        NodeState.INACTIVE: "Inactive",
        NodeState.DRAINING: "Draining",
        NodeState.DRAINED: "Drained",
        NodeState.SHUTTING_DOWN: "ShuttingDown",
    }
    families = [MetricFamily(f"{prefix}{attribute[s]}NodeCount", "gauge", counts[s]) for s in states]
    if cluster.version >= WORKER_COUNT_GAUGES_SINCE:
        active_workers = counts[NodeState.ACTIVE] - (cluster.coordinator.state is NodeState.ACTIVE)
        families += [
            MetricFamily(prefix + "ActiveWorkerCount", "gauge", active_workers),
            MetricFamily(
                prefix + "ActiveCoordinatorCount", "gauge", int(cluster.coordinator.state is NodeState.ACTIVE)
            ),
        ]
    return families


def _executor_families(node: Node) -> list[MetricFamily]:
    """The default task executor's gauges as the node's version exports them (one split per task here)."""
    tasks = node.running_tasks() + node.blocked_tasks()
    if node.version >= THREAD_PER_DRIVER_EXECUTOR_SINCE:
        # A real 476 counts a split started on a driver thread whether it computes, sleeps or is blocked.
        prefix = "trino_execution_executor_dedicated_name_ThreadPerDriverTaskExecutor_"
        return [
            MetricFamily(prefix + "Tasks", "gauge", tasks),
            MetricFamily(prefix + "TotalRunningSplits", "gauge", tasks),
            MetricFamily(prefix + "TotalRunningLeafSplits", "gauge", tasks),
        ]
    if node.version >= TIME_SHARING_EXECUTOR_SINCE:
        prefix = "trino_execution_executor_timesharing_name_TimeSharingTaskExecutor_"
    else:
        prefix = "trino_execution_executor_name_TaskExecutor_"
    return [
        MetricFamily(prefix + "Tasks", "gauge", tasks),
        MetricFamily(prefix + "RunningSplits", "gauge", node.running_tasks()),
        MetricFamily(prefix + "BlockedSplits", "gauge", node.blocked_tasks()),
    ]


def node_metric_families(cluster: TrinoCluster, node: Node) -> list[MetricFamily]:
    """The subset of a node's ``/metrics`` the sandbox models, named as the version names them."""
    families = _executor_families(node)
    if not node.coordinator:
        # Before 477 every node runs a DiscoveryNodeManager and exports its view of the cluster.
        if cluster.version < NODE_MANAGER_RENAMED_IN:
            families += _node_manager_families(cluster)
        return families
    query_manager = "trino_execution_name_QueryManager_"
    memory = "trino_memory_name_ClusterMemoryManager_"
    families += [
        MetricFamily(query_manager + "QueuedQueries", "gauge", cluster.queued_queries()),
        MetricFamily(query_manager + "RunningQueries", "gauge", cluster.running_queries()),
        *(
            [MetricFamily(query_manager + "ProgressingQueries", "gauge", cluster.progressing_queries())]
            if cluster.version >= RUNNING_INCLUDES_BLOCKED_SINCE
            else []
        ),
        *(
            [MetricFamily(query_manager + "FullyBlockedQueries", "gauge", cluster.blocked_queries())]
            if cluster.version >= FULLY_BLOCKED_GAUGE_SINCE
            else []
        ),
        # airlift renders a CounterStat as a counter without the ``_total`` suffix OpenMetrics asks for.
        MetricFamily(query_manager + "SubmittedQueries", "counter", cluster.submitted_queries),
        MetricFamily(query_manager + "StartedQueries", "counter", cluster.started_queries),
        MetricFamily(query_manager + "CompletedQueries", "counter", cluster.completed_queries),
        MetricFamily(query_manager + "FailedQueries", "counter", cluster.failed_queries),
        MetricFamily(query_manager + "ConsumedCpuTimeSecs", "counter", cluster.consumed_cpu_seconds),
        MetricFamily(
            "trino_execution_name_ClusterSizeMonitor_RequiredWorkers",
            "gauge",
            cluster.required_workers_gauge(),
        ),
        MetricFamily(memory + "ClusterMemoryBytes", "gauge", cluster.cluster_memory_bytes()),
        MetricFamily(memory + "ClusterUserMemoryReservation", "gauge", cluster.reserved_memory()),
        MetricFamily(memory + "ClusterTotalMemoryReservation", "gauge", cluster.reserved_memory()),
        MetricFamily(memory + "TotalAvailableProcessors", "gauge", cluster.total_available_processors()),
        MetricFamily(memory + "QueriesKilledDueToOutOfMemory", "gauge", 0),
        *_node_manager_families(cluster),
    ]
    return families


def render_openmetrics(families: Iterable[MetricFamily]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# TYPE {family.name} {family.type}")
        if family.help:
            lines.append(f"# HELP {family.name} {family.help}")
        value = str(int(family.value)) if family.type == "counter" else java_double(float(family.value))
        lines.append(f"{family.name} {value}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _iso(model_seconds: float) -> str:
    return wall_time(model_seconds).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def server_info(cluster: TrinoCluster, node: Node) -> dict[str, object]:
    """``/v1/info``; ``nodeId``, ``state`` and ``coordinatorId`` exist since 477."""
    info: dict[str, object] = {}
    if cluster.version >= NODE_MANAGER_RENAMED_IN:
        info["nodeId"] = node.node_id
        info["state"] = node.state.value
    info["nodeVersion"] = {"version": str(node.version)}
    info["environment"] = cluster.environment
    info["coordinator"] = node.coordinator
    if cluster.version >= NODE_MANAGER_RENAMED_IN:
        info["coordinatorId"] = cluster.coordinator_id if node.coordinator else None
    info["starting"] = False
    info["uptime"] = format_duration(cluster.now - node.started_at)
    return info


def query_state_info(query: Query) -> dict[str, object]:
    return {
        "queryId": query.query_id,
        "queryState": query.state.value,
        "resourceGroupId": list(query.group_id),
        "query": query.text,
        "createTime": _iso(query.created_at),
        "user": query.user,
        "source": query.source,
        "clientInfo": None,
        "catalog": None,
        "schema": None,
        "pathToRoot": None,
        "progress": None,
    }


def resource_group_info(cluster: TrinoCluster, group: ResourceGroup, *, full: bool) -> dict[str, object]:
    """``ResourceGroupInfo``: the full form lists active sub-groups (as summaries) and running queries."""
    memory = cluster.cluster_memory_bytes()
    sub_groups: list[dict[str, object]] | None = None
    running: list[dict[str, object]] | None = None
    if full:
        sub_groups = [
            resource_group_info(cluster, child, full=False)
            for child in group.children.values()
            if child.running_count() + child.queued_count() > 0
        ]
        running = [query_state_info(q) for q in group.running_queries()]
    return {
        "id": list(group.id),
        "state": group.state(memory),
        "schedulingPolicy": group.scheduling_policy.upper(),
        "schedulingWeight": group.scheduling_weight,
        "softMemoryLimit": format_data_size(group.soft_memory_limit_bytes(memory)),
        "softConcurrencyLimit": group.soft_concurrency_limit,
        "hardConcurrencyLimit": group.hard_concurrency_limit,
        "maxQueuedQueries": group.max_queued,
        "memoryUsage": format_data_size(group.memory_usage()),
        "cpuUsage": format_duration(0.0),
        "numQueuedQueries": group.queued_count(),
        "numRunningQueries": group.running_count(),
        "numEligibleSubGroups": group.eligible_sub_groups(memory),
        "subGroups": sub_groups,
        "runningQueries": running,
    }


def basic_query_info(cluster: TrinoCluster, query: Query, coordinator_url: str) -> dict[str, object]:
    now = cluster.now
    end = query.ended_at if query.ended_at is not None else now
    admitted = query.admitted_at if query.admitted_at is not None else end
    running_tasks = [t for t in query.tasks if t.remaining > 0]
    done_tasks = len(query.tasks) - len(running_tasks)
    cpu = query.cpu_seconds
    stats = {
        "createTime": _iso(query.created_at),
        "endTime": _iso(query.ended_at) if query.ended_at is not None else None,
        "queuedTime": format_duration(admitted - query.created_at),
        "elapsedTime": format_duration(end - query.created_at),
        "executionTime": format_duration(max(0.0, end - admitted)),
        "failedTasks": 0,
        "totalDrivers": len(query.tasks),
        "queuedDrivers": 0,
        "runningDrivers": 0 if query.blocked else len(running_tasks),
        "blockedDrivers": len(running_tasks) if query.blocked else 0,
        "completedDrivers": done_tasks,
        "rawInputDataSize": "0B",
        "rawInputPositions": 0,
        "physicalInputDataSize": "0B",
        "userMemoryReservation": format_data_size(
            query.memory_bytes if query.state is QueryState.RUNNING else 0
        ),
        "totalMemoryReservation": format_data_size(
            query.memory_bytes if query.state is QueryState.RUNNING else 0
        ),
        "totalCpuTime": format_duration(cpu),
        "totalScheduledTime": format_duration(cpu),
        "fullyBlocked": query.fully_blocked,
        "blockedReasons": ["WAITING_FOR_MEMORY"] if query.fully_blocked else [],
        "progressPercentage": None if query.state is QueryState.QUEUED else round(query.progress * 100, 2),
    }
    error_code = None
    if query.error_name is not None:
        error_code = {"code": 0, "name": query.error_name, "type": query.error_type, "retriable": False}
    return {
        "queryId": query.query_id,
        "session": {"queryId": query.query_id, "user": query.user, "source": query.source},
        "resourceGroupId": list(query.group_id),
        "state": query.state.value,
        "scheduled": bool(query.tasks),
        "self": f"{coordinator_url}/v1/query/{query.query_id}",
        "query": query.text,
        "updateType": None,
        "preparedQuery": None,
        "queryStats": stats,
        "errorType": query.error_type,
        "errorCode": error_code,
        "queryType": "SELECT",
    }


def cluster_stats(cluster: TrinoCluster) -> dict[str, object]:
    """``/ui/api/stats``: running excludes fully blocked queries, which are counted apart."""
    # Active nodes without the coordinator unless it schedules work (node-scheduler.include-coordinator).
    active_workers = cluster.active_worker_count()
    cpu = sum(q.cpu_seconds for q in cluster.queries())
    return {
        "runningQueries": cluster.progressing_queries(),
        "blockedQueries": cluster.blocked_queries(),
        "queuedQueries": cluster.queued_queries(),
        "activeCoordinators": 1,
        "activeWorkers": active_workers,
        "runningDrivers": cluster.running_drivers(),
        "totalAvailableProcessors": cluster.total_available_processors(),
        "reservedMemory": float(cluster.reserved_memory()),
        "totalInputRows": 0,
        "totalInputBytes": 0,
        "totalCpuTimeSecs": round(cpu),
    }


# -------------------------------------------------------------- security


def _unauthorized(message: str, challenge: str) -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(text=message, headers={"WWW-Authenticate": challenge})


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _unauthorized("Malformed credentials", BASIC_CHALLENGE) from None
    user, colon, password = decoded.partition(":")
    if not colon:
        raise _unauthorized("Malformed decoded credentials", BASIC_CHALLENGE)
    return user, password


def _authenticate(request: web.Request, auth: TrinoAuth) -> tuple[str, str | None]:
    """(authenticated user, user named in X-Trino-User) or 401, like ``AuthenticationFilter``.

    With password or JWT authentication a request over plain HTTP is refused outright (a real 476:
    403 "Authentication over HTTP is not enabled", tests/peers/TRINO_FACTS.md §3)."""
    header = request.headers.get("Authorization", "")
    claimed = request.headers.get("X-Trino-User", "").strip() or None
    if auth.mode != "insecure" and not request.secure:
        raise web.HTTPForbidden(text="Authentication over HTTP is not enabled")
    if auth.mode == "insecure":
        basic = _basic_credentials(header)
        if basic is not None:
            user, password = basic
            if password:
                raise _unauthorized("Password not allowed for insecure authentication", BASIC_CHALLENGE)
            if user:
                return user, claimed
        if claimed:
            return claimed, claimed
        raise _unauthorized("Basic authentication or X-Trino-User must be sent", BASIC_CHALLENGE)
    if auth.mode == "password":
        basic = _basic_credentials(header)
        if basic is None:
            raise _unauthorized("Unauthorized", BASIC_CHALLENGE)
        user, password = basic
        expected = auth.passwords.get(user)
        if expected is None or not secrets.compare_digest(expected, password):
            raise _unauthorized("Access Denied: Invalid credentials", BASIC_CHALLENGE)
        return user, claimed
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Unauthorized", BEARER_CHALLENGE)
    user_of_token = auth.tokens.get(token.strip())
    if user_of_token is None:
        raise _unauthorized("Unauthorized", BEARER_CHALLENGE)
    return user_of_token, claimed


def _identity(request: web.Request, access: Access) -> str:
    ctx = request.app[_CTX]
    user, claimed = _authenticate(request, ctx.auth)
    effective = claimed or user
    impersonating = effective != user
    if access in (Access.MANAGEMENT_READ, Access.MANAGEMENT_WRITE):
        read = access is Access.MANAGEMENT_READ
        allowed = ctx.auth.may_read(effective) if read else ctx.auth.may_write(effective)
        if impersonating or not allowed:
            raise web.HTTPForbidden(text="Management only resource")
    elif impersonating:
        raise web.HTTPForbidden(text=f"Access Denied: User {user} cannot impersonate user {effective}")
    return effective


def _ui_identity(request: web.Request) -> str:
    ctx = request.app[_CTX]
    token = request.cookies.get(UI_COOKIE)
    if token is not None and token in ctx.ui_sessions:
        return ctx.ui_sessions[token]
    if ctx.auth.mode != "insecure" and "Authorization" in request.headers:
        return _identity(request, Access.AUTHENTICATED_USER)
    raise _unauthorized("Unauthorized", FORM_CHALLENGE)


def _json(payload: object, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(payload), status=status, content_type="application/json")


def _accepts_openmetrics(accept: str) -> bool:
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            continue
        if media in ("*/*", "application/*", "application/openmetrics-text"):
            return True
    return False


# -------------------------------------------------------------- handlers


async def _get_info(request: web.Request) -> web.Response:
    ctx = request.app[_CTX]
    return _json(server_info(ctx.cluster, ctx.node))


async def _get_state(request: web.Request) -> web.Response:
    return _json(request.app[_CTX].node.state.value)


async def _put_state(request: web.Request) -> web.Response:
    ctx = request.app[_CTX]
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="Unsupported Media Type")
    _identity(request, Access.MANAGEMENT_WRITE)
    raw = await request.text()
    renamed = ctx.cluster.version >= NODE_MANAGER_RENAMED_IN
    enum_class = "io.trino.node.NodeState" if renamed else "io.trino.metadata.NodeState"
    try:
        target = json.loads(raw) if raw.strip() else ...
    except ValueError as exc:
        return _json({"code": "JSON_PARSING_ERROR", "message": f"Unexpected character: {exc}"}, status=400)
    if target is ...:
        return _json(
            {"code": "JSON_PARSING_ERROR", "message": "No content to map due to end-of-input"}, status=400
        )
    if target is None:
        raise web.HTTPInternalServerError(text="state is null")
    names = ctx.cluster.state_names()
    if not isinstance(target, str) or target not in names:
        shown = f'String "{target}"' if isinstance(target, str) else json.dumps(target)
        message = (
            f"Cannot deserialize value of type `{enum_class}` from {shown}: not one of the values accepted "
            f"for Enum class: [{', '.join(names)}]"
        )
        return _json({"code": "JSON_PARSING_ERROR", "message": message}, status=400)
    try:
        ctx.cluster.request_state(ctx.node_id, target)
    except StateChangeRefused as refused:
        return web.Response(status=refused.status, text=refused.message, content_type="text/plain")
    return web.Response(status=200, text="", content_type="text/plain")


async def _get_coordinator(request: web.Request) -> web.Response:
    if request.app[_CTX].node.coordinator:
        return web.Response(status=200, text="", content_type="text/plain")
    raise web.HTTPNotFound()


async def _get_metrics(request: web.Request) -> web.Response:
    ctx = request.app[_CTX]
    accept = request.headers.get("Accept")
    if accept and not _accepts_openmetrics(accept):
        raise web.HTTPNotAcceptable()
    _identity(request, Access.MANAGEMENT_READ)
    families = node_metric_families(ctx.cluster, ctx.node)
    wanted = request.query.getall("name[]", [])
    if wanted:
        families = [f for f in families if f.name in wanted]
    return web.Response(
        body=render_openmetrics(families).encode(), headers={"Content-Type": OPENMETRICS_CONTENT_TYPE}
    )


async def _get_resource_group(request: web.Request) -> web.Response:
    ctx = request.app[_CTX]
    _identity(request, Access.MANAGEMENT_READ)
    prefix = "/v1/resourceGroupState/"
    tail = request.raw_path.split("?", 1)[0][len(prefix) :]
    # The path stays encoded: segments split on "/" first, then each is URL-decoded (``@Encoded``).
    segments = [unquote_plus(part) for part in tail.split("/")]
    group = ctx.cluster.created_group(segments) if all(segments) else None
    if group is None:
        raise web.HTTPNotFound()
    return _json(resource_group_info(ctx.cluster, group, full=True))


async def _get_queries(request: web.Request) -> web.Response:
    ctx = request.app[_CTX]
    user = _identity(request, Access.AUTHENTICATED_USER)
    state_filter = request.query.get("state")
    expected: QueryState | None = None
    if state_filter is not None:
        try:
            expected = QueryState(state_filter.upper())
        except ValueError:
            raise web.HTTPInternalServerError(
                text=f"No enum constant io.trino.execution.QueryState.{state_filter.upper()}"
            ) from None
    queries = ctx.cluster.queries(expected)
    if not ctx.auth.may_view_all(user):
        queries = [q for q in queries if q.user == user]
    return _json([basic_query_info(ctx.cluster, q, ctx.url()) for q in queries])


async def _get_nodes(request: web.Request) -> web.Response:
    ctx = request.app[_CTX]
    _identity(request, Access.MANAGEMENT_READ)
    rows = []
    for worker in ctx.cluster.workers():
        rows.append(
            {
                "uri": ctx.url(worker.node_id),
                "recentRequests": 12.0,
                "recentFailures": 0.0,
                "recentSuccesses": 12.0,
                "lastRequestTime": _iso(ctx.cluster.now),
                "lastResponseTime": _iso(ctx.cluster.now),
                "recentFailureRatio": 0.0,
                "age": format_duration(ctx.cluster.now - worker.started_at),
                "recentFailuresByType": {},
            }
        )
    return _json(rows)


async def _get_failed_nodes(request: web.Request) -> web.Response:
    _identity(request, Access.MANAGEMENT_READ)
    return _json([])


async def _get_cluster_stats(request: web.Request) -> web.Response:
    _ui_identity(request)
    return _json(cluster_stats(request.app[_CTX].cluster))


async def _post_login(request: web.Request) -> web.StreamResponse:
    ctx = request.app[_CTX]
    form = await request.post()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    if ctx.auth.mode == "insecure":
        valid = bool(username) and not password
    elif ctx.auth.mode == "password":
        expected = ctx.auth.passwords.get(username)
        valid = expected is not None and secrets.compare_digest(expected, password)
    else:
        valid = False
    if not valid:
        raise web.HTTPSeeOther("/ui/login.html")
    token = secrets.token_urlsafe(24)
    ctx.ui_sessions[token] = username
    redirect = web.HTTPSeeOther("/ui/")
    redirect.set_cookie(UI_COOKIE, token, path="/ui", httponly=True)
    raise redirect


@web.middleware
async def _fault_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    faults = request.app[_CTX].faults
    fault = faults.match(request.path)
    if fault is None:
        return await handler(request)
    if fault.hang:
        await faults.wait_released()
        return web.Response(status=503, text="sandbox closing")
    if fault.delay_seconds > 0:
        await asyncio.sleep(fault.delay_seconds)
    if fault.status is None:
        return await handler(request)
    return web.Response(
        status=fault.status, body=fault.body.encode(), headers={"Content-Type": fault.content_type}
    )


def create_node_app(
    cluster: TrinoCluster,
    node_id: str,
    *,
    auth: TrinoAuth | None = None,
    faults: Faults | None = None,
    urls: dict[str, str] | None = None,
    ui_sessions: dict[str, str] | None = None,
) -> web.Application:
    """The application of one node; ``urls`` maps node ids to base URLs (for links such as ``self``)."""
    node = cluster.node(node_id)
    app = web.Application(middlewares=[_fault_middleware])
    app[_CTX] = _NodeContext(
        cluster=cluster,
        node_id=node_id,
        auth=auth if auth is not None else TrinoAuth(),
        faults=faults if faults is not None else Faults(),
        urls=urls if urls is not None else {},
        ui_sessions=ui_sessions if ui_sessions is not None else {},
    )
    app.router.add_get("/v1/info", _get_info)
    app.router.add_get("/v1/info/state", _get_state)
    app.router.add_put("/v1/info/state", _put_state)
    app.router.add_get("/v1/info/coordinator", _get_coordinator)
    app.router.add_get("/metrics", _get_metrics)
    if node.coordinator:
        app.router.add_get("/v1/resourceGroupState/{resource_group_id:.+}", _get_resource_group)
        app.router.add_get("/v1/query", _get_queries)
        app.router.add_get("/v1/node", _get_nodes)
        app.router.add_get("/v1/node/failed", _get_failed_nodes)
        app.router.add_get("/ui/api/stats", _get_cluster_stats)
        app.router.add_post("/ui/login", _post_login)
    return app


# ------------------------------------------------------------------ runner


class TrinoSandbox:
    """Serves every node of ``cluster`` on its own loopback port.

    With ``tick_seconds`` set, a background task advances the model on the wall clock (``speedup`` model
    seconds per real second), submits the ``load`` patterns' arrivals, and starts or stops node servers as
    workers join or leave. With ``tick_seconds=None`` time only moves when the caller advances the model
    (then call :meth:`sync` to let the servers follow joined and departed workers).
    """

    def __init__(
        self,
        cluster: TrinoCluster,
        *,
        auth: TrinoAuth | None = None,
        tick_seconds: float | None = 0.1,
        speedup: float = 1.0,
        load: Sequence[LoadPattern] = (),
        https: bool | None = None,
        tls: SelfSigned | None = None,
    ) -> None:
        """``https``: serve every node over HTTPS with a certificate of :attr:`tls` (default: when the
        authentication needs it, as Trino takes passwords and tokens only over HTTPS, or when ``tls`` is
        given); ``tls``: that certificate (default: a new one for the loopback names)."""
        if tick_seconds is not None and tick_seconds <= 0:
            raise ValueError("tick_seconds must be positive")
        self.cluster = cluster
        self.auth = auth if auth is not None else TrinoAuth()
        self.https = (self.auth.mode != "insecure" or tls is not None) if https is None else https
        self.tls: SelfSigned | None = tls if self.https else None
        self._server_ssl: ssl.SSLContext | None = None
        if self.tls is not None:
            self._server_ssl = self.tls.server_context()
        elif self.https:
            directory = tempfile.mkdtemp(prefix="queuescale-trino-tls-")
            # Kept while the sandbox lives (it may be stopped and started again), removed with it.
            weakref.finalize(self, shutil.rmtree, directory, ignore_errors=True)
            self.tls = self_signed(Path(directory))
            self._server_ssl = self.tls.server_context()
        self.load = list(load)
        self._tick = tick_seconds
        self._speedup = speedup
        self._served: dict[str, Served] = {}
        self._urls: dict[str, str] = {}
        self._faults: dict[str, Faults] = {}
        self._ui_sessions: dict[str, str] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> TrinoSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        for faults in self._faults.values():
            faults.rearm()
        await self.sync()
        if self._tick is not None and self._ticker is None:
            self._ticker = asyncio.create_task(self._run(), name="trino-sandbox-ticker")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for faults in self._faults.values():
            faults.release()
        async with self._lock:
            for node_id in list(self._served):
                await self._served.pop(node_id).stop()
                self._urls.pop(node_id, None)

    def client_ssl(self) -> ssl.SSLContext | None:
        """A client context that trusts the servers' certificate; None over plain HTTP."""
        return self.tls.client_context() if self.tls is not None else None

    @property
    def ca_file(self) -> Path | None:
        return self.tls.cert_file if self.tls is not None else None

    @property
    def coordinator_url(self) -> str:
        return self._urls[self.cluster.coordinator.node_id]

    @property
    def worker_urls(self) -> dict[str, str]:
        """Base URLs of the workers being served, by node id."""
        return {k: v for k, v in self._urls.items() if k != self.cluster.coordinator.node_id}

    def url(self, node_id: str) -> str:
        return self._urls[node_id]

    def faults(self, node_id: str | None = None) -> Faults:
        """Fault rules of one node (the coordinator by default); they survive restarts of the sandbox."""
        key = node_id or self.cluster.coordinator.node_id
        return self._faults.setdefault(key, Faults())

    async def sync(self) -> None:
        """Serve nodes that joined the model, stop the servers of nodes that left it."""
        async with self._lock:
            for node in self.cluster.nodes():
                if node.node_id not in self._served:
                    app = create_node_app(
                        self.cluster,
                        node.node_id,
                        auth=self.auth,
                        faults=self.faults(node.node_id),
                        urls=self._urls,
                        ui_sessions=self._ui_sessions,
                    )
                    served = await serve(app, ssl_context=self._server_ssl)
                    self._served[node.node_id] = served
                    self._urls[node.node_id] = served.url
            alive = {node.node_id for node in self.cluster.nodes()}
            for node_id in [n for n in self._served if n not in alive]:
                self._urls.pop(node_id, None)
                await self._served.pop(node_id).stop()

    async def add_worker(
        self,
        *,
        node_id: str | None = None,
        version: int | None = None,
        memory_bytes: int | None = None,
        processors: int | None = None,
    ) -> str:
        """Add a worker to the model now and serve it; returns its node id."""
        node = self.cluster.add_worker(
            node_id=node_id, version=version, memory_bytes=memory_bytes, processors=processors
        )
        await self.sync()
        return node.node_id

    async def remove_worker(self, node_id: str) -> list[Query]:
        """Remove a worker abruptly; returns the queries that were killed."""
        killed = self.cluster.remove_worker(node_id)
        await self.sync()
        return killed

    async def _run(self) -> None:
        assert self._tick is not None
        loop = asyncio.get_running_loop()
        wall_start = loop.time()
        model_start = self.cluster.now
        last = model_start
        while True:
            await asyncio.sleep(self._tick)
            target = max(model_start + (loop.time() - wall_start) * self._speedup, self.cluster.now)
            try:
                drive_load(self.cluster, self.load, last, target)
                self.cluster.advance(target)
                await self.sync()
            except Exception:
                log.exception("trino sandbox tick failed")
            last = target
