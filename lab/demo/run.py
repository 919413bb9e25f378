"""One live run of the demo: the sandbox cluster under the trace, the real adapter, the real controller.

:func:`run_demo` starts, in order: the sandbox cluster (Kubernetes API, Trino coordinator and workers,
Spark master and drivers, all on loopback; :mod:`lab.cluster`), the ScalingPolicies as
custom resources, the adapter polling the coordinator and the master (plain HTTP on loopback), and the
controller reading the adapter's ``external.metrics.k8s.io`` over HTTP and acting through the API. Then it
drives the load until the trace segment ends, ``duration`` wall seconds pass or ``stop`` is set, while
three loops run beside the driver: the ground-truth check (:mod:`lab.demo.truth`) four times a
second, the live view once a second, and the sampling of the series the report plots.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from adapter.kube import KubeSettings
from adapter.runtime import start_adapter
from adapter.settings import Settings, load_settings
from autoscaler.controller.runtime import RunningController, running_controller
from autoscaler.controller.settings import (
    ControllerSettings,
    HealthSettings,
    LeaderElectionSettings,
    PolicySettings,
    ReadingSettings,
    ReconcileSettings,
)
from autoscaler.sim.pool_scenario import pool_config_for
from autoscaler.sim.spark import PoolConfig
from core.errors import ConfigError
from lab.cluster import SandboxCluster, running_cluster
from lab.demo.policies import (
    DEFAULT_SPARK_POLICY,
    DEFAULT_TRINO_POLICY,
    Adapted,
    for_sandbox,
    for_wall_clock,
    read_policy,
)
from lab.demo.scenario import (
    DEFAULT_TRACE,
    DemoLoad,
    LoadSettings,
    TimeScale,
    build_load,
    read_segment,
)
from lab.demo.truth import CHECKED_METRICS, CountedTrinoCluster, TruthLedger, judge, parse_served
from lab.demo.view import ViewState, render_block, render_line
from lab.pod_workers import Workload
from lab.sandbox.kube import StatusError
from lab.sandbox.kube_types import DEPLOYMENTS, PODS, STATEFULSETS
from lab.sandbox.spark_model import (
    DECOMMISSIONED,
    WAITING,
    AppSpec,
    DynamicAllocation,
    SparkPool,
    StageSpec,
)
from lab.sandbox.trino_model import GiB, NodeState, Query, QueryState, ResourceGroupSpec

__all__ = ["DemoOptions", "LiveRun", "Sample", "Urls", "run_demo"]

TRINO_CLUSTER = "sandbox"
SPARK_POOL = "sandbox-spark"
TRINO_GROUP = "global"
WORKER_MEMORY_BYTES = 16 * GiB
#: The simulator's controller period, in cluster seconds; the live controller passes as often.
CONTROLLER_PERIOD = 15.0
#: Trino's shutdown.grace-period and the coordinator's node refresh, in cluster seconds.
TRINO_GRACE_SECONDS = 5.0
TRINO_NODE_REFRESH_SECONDS = 2.0
_BASE = "/apis/external.metrics.k8s.io/v1beta1"


@dataclass(frozen=True)
class DemoOptions:
    trace: Path = DEFAULT_TRACE
    scale: TimeScale = field(default_factory=TimeScale)
    trino_policy: Path = DEFAULT_TRINO_POLICY
    spark_policy: Path = DEFAULT_SPARK_POLICY
    duration: float | None = None
    """Wall seconds to run; None: the whole busy day at ``scale.speed``."""
    ui: bool = True
    seed: int = 0
    load: LoadSettings = field(default_factory=LoadSettings)
    poll_seconds: float = 0.5
    """The adapter's poll interval, wall seconds."""
    tick_seconds: float = 0.05
    sample_seconds: float = 5.0
    """Cluster seconds between two points of the recorded series."""
    view_seconds: float | None = None
    """Wall seconds between two redraws (default 1 with the view, 3 for plain lines)."""


@dataclass(frozen=True)
class Urls:
    kube: str
    adapter: str
    controller_metrics: str
    coordinator: str
    spark_master: str
    trino_namespace: str
    spark_namespace: str


