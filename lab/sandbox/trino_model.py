"""The sandbox's emulated Trino coordinator and workers: protocol and state machines, for the demo and contract tests.

One of the project's three Trino cluster models, and the only one with Trino's protocol: nodes with their
state machines, resource groups and queries, the state behind the sandbox's HTTP faces
(:mod:`lab.sandbox.trino`), which the demo and the contract tests talk to. The simulator
(``queuescale simulate``) does not use it; it has two models of its own, the work model
(:class:`autoscaler.sim.trino_work.WorkCluster`, the benchmark's default) and the slot model
(:class:`autoscaler.sim.trino.SlotCluster`, ``--model slots``). Where their assumptions coincide the three
give every query the same start and end: ``tests/autoscaler/sim/test_trino_models_agree.py``.

Pure and synchronous: time only moves when the caller says so (``advance(now)``), so the same model runs
on the wall clock in the sandbox and fast-forwarded in tests. Behaviour follows upstream Trino (see
shared/REFERENCE.md §3):

- ``NodeStateManager`` (468+): ACTIVE -> DRAINING -> DRAINED, DRAINING/DRAINED -> ACTIVE, SHUTTING_DOWN from
  ACTIVE/DRAINING (grace, wait for tasks, grace, exit) or from DRAINED (exit at once); the same state again
  is a no-op; the coordinator refuses to drain or shut down.
- ``GracefulShutdownHandler`` (< 468): only SHUTTING_DOWN, one-way, same three phases.
- ``InternalResourceGroup``: a query runs when every group on its path is under ``hardConcurrencyLimit`` and
  within its ``softMemoryLimit``, queues while every group is under ``maxQueuedQueries``, else is rejected.
- ``ClusterSizeMonitor``: admitted queries wait as WAITING_FOR_RESOURCES until the coordinator sees
  ``required_workers`` active workers, and fail after ``required_workers_max_wait``.
- The coordinator re-reads worker states every ``node_refresh_seconds`` (5 s upstream): it keeps scheduling
  on a worker it still believes ACTIVE, which is why draining waits one grace period first.

Work is measured in worker-seconds (one processor at speed 1 for one second). A query's work is split evenly
over the workers it starts on (workers added later only serve new queries) and each worker shares its
capacity equally among its unblocked tasks.
"""

from __future__ import annotations

import enum
import math
import random
import re
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

GiB = 1024**3

#: First release with DRAINING/DRAINED (``NodeStateManager``).
DRAINING_SINCE = 468
#: First release whose ``/v1/info`` carries ``nodeId``/``state`` and whose node counts come from
#: ``CoordinatorNodeManager`` (domain ``trino.node``), not ``DiscoveryNodeManager`` (``trino.metadata``).
NODE_MANAGER_RENAMED_IN = 477
#: First release whose ``QueryManager.RunningQueries`` counts every RUNNING query, fully blocked ones
#: included, and whose ``ProgressingQueries`` counts the others (commit b6a28b6, shipped in 430);
#: before, ``RunningQueries`` left fully blocked queries out.
RUNNING_INCLUDES_BLOCKED_SINCE = 430
#: First release with ``QueryManager.FullyBlockedQueries`` (a real 476 serves it: tests/peers/TRINO_FACTS.md).
FULLY_BLOCKED_GAUGE_SINCE = 470
#: First release whose ``CoordinatorNodeManager`` adds ``ActiveWorkerCount`` and ``ActiveCoordinatorCount``
#: (trinodb/trino ``core/trino-main/.../node/CoordinatorNodeManager.java``; no real 480 runs here).
WORKER_COUNT_GAUGES_SINCE = 480
#: The default task executor: ``TimeSharingTaskExecutor`` from 424 (``executor.timesharing``), the
#: ``ThreadPerDriverTaskExecutor`` (``executor.dedicated``) from 438 (``TaskManagerConfig``,
#: ``ServerMainModule``); ``TaskExecutor`` (``trino.execution.executor``) before 424.
TIME_SHARING_EXECUTOR_SINCE = 424
THREAD_PER_DRIVER_EXECUTOR_SINCE = 438
#: Releases whose SHUTTING_DOWN exits after one grace period without waiting for tasks (trinodb/trino
#: #25690, fixed in 476).
SHUTDOWN_SKIPS_TASKS = range(474, 476)
#: First release that answers 500 instead of 400 to ``PUT "DRAINED"``/``"INACTIVE"`` (a real 476: 400; 477+
#: follows ``server/NodeStateManager.java`` and ``node/NodeState.java``, where they are internal states).
INTERNAL_STATE_PUT_500_SINCE = 477

#: Model time 0 is this instant on the wall-clock faces (query ids, ISO timestamps).
SANDBOX_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

_EPS = 1e-9
# Completions closer than this are rounded up to it, so the clock always moves by a representable step.
_MIN_STEP = 1e-6
_MAX_HISTORY = 100
_MIN_EXPIRE_AGE = 900.0


def wall_time(model_seconds: float) -> datetime:
    return SANDBOX_EPOCH + timedelta(seconds=model_seconds)


