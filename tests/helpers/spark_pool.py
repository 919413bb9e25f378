"""Test worlds for the Spark pool actuator: a StatefulSet in the Kubernetes API sandbox whose pods stand for
Spark standalone workers, emulated (:class:`EmulatedWorld`) or real processes from the pip package
(:class:`RealCluster`), and the controller's pipeline on a real Spark source (:class:`Pipeline`).

Pods get their worker's host as pod IP: the worker's ``--host`` is the pod IP, the matching rule of
:mod:`autoscaler.controller.targets.spark_pool.plan`. Real workers need distinct bindable hosts (the master
decommissions by host), so each pod gets its own loopback address ``127.0.0.<base + ordinal>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_validate
from aiohttp import web

from adapter.samples import Collection
from adapter.sources.spark import SparkSource
from adapter.store import SampleStore
from autoscaler.controller.actuator import Outcome, TargetState
from autoscaler.controller.kube_ops import KubeOps
from autoscaler.controller.observe import observe
from autoscaler.controller.readings import StoreReader
from autoscaler.controller.targets.spark_pool.actuator import SparkPoolActuator
from autoscaler.controller.targets.spark_pool.plan import ordinal_of
from autoscaler.decision.engine import Decision, EngineState, decide
from autoscaler.policy.models import ScalingPolicy
from core.catalog import DEFAULT_CATALOG
from lab.pod_workers import join_spark_worker, live_spark_worker, point_pod_at
from lab.sandbox.kube import KubeSandbox, client_for
from lab.sandbox.kube_types import STATEFULSETS
from lab.sandbox.serve import Served, serve
from lab.sandbox.spark_http import SparkSandbox, master_json
from lab.sandbox.spark_model import SparkPool
from tests.helpers.spark import free_port

NAMESPACE = "spark"
SET = "spark-worker"
K8S_VERSION = "1.30.0"
Obj = dict[str, Any]


def validate_written(written: dict[str, object]) -> None:
    """Every object or patch the actuator wrote, as the full object the API server would then hold."""
    for key, body in written.items():
        assert isinstance(body, dict)
        if key.startswith("pods/"):
            meta = body["metadata"]
            # A merge patch removes an annotation with null; the stored object then lacks it.
            annotations = {k: v for k, v in meta["annotations"].items() if v is not None}
            doc = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": key.split("/")[1], "namespace": NAMESPACE, "annotations": annotations},
            }
        else:
            doc = body
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def pool_policy(
    *,
    master_url: str,
    decommission: bool,
    max_replicas: int = 2,
    timeout_seconds: int = 600,
    on_timeout: str = "Abort",
    backlog_seconds: int | None = None,
) -> ScalingPolicy:
    """A SparkWorkerPool policy on 1-core workers that follows the backlog without delay."""
    return ScalingPolicy.model_validate(
        {
            "apiVersion": "queuescale.io/v1alpha1",
            "kind": "ScalingPolicy",
            "metadata": {"name": "pool", "namespace": NAMESPACE},
            "spec": {
                "target": {
                    "kind": "SparkWorkerPool",
                    "workload": {"kind": "StatefulSet", "name": SET},
                    "spark": {
                        "pool": "etl",
                        "masterUrl": master_url,
                        "coresPerWorker": 1,
                        "executorCores": 1,
                        "decommission": decommission,
                    },
                },
                "minReplicas": 1,
                "maxReplicas": max_replicas,
                "metrics": [
                    {
                        "type": "SparkExecutors",
                        "sparkExecutors": {}
                        if backlog_seconds is None
                        else {"backlogSeconds": backlog_seconds},
                    }
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
                "drain": {
                    "gracePeriodSeconds": 0,
                    "timeoutSeconds": timeout_seconds,
                    "onTimeout": on_timeout,
                },
            },
        }
    )


def statefulset(replicas: int) -> Obj:
    labels = {"app": SET}
    return {
        "metadata": {"name": SET},
        "spec": {
            "replicas": replicas,
            "serviceName": SET,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "worker", "image": "apache/spark:4.0.0"}]},
            },
        },
    }


def set_pod_ip(sandbox: KubeSandbox, name: str, ip: str) -> None:
    """Give a pod the address its stand-in process listens on (the kubelet's part, in the sandbox)."""
    point_pod_at(sandbox, NAMESPACE, name, pod_ip=ip, through_api=False)


@dataclass(frozen=True)
class Removal:
    """What ran on a pod's worker when the pod went away."""

    pod: str
    host: str
    state: str
    executors: int


@dataclass
class Pass:
    now: float
    target: TargetState
    decision: Decision
    outcome: Outcome


@dataclass
class Pipeline:
    """The controller's pass for one policy: Spark source → sample cache → observe → engine → actuator."""

    policy: ScalingPolicy
    source: SparkSource
    actuator: SparkPoolActuator
    store: SampleStore = field(default_factory=lambda: SampleStore(DEFAULT_CATALOG))
    engine: EngineState = field(default_factory=EngineState)
    passes: list[Pass] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.store.register(
            "spark",
            identity=self.source.identity(),
            metrics=self.source.served_metrics(),
            max_age=3600.0,
        )

    async def step(self, now: float) -> Pass:
        target = await self.actuator.observe(now)
        samples = await self.source.collect(now)
        self.store.put(Collection("spark", now, tuple(samples)))
        observed = await observe(self.policy, StoreReader(self.store), now, target.replicas, target.ready)
        decision, self.engine = decide(self.policy, observed.observation, self.engine)
        outcome = await self.actuator.apply(decision.replicas, now)
        done = Pass(now, target, decision, outcome)
        self.passes.append(done)
        return done

    def written_replicas(self) -> list[int]:
        return [p.outcome.replicas for p in self.passes if p.outcome.replicas is not None]


@contextlib.asynccontextmanager
async def kube_world(
    replicas: int,
    on_added: Callable[[Obj], Any],
    on_removed: Callable[[Obj], Any],
    bind: Callable[[KubeSandbox], None] | None = None,
) -> AsyncIterator[tuple[KubeSandbox, KubeOps]]:
    """The API sandbox with the pool's StatefulSet, its pod hooks, and a client for it; ``bind`` gets the
    sandbox before the first pod exists."""
    sandbox = KubeSandbox(on_pod_added=[on_added], on_pod_removed=[on_removed])
    if bind is not None:
        bind(sandbox)
    sandbox.create(STATEFULSETS, NAMESPACE, statefulset(replicas))
    served = await serve(sandbox.app())
    api = client_for(served.url)
    try:
        await sandbox.settle_hooks()
        yield sandbox, KubeOps(api)
    finally:
        await asyncio.to_thread(api.close)
        await served.stop()


# ---------------------------------------------------------------------- emulated workers


class EmulatedWorld:
    """An emulated pool whose workers come and go with the StatefulSet's pods.

    The emulated master's documents are served through a front that points every worker's
    ``webuiaddress`` at an emulated worker ``/json/`` (the emulated master names addresses that do not
    exist); decommission requests go to the emulated master itself.
    """

    def __init__(self, pool: SparkPool) -> None:
        self.pool = pool
        self.spark = SparkSandbox(pool, wall_clock=False)
        self.removals: list[Removal] = []
        self.decommission_requests: list[str] = []
        self.master_reads = 0
        self._front: Served | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def master_url(self) -> str:
        assert self._front is not None
        return self._front.url

    def on_added(self, pod: Obj) -> None:
        ip = pod["status"].get("podIP")
        assert ip, "the sandbox schedules workload pods with an IP"
        join_spark_worker(self.pool, ip, 1)

    def on_removed(self, pod: Obj) -> None:
        ip = pod["status"].get("podIP")
        worker = live_spark_worker(self.pool, ip or "")
        if worker is not None:
            self.removals.append(Removal(pod["metadata"]["name"], ip, worker.state, len(worker.executors)))
            self.pool.kill_worker(worker.worker_id)
            return
        self.removals.append(Removal(pod["metadata"]["name"], ip, "gone", 0))

    async def advance(self, now: float) -> None:
        self.pool.advance(now)
        await self.spark.sync()

    def _app(self) -> web.Application:
        async def cluster(request: web.Request) -> web.Response:
            self.master_reads += 1
            doc = master_json(self.pool)
            for row in doc["workers"]:
                row["webuiaddress"] = f"{self.master_url}/worker/{row['id']}"
            return web.json_response(doc)

        async def worker(request: web.Request) -> web.Response:
            wanted = request.match_info["worker_id"]
            for w in self.pool.workers:
                if w.worker_id == wanted:
                    rows = [{"id": int(e.executor_id), "appid": e.app_id} for e in w.executors]
                    return web.json_response(
                        {"id": w.worker_id, "coresused": w.cores_used, "executors": rows}
                    )
            return web.Response(status=404)

        async def kill(request: web.Request) -> web.Response:
            self.decommission_requests.extend(request.query.getall("host", []))
            assert self._session is not None
            async with self._session.post(self.spark.master_url + request.path_qs) as upstream:
                return web.Response(status=upstream.status, body=await upstream.read())

        app = web.Application()
        app.router.add_get("/json/", cluster)
        app.router.add_get("/worker/{worker_id}/json/", worker)
        app.router.add_post("/workers/kill/", kill)
        return app

    async def __aenter__(self) -> EmulatedWorld:
        await self.spark.__aenter__()
        self._session = aiohttp.ClientSession()
        self._front = await serve(self._app())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._front is not None:
            await self._front.stop()
        if self._session is not None:
            await self._session.close()
        await self.spark.__aexit__(*exc)


# ---------------------------------------------------------------------- real Spark from the pip package


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@dataclass
class RealCluster:
    """A standalone master and workers started from the pyspark package (``spark-class``), one process
    each, all on loopback; every process is stopped by its own pid."""

    tmp: Path
    decommission: bool
    master_port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    worker_ui: dict[str, str] = field(default_factory=dict)
    master: subprocess.Popen[bytes] | None = None

    @property
    def master_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def spark_url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    def _env(self, opts_var: str, opts: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            SPARK_HOME=str(spark_home()),
            SPARK_LOCAL_IP="127.0.0.1",
            SPARK_DAEMON_MEMORY="256m",
            SPARK_WORKER_DIR=str(self.tmp / "work"),
            SPARK_CONF_DIR=str(self.tmp / "conf"),
        )
        env[opts_var] = opts
        return env

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_master(self) -> None:
        (self.tmp / "work").mkdir(exist_ok=True)
        (self.tmp / "conf").mkdir(exist_ok=True)
        opts = "-Dspark.master.rest.enabled=false"
        if self.decommission:
            opts += " -Dspark.decommission.enabled=true"
        self.master = self._spawn(
            "master",
            [
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.master_port),
                "--webui-port",
                str(self.ui_port),
            ],
            self._env("SPARK_MASTER_OPTS", opts),
        )

    def start_worker(self, host: str) -> None:
        """A 1-core worker registering as ``host`` (a loopback address of its own)."""
        ui = free_port()
        opts = "-Dspark.decommission.enabled=true" if self.decommission else ""
        env = self._env("SPARK_WORKER_OPTS", opts)
        env["SPARK_LOCAL_IP"] = host
        self.worker_ui[host] = f"http://{host}:{ui}"
        self.workers[host] = self._spawn(
            f"worker-{host}",
            [
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                host,
                "--webui-port",
                str(ui),
                "--cores",
                "1",
                "--memory",
                "1g",
                self.spark_url,
            ],
            env,
        )

    def stop_worker(self, host: str) -> None:
        proc = self.workers.pop(host, None)
        if proc is not None:
            _stop(proc)

    def stop(self) -> None:
        for host in list(self.workers):
            self.stop_worker(host)
        if self.master is not None:
            _stop(self.master)
            self.master = None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        # The worker's shutdown hook kills its executors; the whole process group goes after that.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