@dataclass(frozen=True, slots=True)
class Sample:
    """The cluster at cluster second ``t`` (replicas from the API, the rest from the models)."""

    t: float
    arrived: int
    queued: int
    running: int
    head_wait: float
    desired: int
    current: int
    billed: int
    draining: int
    spark_remaining: int
    spark_waiting_apps: int
    spark_active_apps: int
    spark_desired: int
    spark_current: int
    spark_billed: int
    spark_decommissioning: int
    spark_busy_cores: int


@dataclass
class LiveRun:
    """What the live run did, for the view and the report."""

    options: DemoOptions
    load: DemoLoad
    trino_policy: Adapted
    spark_policy: Adapted
    trino_live: Adapted
    spark_live: Adapted
    urls: Urls | None = None
    samples: list[Sample] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)
    apps_submitted: int = 0
    cluster_time: float = 0.0
    wall_seconds: float = 0.0
    interrupted: bool = False
    truth: TruthLedger = field(default_factory=TruthLedger)
    trino_drains_started: set[str] = field(default_factory=set)
    trino_drained: set[str] = field(default_factory=set)
    trino_removals: list[dict[str, Any]] = field(default_factory=list)
    trino_joined: int = 0
    killed_queries: int = 0
    spark_decommissioned: set[str] = field(default_factory=set)
    spark_departed: int = 0
    spark_removals: list[dict[str, Any]] = field(default_factory=list)
    spark_joined: int = 0
    spark_tasks_lost: int = 0
    apps_completed: int = 0
    counters: list[dict[str, Any]] = field(default_factory=list)
    """The controller's counters: ``{"name", "labels", "value"}`` each."""
    reasons: dict[str, str] = field(default_factory=dict)
    decided: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def trino_key(self) -> str:
        meta = self.trino_policy.policy.metadata
        return f"{meta.namespace}/{meta.name}"

    @property
    def spark_key(self) -> str:
        meta = self.spark_policy.policy.metadata
        return f"{meta.namespace}/{meta.name}"

    def counter(self, name: str, policy_key: str, **labels: str) -> float:
        """A controller counter of one policy, summed over the label values not given."""
        ns, pol = policy_key.split("/", 1)
        want = {"namespace": ns, "policy": pol, **labels}
        return sum(
            float(c["value"])
            for c in self.counters
            if c["name"] == name and all(c["labels"].get(k) == v for k, v in want.items())
        )


def _workload(adapted: Adapted, replicas: int, port: int | None) -> Workload:
    spec = adapted.policy.spec
    ref = spec.target.workload
    assert ref is not None
    return Workload(
        namespace=adapted.policy.metadata.namespace or "default",
        name=ref.name,
        kind=ref.kind,
        replicas=replicas,
        startup_seconds=float(spec.target.startup_seconds),
        port=port,
    )


def _adapter_settings(cluster: SandboxCluster, poll: float) -> Settings:
    overrides = {
        "server": {"listen": "127.0.0.1:0", "insecure_http": True},
        "auth": {"mode": "none"},
        "log_level": "warning",
        "trino": [
            {
                "name": TRINO_CLUSTER,
                "endpoint": {"url": cluster.trino.coordinator_url},
                "resource_groups": [TRINO_GROUP],
                "poll_interval_seconds": poll,
            }
        ],
        "spark": [
            {
                "name": SPARK_POOL,
                "master": {"url": cluster.spark.master_url},
                "reverse_proxy": True,
                "poll_interval_seconds": poll,
            }
        ],
    }
    return load_settings(None, overrides)


def _create_policy(cluster: SandboxCluster, adapted: Adapted) -> None:
    rt = cluster.kube.store.types[("queuescale.io", "v1alpha1", "scalingpolicies")]
    namespace = adapted.policy.metadata.namespace or "default"
    try:
        cluster.kube.create(rt, namespace, adapted.doc)
    except StatusError as exc:
        raise ConfigError(
            f"the sandbox refused ScalingPolicy {namespace}/{adapted.policy.metadata.name}: {exc}"
        ) from exc


def _replicas(cluster: SandboxCluster, workload: Workload) -> int:
    key = DEPLOYMENTS.key if workload.kind == "Deployment" else STATEFULSETS.key
    obj = cluster.kube.store.get(key, workload.namespace, workload.name)
    return int(((obj or {}).get("spec") or {}).get("replicas") or 0)


def _pods(cluster: SandboxCluster, workload: Workload) -> list[dict[str, Any]]:
    return [p for p in cluster.kube.store.items(PODS.key, workload.namespace) if workload.owns(p)]