class NodeState(enum.StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    DRAINING = "DRAINING"
    DRAINED = "DRAINED"
    SHUTTING_DOWN = "SHUTTING_DOWN"


class QueryState(enum.StrEnum):
    QUEUED = "QUEUED"
    WAITING_FOR_RESOURCES = "WAITING_FOR_RESOURCES"
    DISPATCHING = "DISPATCHING"
    PLANNING = "PLANNING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    FINISHING = "FINISHING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"

    @property
    def is_done(self) -> bool:
        return self in (QueryState.FINISHED, QueryState.FAILED)


class StateChangeRefused(Exception):
    """A ``PUT /v1/info/state`` that upstream refuses, with the HTTP status and text it answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Phase(enum.Enum):
    ANNOUNCE = "announce"  # first grace period: the coordinator learns the new state
    TASKS = "tasks"  # wait until no task is left on the node
    SETTLE = "settle"  # second grace period: the coordinator sees the tasks finish


@dataclass(eq=False)
class Task:
    """The part of one query that runs on one node."""

    query: Query
    node_id: str
    remaining: float


@dataclass(eq=False)
class Query:
    query_id: str
    group_id: tuple[str, ...]
    work_seconds: float
    memory_bytes: int
    user: str
    source: str
    text: str
    created_at: float
    sequence: int
    state: QueryState = QueryState.QUEUED
    blocked: bool = False
    admitted_at: float | None = None
    running_since: float | None = None
    ended_at: float | None = None
    error_message: str | None = None
    error_name: str | None = None
    error_type: str | None = None
    killed: bool = False
    tasks: list[Task] = field(default_factory=list)

    @property
    def fully_blocked(self) -> bool:
        return self.state is QueryState.RUNNING and self.blocked

    @property
    def remaining_work(self) -> float:
        if self.state in (QueryState.QUEUED, QueryState.WAITING_FOR_RESOURCES):
            return self.work_seconds
        return sum(task.remaining for task in self.tasks)

    @property
    def cpu_seconds(self) -> float:
        """CPU spent so far (``queryStats.totalCpuTime``): one worker-second of work is one CPU-second."""
        return self.work_seconds - self.remaining_work if self.tasks else 0.0

    @property
    def progress(self) -> float:
        """Fraction of the work done, 0..1."""
        if self.state is QueryState.FINISHED:
            return 1.0
        if self.work_seconds <= 0:
            return 0.0
        return max(0.0, min(1.0, 1.0 - self.remaining_work / self.work_seconds))


@dataclass(eq=False)
class Node:
    """A coordinator or a worker; ``gone_at`` is set once it has left the cluster."""

    node_id: str
    version: int
    coordinator: bool
    memory_bytes: int
    processors: int
    speed: float
    started_at: float
    state: NodeState = NodeState.ACTIVE
    gone_at: float | None = None
    tasks: list[Task] = field(default_factory=list)
    _phase: _Phase | None = None
    _phase_until: float = 0.0
    _goal: NodeState | None = None  # DRAINED, or SHUTTING_DOWN meaning "leave"

    @property
    def alive(self) -> bool:
        return self.gone_at is None

    @property
    def capacity(self) -> float:
        """Worker-seconds of work this node does per second."""
        return self.processors * self.speed

    @property
    def phase(self) -> str | None:
        return None if self._phase is None else self._phase.value

    def running_tasks(self) -> int:
        return sum(1 for task in self.tasks if not task.query.blocked)

    def blocked_tasks(self) -> int:
        return sum(1 for task in self.tasks if task.query.blocked)


@dataclass(frozen=True)
class ResourceGroupSpec:
    """One node of the resource-group tree, as in ``resource-groups.json``."""

    name: str
    hard_concurrency_limit: int = 100
    max_queued: int = 1000
    soft_memory_limit: str = "100%"
    soft_concurrency_limit: int | None = None
    scheduling_policy: str = "fair"
    scheduling_weight: int = 1
    sub_groups: tuple[ResourceGroupSpec, ...] = ()


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|kB|MB|GB|TB|PB)\s*$")
_SIZE_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4, "PB": 1024**5}


def parse_memory_limit(limit: str, cluster_memory_bytes: int) -> int:
    """``"50%"`` of the cluster's memory, or an airlift data size such as ``"12GB"``."""
    text = limit.strip()
    if text.endswith("%"):
        return int(float(text[:-1]) / 100.0 * cluster_memory_bytes)
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a memory limit: {limit!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


class ResourceGroup:
    """A resource group at run time; its limits may be changed by tests while the cluster runs."""

    def __init__(self, spec: ResourceGroupSpec, parent: ResourceGroup | None) -> None:
        if not spec.name or "." in spec.name:
            raise ValueError(f"resource group name {spec.name!r} must be non-empty and contain no dot")
        self.parent = parent
        self.id: tuple[str, ...] = (*parent.id, spec.name) if parent else (spec.name,)
        self.hard_concurrency_limit = spec.hard_concurrency_limit
        self.soft_concurrency_limit = (
            spec.soft_concurrency_limit
            if spec.soft_concurrency_limit is not None
            else spec.hard_concurrency_limit
        )
        self.max_queued = spec.max_queued
        self.soft_memory_limit = spec.soft_memory_limit
        self.scheduling_policy = spec.scheduling_policy
        self.scheduling_weight = spec.scheduling_weight
        self.children: dict[str, ResourceGroup] = {}
        # InternalResourceGroupManager creates a group when a query first selects it (or a descendant):
        # until then its state endpoint answers 404.
        self.created = False
        self.queued: deque[Query] = deque()
        self.running: list[Query] = []
        for child in spec.sub_groups:
            if child.name in self.children:
                raise ValueError(f"duplicate sub-group {child.name!r} in {self.dotted}")
            self.children[child.name] = ResourceGroup(child, self)

    @property
    def dotted(self) -> str:
        return ".".join(self.id)

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def walk(self) -> Iterator[ResourceGroup]:
        yield self
        for child in self.children.values():
            yield from child.walk()

    def path(self) -> list[ResourceGroup]:
        """This group and its ancestors, leaf first."""
        out: list[ResourceGroup] = []
        group: ResourceGroup | None = self
        while group is not None:
            out.append(group)
            group = group.parent
        return out

    def queued_count(self) -> int:
        return len(self.queued) + sum(child.queued_count() for child in self.children.values())

    def running_count(self) -> int:
        return len(self.running) + sum(child.running_count() for child in self.children.values())

    def memory_usage(self) -> int:
        own = sum(q.memory_bytes for q in self.running if q.state is QueryState.RUNNING)
        return own + sum(child.memory_usage() for child in self.children.values())

    def running_queries(self) -> list[Query]:
        """Admitted queries of this group and its descendants (upstream's aggregated running list)."""
        if self.is_leaf:
            return list(self.running)
        return [q for child in self.children.values() for q in child.running_queries()]

    def soft_memory_limit_bytes(self, cluster_memory_bytes: int) -> int:
        return parse_memory_limit(self.soft_memory_limit, cluster_memory_bytes)

    def can_run_more(self, cluster_memory_bytes: int) -> bool:
        if self.memory_usage() > self.soft_memory_limit_bytes(cluster_memory_bytes):
            return False
        return self.running_count() < self.hard_concurrency_limit

    def can_queue_more(self) -> bool:
        return self.queued_count() < self.max_queued

    def state(self, cluster_memory_bytes: int) -> str:
        if self.can_run_more(cluster_memory_bytes):
            return "CAN_RUN"
        if self.can_queue_more():
            return "CAN_QUEUE"
        return "FULL"

    def eligible_sub_groups(self, cluster_memory_bytes: int) -> int:
        return sum(
            1
            for child in self.children.values()
            if child.can_run_more(cluster_memory_bytes) and child.queued_count() > 0
        )


def default_groups() -> list[ResourceGroupSpec]:
    """A small tree like the ones in Trino's documentation: ``global`` with ``adhoc`` and ``etl``."""
    return [
        ResourceGroupSpec(
            "global",
            hard_concurrency_limit=100,
            max_queued=1000,
            soft_memory_limit="100%",
            sub_groups=(
                ResourceGroupSpec(
                    "adhoc", hard_concurrency_limit=10, max_queued=200, soft_memory_limit="60%"
                ),
                ResourceGroupSpec("etl", hard_concurrency_limit=4, max_queued=100, soft_memory_limit="60%"),
            ),
        )
    ]


def _group_key(group: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(group, str):
        return tuple(group.split("."))
    return tuple(group)


class TrinoCluster:
    """The sandbox's emulated Trino cluster (not the simulator's slot model,
    :class:`autoscaler.sim.trino.SlotCluster`): one coordinator and its workers, see the module docstring.

    Every mutating method takes an optional ``now``: when given, the model first advances to it; otherwise
    the change happens at the model's current time."""

    def __init__(
        self,
        version: int = 478,
        environment: str = "sandbox",
        *,
        workers: int = 2,
        groups: Sequence[ResourceGroupSpec] | None = None,
        required_workers: int = 1,
        required_workers_max_wait: float = 300.0,
        grace_period: float = 120.0,
        node_refresh_seconds: float = 5.0,
        include_coordinator: bool = False,
        worker_memory_bytes: int = 16 * GiB,
        worker_processors: int = 4,
        worker_speed: float = 1.0,
        start: float = 0.0,
        seed: int = 0,
        coordinator_memory_bytes: int | None = None,
    ) -> None:
        """``coordinator_memory_bytes`` (default: a worker's) counts in ClusterMemoryBytes, and so in
        percentage soft memory limits, whether or not the coordinator schedules work."""
        if required_workers < 1:
            raise ValueError("required_workers must be at least 1 (query-manager.required-workers)")
        if grace_period < 0 or node_refresh_seconds < 0 or required_workers_max_wait <= 0:
            raise ValueError("durations must not be negative")
        self.version = version
        self.environment = environment
        self.required_workers = required_workers
        self.required_workers_max_wait = required_workers_max_wait
        self.grace_period = grace_period
        self.node_refresh_seconds = node_refresh_seconds
        self.include_coordinator = include_coordinator
        self.worker_memory_bytes = worker_memory_bytes
        self.worker_processors = worker_processors
        self.worker_speed = worker_speed
        self._now = float(start)
        self._rng = random.Random(seed)
        self.coordinator_id = "".join(self._rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(5))
        self.coordinator = Node(
            node_id="coordinator",
            version=version,
            coordinator=True,
            memory_bytes=worker_memory_bytes
            if coordinator_memory_bytes is None
            else coordinator_memory_bytes,
            processors=worker_processors,
            speed=worker_speed,
            started_at=self._now,
        )
        self._workers: dict[str, Node] = {}
        self._worker_seq = 0
        self._roots: dict[str, ResourceGroup] = {}
        for spec in groups if groups is not None else default_groups():
            if spec.name in self._roots:
                raise ValueError(f"duplicate root group {spec.name!r}")
            self._roots[spec.name] = ResourceGroup(spec, None)
        if not self._roots:
            raise ValueError("a cluster needs at least one resource group")
        self._queries: dict[str, Query] = {}
        self._done: deque[Query] = deque()
        self._query_seq = 0
        self._observed: dict[str, NodeState] = {}
        # One refresh period back, so the first settle reads the initial workers at ``start``.
        self._last_refresh = self._now - node_refresh_seconds
        # QueryManagerStats' counters: started = reached RUNNING; completed = every query that ended,
        # finished or failed, rejected and queued ones included; failed = those of them that failed.
        self.submitted_queries = 0
        self.started_queries = 0
        self.completed_queries = 0
        self.failed_queries = 0
        self.killed_queries = 0
        self.rejected_queries = 0
        # QueryManagerStats.ConsumedCpuTimeSecs: each ended query adds its CPU time cut to whole seconds.
        self.consumed_cpu_seconds = 0
        for _ in range(workers):
            self.add_worker()
        # The initial workers are known to the coordinator from the start.
        self._last_refresh = self._now - node_refresh_seconds
        self._settle()

    # ------------------------------------------------------------------ time

    @property
    def now(self) -> float:
        return self._now

    def advance(self, now: float) -> None:
        """Move the model forward to ``now``, handling every event in between in order."""
        if now < self._now - _EPS:
            raise ValueError(f"time runs forward: model is at {self._now}, asked for {now}")
        self._settle()
        for _ in range(10_000_000):
            target = min(now, self._next_event())
            if target > self._now:
                self._progress(target - self._now)
                self._now = target
            self._settle()
            if self._now >= now:
                self._now = max(self._now, now)
                return
        raise RuntimeError("the model did not converge")

    def _at(self, now: float | None) -> None:
        if now is not None:
            self.advance(now)

    # ------------------------------------------------------------------ nodes

    def node(self, node_id: str) -> Node:
        if node_id == self.coordinator.node_id:
            return self.coordinator
        return self._workers[node_id]

    def workers(self, *, include_gone: bool = False) -> list[Node]:
        return [w for w in self._workers.values() if include_gone or w.alive]

    def nodes(self) -> list[Node]:
        """The coordinator and the workers still in the cluster."""
        return [self.coordinator, *self.workers()]

    def add_worker(
        self,
        now: float | None = None,
        *,
        node_id: str | None = None,
        version: int | None = None,
        memory_bytes: int | None = None,
        processors: int | None = None,
        speed: float | None = None,
    ) -> Node:
        """A new worker announces itself; the coordinator schedules on it after its next node refresh."""
        self._at(now)
        if node_id is None:
            while True:
                self._worker_seq += 1
                node_id = f"worker-{self._worker_seq}"
                if node_id not in self._workers:
                    break
        if node_id in self._workers or node_id == self.coordinator.node_id:
            raise ValueError(f"node {node_id!r} exists already")
        node = Node(
            node_id=node_id,
            version=self.version if version is None else version,
            coordinator=False,
            memory_bytes=self.worker_memory_bytes if memory_bytes is None else memory_bytes,
            processors=self.worker_processors if processors is None else processors,
            speed=self.worker_speed if speed is None else speed,
            started_at=self._now,
        )
        self._workers[node_id] = node
        self._settle()
        return node

    def remove_worker(self, node_id: str, now: float | None = None) -> list[Query]:
        """The worker disappears at once (pod deleted, OOM-killed): queries with tasks on it fail."""
        self._at(now)
        node = self._workers[node_id]
        if not node.alive:
            return []
        killed = self._leave(node)
        self._settle()
        return killed

    def state_names(self) -> tuple[str, ...]:
        """Values the node-state JSON enum of this version accepts."""
        if self.version < DRAINING_SINCE:
            return ("ACTIVE", "INACTIVE", "SHUTTING_DOWN")
        if self.version < NODE_MANAGER_RENAMED_IN:
            return ("ACTIVE", "INACTIVE", "DRAINING", "DRAINED", "SHUTTING_DOWN")
        return ("ACTIVE", "INACTIVE", "DRAINING", "DRAINED", "SHUTTING_DOWN", "INVALID", "GONE")

    def request_state(self, node_id: str, target: str, now: float | None = None) -> None:
        """``PUT /v1/info/state`` on one node; raises :class:`StateChangeRefused` as upstream answers."""
        self._at(now)
        node = self.node(node_id)
        if not node.alive:
            raise KeyError(f"node {node_id!r} has left the cluster")
        if target not in self.state_names():
            raise ValueError(f"{target!r} is not a node state of Trino {self.version}")
        if self.version >= DRAINING_SINCE:
            self._transition(node, target)
        else:
            self._transition_legacy(node, target)
        self._settle()

    def _transition(self, node: Node, target: str) -> None:
        current = node.state
        if current.value == target:
            return
        if target == "ACTIVE":
            if current in (NodeState.DRAINING, NodeState.DRAINED):
                node.state = NodeState.ACTIVE
                node._phase = None
                node._goal = None
                return
        elif target == "SHUTTING_DOWN":
            if node.coordinator:
                raise StateChangeRefused(500, "Cannot shutdown coordinator")
            if current is NodeState.DRAINED:
                node.state = NodeState.SHUTTING_DOWN
                self._leave(node)
                return
            node.state = NodeState.SHUTTING_DOWN
            self._begin(node, NodeState.SHUTTING_DOWN)
            return
        elif target == "DRAINING":
            if node.coordinator:
                raise StateChangeRefused(500, "Cannot drain coordinator")
            if current is NodeState.ACTIVE:
                node.state = NodeState.DRAINING
                self._begin(node, NodeState.DRAINED)
                return
        elif self.version >= INTERNAL_STATE_PUT_500_SINCE:
            raise StateChangeRefused(500, f"Cannot transition state to internal state {target}")
        raise StateChangeRefused(400, f"Invalid state transition to {target}")

    def _transition_legacy(self, node: Node, target: str) -> None:
        if target != "SHUTTING_DOWN":
            raise StateChangeRefused(400, f"Invalid state transition to {target}")
        if node.coordinator:
            raise StateChangeRefused(500, "Cannot shutdown coordinator")
        if node.state is NodeState.SHUTTING_DOWN:
            return
        node.state = NodeState.SHUTTING_DOWN
        self._begin(node, NodeState.SHUTTING_DOWN)

    def _begin(self, node: Node, goal: NodeState) -> None:
        node._goal = goal
        node._phase = _Phase.ANNOUNCE
        node._phase_until = self._now + self.grace_period

    def _leave(self, node: Node) -> list[Query]:
        node.gone_at = self._now
        node._phase = None
        node._goal = None
        killed: list[Query] = []
        for task in list(node.tasks):
            query = task.query
            if not query.state.is_done:
                query.killed = True
                self.killed_queries += 1
                self._fail(
                    query,
                    "REMOTE_HOST_GONE",
                    "INTERNAL_ERROR",
                    f"Node {node.node_id} is gone",
                )
                killed.append(query)
        node.tasks.clear()
        return killed

    # ---------------------------------------------------------- coordinator view

    def observed_state(self, node_id: str) -> NodeState | None:
        """The state the coordinator last read from a worker (None: it does not know the worker)."""
        return self._observed.get(node_id)

    def _schedulable(self) -> list[Node]:
        nodes = [
            self._workers[node_id]
            for node_id, state in self._observed.items()
            if state is NodeState.ACTIVE and self._workers[node_id].alive
        ]
        if self.include_coordinator:
            nodes.insert(0, self.coordinator)
        return nodes

    def active_worker_count(self) -> int:
        """Workers ``ClusterSizeMonitor`` counts: the ones the coordinator sees ACTIVE."""
        return len(self._schedulable())

    def node_counts(self) -> dict[NodeState, int]:
        """Node counts as the coordinator's node manager reports them (the coordinator itself included)."""
        counts = dict.fromkeys(NodeState, 0)
        counts[self.coordinator.state] += 1
        for node_id, state in self._observed.items():
            if self._workers[node_id].alive:
                counts[state] += 1
        if self.version >= NODE_MANAGER_RENAMED_IN:
            # 477+ (node/CoordinatorNodeManager.java): a node that announced itself is INACTIVE until the
            # coordinator's next read of its state; before, it is unknown until then (a real 476 agrees).
            counts[NodeState.INACTIVE] += sum(
                1 for w in self._workers.values() if w.alive and w.node_id not in self._observed
            )
        return counts

    def _memory_nodes(self) -> list[Node]:
        """Nodes ``ClusterMemoryManager`` sums: the coordinator (scheduling on it or not) and every worker
        the coordinator sees ACTIVE, DRAINING, DRAINED or SHUTTING_DOWN, until it has left (a real 476:
        tests/peers/TRINO_FACTS.md §8)."""
        counted = (NodeState.ACTIVE, NodeState.DRAINING, NodeState.DRAINED, NodeState.SHUTTING_DOWN)
        workers = [
            self._workers[node_id]
            for node_id, state in self._observed.items()
            if state in counted and self._workers[node_id].alive
        ]
        return [self.coordinator, *workers]

    def cluster_memory_bytes(self) -> int:
        return sum(node.memory_bytes for node in self._memory_nodes())

    def total_available_processors(self) -> int:
        return sum(node.processors for node in self._memory_nodes())

    # ----------------------------------------------------------- resource groups

    def group(self, group: str | Sequence[str]) -> ResourceGroup:
        key = _group_key(group)
        node = self._roots.get(key[0]) if key else None
        for name in key[1:]:
            if node is None:
                break
            node = node.children.get(name)
        if node is None:
            raise KeyError(f"no resource group {'.'.join(key)!r}")
        return node

    def find_group(self, group: str | Sequence[str]) -> ResourceGroup | None:
        try:
            return self.group(group)
        except KeyError:
            return None

    def created_group(self, group: str | Sequence[str]) -> ResourceGroup | None:
        """The group as ``/v1/resourceGroupState`` finds it: None until a query first selected it."""
        found = self.find_group(group)
        return found if found is not None and found.created else None

    def groups(self) -> list[ResourceGroup]:
        return [g for root in self._roots.values() for g in root.walk()]

    def root_groups(self) -> list[ResourceGroup]:
        return list(self._roots.values())

    # -------------------------------------------------------------------- queries

    def submit(
        self,
        group: str | Sequence[str],
        work_seconds: float,
        now: float | None = None,
        *,
        memory_bytes: int = 0,
        user: str = "sandbox",
        source: str = "queuescale-sandbox",
        text: str | None = None,
        blocked: bool = False,
    ) -> Query:
        """Submit a query to a leaf group; it starts, queues, or is rejected (FAILED) like upstream."""
        self._at(now)
        if work_seconds < 0 or memory_bytes < 0:
            raise ValueError("work and memory must not be negative")
        leaf = self.group(group)
        if not leaf.is_leaf:
            raise ValueError(f"Cannot add queries to {leaf.dotted}. It is not a leaf group.")
        self._query_seq += 1
        query = Query(
            query_id=self._query_id(),
            group_id=leaf.id,
            work_seconds=float(work_seconds),
            memory_bytes=memory_bytes,
            user=user,
            source=source,
            text=text if text is not None else f"SELECT sandbox_work({work_seconds:g})",
            created_at=self._now,
            sequence=self._query_seq,
            blocked=blocked,
        )
        self._queries[query.query_id] = query
        self.submitted_queries += 1
        memory = self.cluster_memory_bytes()
        path = leaf.path()
        for g in path:
            g.created = True
        can_queue = all(g.can_queue_more() for g in path)
        can_run = all(g.can_run_more(memory) for g in path)
        if not can_queue and not can_run:
            self.rejected_queries += 1
            self._finish_as_failed(
                query,
                "QUERY_QUEUE_FULL",
                "INSUFFICIENT_RESOURCES",
                f'Too many queued queries for "{leaf.dotted}"',
            )
        elif can_run:
            self._admit(query, leaf)
        else:
            leaf.queued.append(query)
        self._settle()
        return query

    def submit_many(
        self,
        group: str | Sequence[str],
        count: int,
        work_seconds: float,
        now: float | None = None,
        *,
        memory_bytes: int = 0,
        user: str = "sandbox",
        blocked: bool = False,
    ) -> list[Query]:
        """``count`` identical queries submitted at one instant (load set directly by a test)."""
        self._at(now)
        return [
            self.submit(group, work_seconds, memory_bytes=memory_bytes, user=user, blocked=blocked)
            for _ in range(count)
        ]

    def set_blocked(self, query_id: str, blocked: bool = True, now: float | None = None) -> None:
        """Mark a query fully blocked (waiting for memory or data): it makes no progress."""
        self._at(now)
        self._queries[query_id].blocked = blocked

    def query(self, query_id: str) -> Query:
        return self._queries[query_id]

    def queries(self, state: QueryState | None = None) -> list[Query]:
        """Queries the coordinator still tracks (finished ones expire like ``query.max-history``)."""
        return [q for q in self._queries.values() if state is None or q.state is state]

    def queued_queries(self) -> int:
        return sum(1 for q in self._queries.values() if q.state is QueryState.QUEUED)

    def running_queries(self) -> int:
        """``QueryManager.RunningQueries`` of this version: every RUNNING query, or before 430 those not
        fully blocked."""
        if self.version >= RUNNING_INCLUDES_BLOCKED_SINCE:
            return sum(1 for q in self._queries.values() if q.state is QueryState.RUNNING)
        return self.progressing_queries()

    def progressing_queries(self) -> int:
        """RUNNING and not fully blocked: ``QueryManager.ProgressingQueries`` (430 on), the Web UI's
        ``runningQueries``."""
        return sum(1 for q in self._queries.values() if q.state is QueryState.RUNNING and not q.blocked)

    def blocked_queries(self) -> int:
        return sum(1 for q in self._queries.values() if q.fully_blocked)

    def waiting_queries(self) -> int:
        return sum(1 for q in self._queries.values() if q.state is QueryState.WAITING_FOR_RESOURCES)

    def required_workers_gauge(self) -> int:
        """``ClusterSizeMonitor.RequiredWorkers``: the largest count queries wait for, 0 when none waits."""
        return self.required_workers if self.waiting_queries() else 0

    def reserved_memory(self) -> int:
        return sum(q.memory_bytes for q in self._queries.values() if q.state is QueryState.RUNNING)

    def running_drivers(self) -> int:
        return sum(node.running_tasks() for node in self.nodes())

    def _query_id(self) -> str:
        stamp = wall_time(self._now).strftime("%Y%m%d_%H%M%S")
        return f"{stamp}_{self._query_seq % 100000:05d}_{self.coordinator_id}"

    def _admit(self, query: Query, leaf: ResourceGroup) -> None:
        query.admitted_at = self._now
        leaf.running.append(query)
        query.state = QueryState.WAITING_FOR_RESOURCES
        self._try_start(query)

    def _try_start(self, query: Query) -> bool:
        nodes = self._schedulable()
        if len(nodes) < self.required_workers or not nodes:
            return False
        query.state = QueryState.RUNNING
        query.running_since = self._now
        self.started_queries += 1
        share = query.work_seconds / len(nodes)
        for node in nodes:
            task = Task(query=query, node_id=node.node_id, remaining=share)
            query.tasks.append(task)
            node.tasks.append(task)
        return True

    def _release(self, query: Query) -> None:
        leaf = self.group(query.group_id)
        if query in leaf.running:
            leaf.running.remove(query)
        elif query in leaf.queued:
            leaf.queued.remove(query)
        for task in query.tasks:
            node = self.node(task.node_id)
            if task in node.tasks:
                node.tasks.remove(task)

    def _fail(self, query: Query, name: str, error_type: str, message: str) -> None:
        self._release(query)
        self._finish_as_failed(query, name, error_type, message)

    def _finish_as_failed(self, query: Query, name: str, error_type: str, message: str) -> None:
        query.state = QueryState.FAILED
        query.ended_at = self._now
        query.error_name = name
        query.error_type = error_type
        query.error_message = message
        self.failed_queries += 1
        self._ended(query)

    def _ended(self, query: Query) -> None:
        self.completed_queries += 1
        # Upstream casts the seconds to a long, so a sub-second query adds nothing (a real 476: 0.98 s -> 0).
        self.consumed_cpu_seconds += math.floor(query.cpu_seconds + _EPS)
        self._done.append(query)

    # ------------------------------------------------------------------- dynamics

    def _progress(self, dt: float) -> None:
        for node in self.nodes():
            active = [task for task in node.tasks if not task.query.blocked and task.remaining > 0]
            if not active:
                continue
            rate = node.capacity / len(active)
            for task in active:
                task.remaining -= rate * dt
                if task.remaining <= _EPS:
                    task.remaining = 0.0

    def _next_event(self) -> float:
        events = [math.inf]
        for node in self.nodes():
            active = [task for task in node.tasks if not task.query.blocked and task.remaining > 0]
            if active:
                rate = node.capacity / len(active)
                if rate > 0:
                    soonest = min(task.remaining for task in active) / rate
                    events.append(self._now + max(soonest, _MIN_STEP))
            if node._phase in (_Phase.ANNOUNCE, _Phase.SETTLE):
                events.append(node._phase_until)
        if self.node_refresh_seconds > 0 and self._observed_is_stale():
            events.append(self._last_refresh + self.node_refresh_seconds)
        for query in self._queries.values():
            if query.state is QueryState.WAITING_FOR_RESOURCES and query.admitted_at is not None:
                events.append(query.admitted_at + self.required_workers_max_wait)
        return min(events)

    def _observed_is_stale(self) -> bool:
        alive = {w.node_id: w.state for w in self._workers.values() if w.alive}
        return alive != self._observed

    def _settle(self) -> None:
        for _ in range(100_000):
            changed = False
            interval = self.node_refresh_seconds
            if interval <= 0 or self._now >= self._last_refresh + interval - _EPS:
                if interval > 0:
                    # The coordinator polls on a fixed period, so a change waits for the next tick.
                    steps = math.floor((self._now - self._last_refresh) / interval + _EPS)
                    self._last_refresh += steps * interval
                fresh = {w.node_id: w.state for w in self._workers.values() if w.alive}
                changed |= fresh != self._observed
                self._observed = fresh
            changed |= self._finish_tasks()
            changed |= self._advance_phases()
            changed |= self._start_waiting()
            changed |= self._admit_queued()
            if not changed:
                self._expire_history()
                return
        raise RuntimeError("the model did not settle")

    def _finish_tasks(self) -> bool:
        changed = False
        for node in self.nodes():
            for task in [t for t in node.tasks if t.remaining <= 0 and not t.query.blocked]:
                node.tasks.remove(task)
                changed = True
        for query in self._queries.values():
            if query.state is QueryState.RUNNING and all(t.remaining <= 0 for t in query.tasks):
                if query.blocked and query.tasks:
                    continue
                self._release(query)
                query.state = QueryState.FINISHED
                query.ended_at = self._now
                self._ended(query)
                changed = True
        return changed

    def _advance_phases(self) -> bool:
        changed = False
        for node in self.workers():
            if node._phase is _Phase.ANNOUNCE and self._now >= node._phase_until - _EPS:
                if node._goal is NodeState.SHUTTING_DOWN and node.version in SHUTDOWN_SKIPS_TASKS:
                    # trinodb/trino#25690: the process exits here, whatever still runs on it.
                    self._leave(node)
                    changed = True
                    continue
                node._phase = _Phase.TASKS
                changed = True
            if node._phase is _Phase.TASKS and not node.tasks:
                node._phase = _Phase.SETTLE
                node._phase_until = self._now + self.grace_period
                changed = True
            if node._phase is _Phase.SETTLE and self._now >= node._phase_until - _EPS:
                if node._goal is NodeState.DRAINED:
                    node.state = NodeState.DRAINED
                    node._phase = None
                    node._goal = None
                else:
                    self._leave(node)
                changed = True
        return changed

    def _start_waiting(self) -> bool:
        changed = False
        for query in list(self._queries.values()):
            if query.state is not QueryState.WAITING_FOR_RESOURCES:
                continue
            if self._try_start(query):
                changed = True
            elif query.admitted_at is not None and (
                self._now >= query.admitted_at + self.required_workers_max_wait - _EPS
            ):
                self._fail(
                    query,
                    "GENERIC_INSUFFICIENT_RESOURCES",
                    "INSUFFICIENT_RESOURCES",
                    "Insufficient active worker nodes. Waited "
                    f"{format_duration(self.required_workers_max_wait)} for at least "
                    f"{self.required_workers} workers, but only {self.active_worker_count()} "
                    "workers are active",
                )
                changed = True
        return changed

    def _admit_queued(self) -> bool:
        changed = False
        memory = self.cluster_memory_bytes()
        while True:
            best: tuple[int, ResourceGroup] | None = None
            for group in self.groups():
                if not group.queued:
                    continue
                head = group.queued[0]
                if best is not None and head.sequence >= best[0]:
                    continue
                if all(g.can_run_more(memory) for g in group.path()):
                    best = (head.sequence, group)
            if best is None:
                return changed
            leaf = best[1]
            self._admit(leaf.queued.popleft(), leaf)
            changed = True

    def _expire_history(self) -> None:
        while len(self._done) > _MAX_HISTORY:
            oldest = self._done[0]
            if oldest.ended_at is not None and oldest.ended_at > self._now - _MIN_EXPIRE_AGE:
                return
            self._done.popleft()
            self._queries.pop(oldest.query_id, None)


_DURATION_UNITS = (
    ("ns", 1e-9),
    ("us", 1e-6),
    ("ms", 1e-3),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
    ("d", 86400.0),
)


def format_duration(seconds: float) -> str:
    """airlift ``Duration.toString()`` of the most succinct unit: ``"1.50m"``, ``"0.00ns"``."""
    unit, size = _DURATION_UNITS[0]
    for name, factor in _DURATION_UNITS:
        if seconds / factor < 0.9999:
            break
        unit, size = name, factor
    return f"{seconds / size:.2f}{unit}"


def format_data_size(size_bytes: float) -> str:
    """airlift ``DataSize.succinctBytes(n).toString()``: ``"12GB"``, ``"1.50GB"``, ``"0B"``."""
    unit, factor = "B", 1
    for name, scale in _SIZE_UNITS.items():
        if size_bytes / scale >= 1.0:
            unit, factor = name, scale
    value = size_bytes / factor
    if value == math.floor(value):
        return f"{int(value)}{unit}"
    return f"{value:.2f}{unit}"


# ------------------------------------------------------------------ moving load


@dataclass(frozen=True)
class Burst:
    """Extra arrivals per second during ``[start, start + duration)``."""

    start: float
    duration: float
    rate: float


@dataclass(frozen=True)
class Arrival:
    at: float
    work_seconds: float
    pattern: LoadPattern


@dataclass(frozen=True)
class LoadPattern:
    """Poisson arrivals into one leaf group at a rate that follows a sinusoid plus bursts.

    ``rate_at(t) = rate * (1 + amplitude * sin(2 pi t / period)) + active bursts``; work per query is
    exponential with mean ``mean_work_seconds`` (worker-seconds). Arrivals are drawn per whole second from a
    generator seeded by (seed, group, second), so they do not depend on how the caller slices time.
    """

    group: str
    rate: float
    amplitude: float = 0.0
    period_seconds: float = 600.0
    bursts: tuple[Burst, ...] = ()
    mean_work_seconds: float = 20.0
    memory_bytes: int = 0
    user: str = "load"
    seed: int = 0

    def rate_at(self, t: float) -> float:
        return self._rate(t, self.bursts)

    def _rate(self, t: float, bursts: Sequence[Burst]) -> float:
        wave = self.rate * (1.0 + self.amplitude * math.sin(2.0 * math.pi * t / self.period_seconds))
        extra = sum(b.rate for b in bursts if b.start <= t < b.start + b.duration)
        return max(0.0, wave) + extra

    def arrivals(self, t0: float, t1: float) -> list[Arrival]:
        """Arrivals with ``t0 <= at < t1``, in time order (thinning under each second's peak rate)."""
        if t1 <= t0:
            return []
        out: list[Arrival] = []
        for second in range(math.floor(t0), math.ceil(t1)):
            bursts = [b for b in self.bursts if b.start < second + 1 and b.start + b.duration > second]
            peak = self.rate * (1.0 + abs(self.amplitude)) + sum(max(0.0, b.rate) for b in bursts)
            if peak <= 0:
                continue
            rng = random.Random(f"{self.seed}:{self.group}:{second}")
            t = float(second)
            while True:
                t += rng.expovariate(peak)
                if t >= second + 1:
                    break
                keep = rng.random() * peak < self._rate(t, bursts)
                work = rng.expovariate(1.0 / self.mean_work_seconds) if self.mean_work_seconds > 0 else 0.0
                if keep and t0 <= t < t1:
                    out.append(Arrival(at=t, work_seconds=work, pattern=self))
        return out


def drive_load(cluster: TrinoCluster, patterns: Sequence[LoadPattern], t0: float, t1: float) -> list[Query]:
    """Submit every pattern's arrivals in ``[t0, t1)`` at their own instants; returns the queries."""
    arrivals = sorted((a for p in patterns for a in p.arrivals(t0, t1)), key=lambda a: a.at)
    submitted = []
    for arrival in arrivals:
        submitted.append(
            cluster.submit(
                arrival.pattern.group,
                arrival.work_seconds,
                max(arrival.at, cluster.now),
                memory_bytes=arrival.pattern.memory_bytes,
                user=arrival.pattern.user,
            )
        )
    return submitted


def demo_cluster(version: int = 478, *, seed: int = 0) -> TrinoCluster:
    """Two workers, the default groups, short grace periods: lively enough for ``queuescale demo``."""
    return TrinoCluster(
        version,
        workers=2,
        grace_period=5.0,
        node_refresh_seconds=2.0,
        required_workers=1,
        seed=seed,
    )


def demo_load(seed: int = 0, *, hours: int = 24) -> list[LoadPattern]:
    """Ad-hoc load on a 10-minute wave whose crest needs about three workers and whose trough fits in one,
    plus a burst of ETL queries every 10 minutes."""
    return [
        LoadPattern(
            "global.adhoc", rate=0.3, amplitude=0.8, period_seconds=600.0, mean_work_seconds=15.0, seed=seed
        ),
        LoadPattern(
            "global.etl",
            rate=0.01,
            bursts=tuple(Burst(start=300.0 + 600.0 * k, duration=20.0, rate=0.4) for k in range(hours * 6)),
            mean_work_seconds=40.0,
            seed=seed + 1,
        ),
    ]