class RealWorld:
    """Pods of the StatefulSet run real workers: pod ``<set>-<n>`` is a worker at ``127.0.0.<base + n>``.

    When a pod goes, what its worker still ran is recorded first (the master's view and the worker's
    own ``/json``), then its process is stopped.
    """

    def __init__(self, cluster: RealCluster, base: int) -> None:
        self.cluster = cluster
        self.base = base
        self.sandbox: KubeSandbox | None = None
        self.removals: list[Removal] = []
        self.started: set[str] = set()

    def bind(self, sandbox: KubeSandbox) -> None:
        self.sandbox = sandbox

    async def on_added(self, pod: Obj) -> None:
        assert self.sandbox is not None
        host = pod_host(pod, self.base)
        set_pod_ip(self.sandbox, pod["metadata"]["name"], host)
        self.started.add(host)
        await asyncio.to_thread(self.cluster.start_worker, host)

    async def on_removed(self, pod: Obj) -> None:
        host = pod_host(pod, self.base)
        rows = [w for w in await master_workers(self.cluster.master_url) if w["host"] == host]
        own = await get_json(self.cluster.worker_ui[host] + "/json/")
        state = rows[-1]["state"] if rows else "unlisted"
        self.removals.append(Removal(pod["metadata"]["name"], host, state, len(own["executors"])))
        await asyncio.to_thread(self.cluster.stop_worker, host)

    async def close(self) -> None:
        for host in sorted(self.started):
            await asyncio.to_thread(self.cluster.stop_worker, host)


async def get_json(url: str) -> Any:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(url) as resp,
    ):
        resp.raise_for_status()
        return await resp.json(content_type=None)


async def master_workers(master_url: str) -> list[Obj]:
    doc = await get_json(master_url + "/json/")
    workers: list[Obj] = doc["workers"]
    return workers


def pod_host(pod: Obj, base: int) -> str:
    ordinal = ordinal_of(pod["metadata"]["name"], SET)
    assert ordinal is not None
    return f"127.0.0.{base + ordinal}"


def wall_now() -> float:
    return time.time()