def _sample(run: LiveRun, cluster: SandboxCluster, t: float) -> Sample:
    model = cluster.trino.cluster
    assert isinstance(model, CountedTrinoCluster)
    waiting = model.queries(QueryState.QUEUED) + model.queries(QueryState.WAITING_FOR_RESOURCES)
    head = max((t - q.created_at for q in waiting), default=0.0)
    alive = model.workers()
    draining = sum(1 for w in alive if w.state is not NodeState.ACTIVE)
    trino_pods = _pods(cluster, cluster.trino_workload)
    pool = cluster.spark.pool
    active = pool.active_apps()
    spark_pods = _pods(cluster, cluster.spark_workload)
    decommissioning = sum(1 for w in pool.workers if w.state == DECOMMISSIONED)
    return Sample(
        t=t,
        arrived=len(run.queries),
        queued=model.model_queued(),
        running=model.model_running(),
        head_wait=max(0.0, head),
        desired=_replicas(cluster, cluster.trino_workload),
        current=max(0, len(trino_pods) - draining),
        billed=len(trino_pods),
        draining=draining,
        spark_remaining=sum(a.remaining_tasks for a in active),
        spark_waiting_apps=sum(1 for a in active if a.state == WAITING),
        spark_active_apps=len(active),
        spark_desired=_replicas(cluster, cluster.spark_workload),
        spark_current=max(0, len(spark_pods) - decommissioning),
        spark_billed=len(spark_pods),
        spark_decommissioning=decommissioning,
        spark_busy_cores=sum(w.cores_used for w in pool.alive_workers()),
    )


def _note_states(run: LiveRun, cluster: SandboxCluster) -> None:
    for worker in cluster.trino.cluster.workers():
        if worker.state in (NodeState.DRAINING, NodeState.SHUTTING_DOWN):
            run.trino_drains_started.add(worker.node_id)
        elif worker.state is NodeState.DRAINED:
            run.trino_drains_started.add(worker.node_id)
            run.trino_drained.add(worker.node_id)
    pool = cluster.spark.pool
    for spark_worker in pool.workers:
        if spark_worker.state == DECOMMISSIONED:
            run.spark_decommissioned.add(spark_worker.worker_id)
    # A decommissioned worker with nothing left leaves the pool within the same model step.
    run.spark_decommissioned.update(w.worker_id for w in pool.departed_workers)


def _collect(run: LiveRun, cluster: SandboxCluster) -> None:
    """Facts the sandbox keeps about removals and losses, copied into the run."""
    model = cluster.trino.cluster
    run.killed_queries = model.killed_queries
    run.trino_joined = len(cluster.trino_pods.joined)
    run.trino_removals = [
        {"pod": r.pod, "at": round(r.at, 3), "state": r.state, "tasks": r.tasks, "killed": r.killed}
        for r in cluster.trino_pods.removals
    ]
    pool = cluster.spark.pool
    run.spark_joined = len(cluster.spark_pods.joined)
    run.spark_departed = len(pool.departed_workers)
    run.spark_removals = [
        {
            "pod": r.pod,
            "at": round(r.at, 3),
            "host": r.host,
            "state": r.state,
            "executors": r.executors,
            "tasks_lost": r.tasks_lost,
        }
        for r in cluster.spark_pods.removals
    ]
    run.spark_tasks_lost = sum(r.tasks_lost for r in cluster.spark_pods.removals)
    run.apps_completed = len(pool.completed_apps())


def _read_controller(run: LiveRun, ctrl: RunningController) -> None:
    text = ctrl.metrics.exposition().decode()
    run.counters = [
        {"name": s.name, "labels": dict(s.labels), "value": float(s.value)}
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.endswith("_total")
    ]
    for (ns, name), report in ctrl.controller.last.items():
        key = f"{ns}/{name}"
        if report.decision is not None:
            run.reasons[key] = "; ".join(report.decision.reasons) or report.decision.hpa_reason
            run.decided[key] = (report.decision.current, report.decision.replicas)
        elif report.skipped:
            run.reasons[key] = report.skipped


class _Driver:
    """Submits the load at its cluster times and keeps the models on the clock."""

    def __init__(self, run: LiveRun, cluster: SandboxCluster, memory_bytes: int, pool_config: PoolConfig):
        self.run = run
        self.cluster = cluster
        self.memory_bytes = memory_bytes
        self.pool_config = pool_config
        self.next_query = 0
        self.next_app = 0
        self.next_sample = 0.0

    def _submit_queries(self, until: float) -> None:
        load = self.run.load.trino
        model = self.cluster.trino.cluster
        while self.next_query < load.count and load.arrivals[self.next_query] < until:
            i = self.next_query
            query = model.submit(
                TRINO_GROUP,
                float(load.service[i]),
                max(float(load.arrivals[i]), model.now),
                memory_bytes=self.memory_bytes,
                user="demo",
                source="queuescale-demo",
            )
            self.run.queries.append(query)
            self.next_query += 1

    def _submit_apps(self, until: float) -> None:
        load = self.run.load.spark
        pool = self.cluster.spark.pool
        allocation = self.pool_config.allocation
        while self.next_app < load.app_count and load.app_arrivals[self.next_app] < until:
            a = self.next_app
            pool.advance(max(float(load.app_arrivals[a]), pool.now))
            stages = []
            for s in range(int(load.app_stages[a]), int(load.app_stages[a + 1])):
                lo, hi = int(load.stage_tasks[s]), int(load.stage_tasks[s + 1])
                stages.append(StageSpec(tasks=hi - lo, task_seconds=float(load.task_seconds[lo:hi].mean())))
            spec = AppSpec(
                name=f"etl-{a:04d}",
                executor_cores=self.pool_config.executor_cores,
                dynamic_allocation=DynamicAllocation(
                    min_executors=allocation.min_executors,
                    max_executors=allocation.max_executors,
                    executor_idle_timeout_seconds=allocation.executor_idle_timeout_s,
                ),
                finish_when_idle=True,
            )
            pool.submit(spec, [stages])
            self.run.apps_submitted += 1
            self.next_app += 1

    async def tick(self, until: float) -> None:
        self._submit_queries(until)
        self._submit_apps(until)
        await self.cluster.advance(until)
        _note_states(self.run, self.cluster)
        while self.next_sample <= until:
            self.run.samples.append(_sample(self.run, self.cluster, self.next_sample))
            self.next_sample += self.run.options.sample_seconds


async def _truth_loop(
    run: LiveRun, adapter_url: str, model: CountedTrinoCluster, stop: asyncio.Event
) -> None:
    selector = f"cluster={TRINO_CLUSTER}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while not stop.is_set():
            for metric in CHECKED_METRICS:
                url = f"{adapter_url}{_BASE}/namespaces/default/{metric}"
                try:
                    async with session.get(url, params={"labelSelector": selector}) as resp:
                        status = resp.status
                        doc = await resp.json(content_type=None)
                    read_at = time.time()
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    run.truth.unavailable += 1
                    continue
                if status != 200:
                    run.truth.unavailable += 1
                    continue
                served, stamp = parse_served(doc)
                run.truth.add(judge(metric, served, stamp, read_at, tuple(model.reported[metric])))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)


def _view_state(run: LiveRun, cluster: SandboxCluster, wall: float, wall_total: float) -> ViewState:
    last = run.samples[-1] if run.samples else None
    return ViewState(
        trace=run.options.trace.name,
        trace_epoch=run.load.segment.epoch_start,
        trace_seconds=run.load.scale.trace_seconds(cluster.clock.now()),
        trace_span=run.load.segment.span,
        wall=wall,
        wall_total=wall_total,
        cluster_seconds=cluster.clock.now(),
        sample=last,
        done=cluster.trino.cluster.completed_queries,
        killed=cluster.trino.cluster.killed_queries,
        trino_key=run.trino_key,
        spark_key=run.spark_key,
        reasons=dict(run.reasons),
        decided=dict(run.decided),
        drains_started=int(run.counter("queuescale_controller_drains_started_total", run.trino_key)),
        drains_finished=int(run.counter("queuescale_controller_drains_finished_total", run.trino_key)),
        scale_ups=int(
            run.counter("queuescale_controller_scale_actions_total", run.trino_key, direction="up")
        ),
        scale_downs=int(
            run.counter("queuescale_controller_scale_actions_total", run.trino_key, direction="down")
        ),
        spark_decommissions=int(run.counter("queuescale_controller_drains_started_total", run.spark_key)),
        spark_decommissions_finished=int(
            run.counter("queuescale_controller_drains_finished_total", run.spark_key)
        ),
        spark_scale_ups=int(
            run.counter("queuescale_controller_scale_actions_total", run.spark_key, direction="up")
        ),
        spark_tasks_lost=sum(r.tasks_lost for r in cluster.spark_pods.removals),
        apps_done=len(cluster.spark.pool.completed_apps()),
        truth_checks=run.truth.checks,
        truth_mismatches=run.truth.mismatch_count,
    )


async def _view_loop(
    run: LiveRun,
    cluster: SandboxCluster,
    ctrl: RunningController,
    stream: TextIO,
    stop: asyncio.Event,
    begun: float,
    wall_total: float,
) -> None:
    every = run.options.view_seconds or (1.0 if run.options.ui else 3.0)
    drawn = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        _read_controller(run, ctrl)
        state = _view_state(run, cluster, time.monotonic() - begun, wall_total)
        if run.options.ui:
            # A wrapped line would throw off the cursor-up count of the next redraw.
            width = max(20, shutil.get_terminal_size().columns - 1)
            lines = [line[:width] for line in render_block(state)]
            if drawn:
                stream.write(f"\x1b[{drawn}F\x1b[J")
            stream.write("\n".join(lines) + "\n")
            drawn = len(lines)
        else:
            stream.write(render_line(state) + "\n")
        stream.flush()


async def _wait_ready(cluster: SandboxCluster, trino: int, spark: int, stop: asyncio.Event) -> None:
    """Until the initial pods' workers have joined (bounded): the load starts on a cluster of that size."""
    deadline = time.monotonic() + 30.0
    while not stop.is_set() and time.monotonic() < deadline:
        if len(cluster.trino_pods.joined) >= trino and len(cluster.spark_pods.joined) >= spark:
            return
        await asyncio.sleep(0.05)


@dataclass
class _Setup:
    """What the run is built from, checked before anything starts."""

    load: DemoLoad
    trino_doc: dict[str, Any]
    spark_doc: dict[str, Any]
    model: CountedTrinoCluster
    pool: SparkPool
    pool_config: PoolConfig
    memory_bytes: int
    trino_workload: Workload
    spark_workload: Workload


def _setup(options: DemoOptions) -> _Setup:
    try:
        segment = read_segment(options.trace)
    except (OSError, ValueError, IndexError) as exc:
        raise ConfigError(f"{options.trace}: cannot read the trace: {exc}") from exc
    load = build_load(segment, options.scale, seed=options.seed, settings=options.load)
    trino_doc = read_policy(options.trino_policy, "TrinoWorkers")
    spark_doc = read_policy(options.spark_policy, "SparkWorkerPool")
    # The sandbox's URLs are known only once it runs; adapting with a stand-in URL validates the rest now.
    trino = for_sandbox(
        trino_doc, name=TRINO_CLUSTER, url="http://127.0.0.1:1", where=str(options.trino_policy)
    )
    spark = for_sandbox(spark_doc, name=SPARK_POOL, url="http://127.0.0.1:1", where=str(options.spark_policy))
    trino_spec = trino.policy.spec
    trino_target = trino_spec.target.trino
    spark_target = spark.policy.spec.target.spark
    assert trino_target is not None
    assert spark_target is not None
    pool_config = pool_config_for(spark.policy)
    slots = trino_target.slots_per_worker
    model = CountedTrinoCluster(
        trino_target.version,
        workers=0,
        groups=[ResourceGroupSpec(TRINO_GROUP, hard_concurrency_limit=100_000, max_queued=1_000_000)],
        grace_period=TRINO_GRACE_SECONDS,
        node_refresh_seconds=TRINO_NODE_REFRESH_SECONDS,
        required_workers=1,
        worker_memory_bytes=WORKER_MEMORY_BYTES,
        worker_processors=slots,
        seed=options.seed,
    )
    pool = SparkPool(
        name=SPARK_POOL,
        decommission_enabled=spark_target.decommission,
        executor_start_seconds=pool_config.executor_startup_seconds,
        epoch=segment.epoch_start,
    )
    return _Setup(
        load=load,
        trino_doc=trino_doc,
        spark_doc=spark_doc,
        model=model,
        pool=pool,
        pool_config=pool_config,
        # Memory admits exactly `slots` queries per active worker (the group's softMemoryLimit is 100 % of
        # the workers' memory), so queries queue for want of workers, not at a concurrency limit.
        memory_bytes=WORKER_MEMORY_BYTES // slots + 1,
        trino_workload=_workload(trino, max(1, trino_spec.min_replicas), port=8080),
        spark_workload=_workload(spark, max(1, spark.policy.spec.min_replicas), port=None),
    )


async def run_demo(
    options: DemoOptions,
    stop: asyncio.Event,
    stream: TextIO,
    *,
    on_urls: Callable[[Urls], None] | None = None,
) -> LiveRun:
    """The live run; returns when the trace segment or ``duration`` ends or ``stop`` is set."""
    setup = _setup(options)
    speed = options.scale.cluster_speed
    async with running_cluster(
        setup.model,
        setup.pool,
        speed=speed,
        trino_workload=setup.trino_workload,
        spark_workload=setup.spark_workload,
        spark_cores_per_worker=setup.pool_config.cores_per_worker,
        seed=options.seed,
    ) as cluster:
        trino_policy = for_sandbox(
            setup.trino_doc,
            name=TRINO_CLUSTER,
            url=cluster.trino.coordinator_url,
            where=str(options.trino_policy),
        )
        spark_policy = for_sandbox(
            setup.spark_doc, name=SPARK_POOL, url=cluster.spark_master_url, where=str(options.spark_policy)
        )
        trino_live = for_wall_clock(trino_policy, speed, where=str(options.trino_policy))
        spark_live = for_wall_clock(spark_policy, speed, where=str(options.spark_policy))
        run = LiveRun(options, setup.load, trino_policy, spark_policy, trino_live, spark_live)
        _create_policy(cluster, trino_live)
        _create_policy(cluster, spark_live)
        async with start_adapter(_adapter_settings(cluster, options.poll_seconds)) as adapter:
            controller_stop = asyncio.Event()
            controller_settings = ControllerSettings(
                policies=PolicySettings(sources=["crd"]),
                kube=KubeSettings(host=cluster.kube_url),
                readings=ReadingSettings(adapter_url=adapter.url),
                health=HealthSettings(listen="127.0.0.1:0"),
                reconcile=ReconcileSettings(period_seconds=CONTROLLER_PERIOD / speed),
                leader_election=LeaderElectionSettings(identity="queuescale-demo"),
            )
            async with running_controller(controller_settings, controller_stop) as ctrl:
                run.urls = Urls(
                    kube=cluster.kube_url,
                    adapter=adapter.url,
                    controller_metrics=ctrl.metrics_url or "",
                    coordinator=cluster.trino.coordinator_url,
                    spark_master=cluster.spark_master_url,
                    trino_namespace=setup.trino_workload.namespace,
                    spark_namespace=setup.spark_workload.namespace,
                )
                if on_urls is not None:
                    on_urls(run.urls)
                await _wait_ready(cluster, setup.trino_workload.replicas, setup.spark_workload.replicas, stop)
                await _drive(run, cluster, ctrl, setup, stop, stream)
            _collect(run, cluster)
    return run


async def _drive(
    run: LiveRun,
    cluster: SandboxCluster,
    ctrl: RunningController,
    setup: _Setup,
    stop: asyncio.Event,
    stream: TextIO,
) -> None:
    options = run.options
    scale = options.scale
    span = run.load.cluster_span
    wall_total = scale.wall_seconds(span) if options.duration is None else options.duration
    # Past the end of the segment no more load arrives: a longer run shows the cluster shrinking.
    end = scale.cluster_seconds(wall_total)
    driver = _Driver(run, cluster, setup.memory_bytes, setup.pool_config)
    cluster.clock.start()
    begun = time.monotonic()
    side_stop = asyncio.Event()
    assert run.urls is not None
    side = [
        asyncio.create_task(_truth_loop(run, run.urls.adapter, setup.model, side_stop), name="demo-truth"),
        asyncio.create_task(
            _view_loop(run, cluster, ctrl, stream, side_stop, begun, wall_total), name="demo-view"
        ),
    ]
    try:
        while not stop.is_set():
            now = min(cluster.clock.now(), end)
            await driver.tick(now)
            run.cluster_time = now
            if now >= end:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), options.tick_seconds)
        run.interrupted = stop.is_set() and run.cluster_time < end - 1e-9
    finally:
        side_stop.set()
        for task in side:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        run.wall_seconds = time.monotonic() - begun
        _read_controller(run, ctrl)
        _collect(run, cluster)
