"""The sandbox as one cluster: the Kubernetes API sandbox whose workload pods are the emulated Trino workers
and Spark standalone workers, with both models on a clock that runs ``speed`` times faster than the wall.

Kubernetes keeps the wall clock (pod start-ups, Events, the controller's timestamps are real seconds); the
Trino and Spark models run in cluster seconds (:class:`ModelClock`), so a query of 20 cluster seconds takes
``20 / speed`` wall seconds, and a pod start-up of ``s`` cluster seconds is written as ``s / speed`` wall
seconds on its workload.

- :class:`TrinoPods`: when a pod of the Trino workload becomes ready, a worker named after it joins the
  emulated cluster and the pod's ``http`` container port is rewritten to the port that worker is served
  on (every sandbox pod has IP 127.0.0.1: the port tells workers apart; a real cluster has one IP per pod
  and a fixed port). When the pod is deleted its worker leaves at once, killing what still runs there, as
  a pod deletion without a drain does.
- :class:`SparkPods`: each pod of the Spark StatefulSet gets a loopback address of its own as pod IP, and
  when ready a standalone worker registering with that host (the host is what the master decommissions
  by, and the pool actuator matches pods to workers by pod IP). A deleted pod's worker dies with it.
- :class:`SparkMasterFront`: the emulated master as the pool actuator reads it: each worker's
  ``webuiaddress`` points at a ``/json/`` the front serves for it (the emulated workers have no server of
  their own); everything else is passed through to the emulated master.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from lab.sandbox.kube import KubeSandbox
from lab.sandbox.kube_types import DEPLOYMENTS, PODS, STATEFULSETS
from lab.sandbox.kube_workloads import workload_manifest
from lab.sandbox.serve import Served, serve
from lab.sandbox.spark_http import SparkSandbox, master_json
from lab.sandbox.spark_model import DEAD, SparkPool
from lab.sandbox.trino_http import TrinoSandbox
from lab.sandbox.trino_model import TrinoCluster

__all__ = [
    "ModelClock",
    "SandboxCluster",
    "SparkMasterFront",
    "SparkPods",
    "SparkRemoval",
    "TrinoPods",
    "TrinoRemoval",
    "Workload",
    "running_cluster",
]

Obj = dict[str, Any]


class ModelClock:
    """Cluster seconds since :meth:`start`, ``speed`` of them per wall second."""

    def __init__(self, speed: float, wall: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._wall = wall
        self._origin = wall()

    def start(self) -> None:
        self._origin = self._wall()

    def now(self) -> float:
        return (self._wall() - self._origin) * self.speed


@dataclass(frozen=True)
class Workload:
    """A Deployment or StatefulSet of the sandbox whose pods stand for workers."""

    namespace: str
    name: str
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    replicas: int = 1
    startup_seconds: float = 0.0
    """Cluster seconds from creating a pod to Running and Ready."""
    image: str = "sandbox:latest"
    port: int | None = None
    """Container port named ``http`` (rewritten per pod by :class:`TrinoPods`)."""

    @property
    def labels(self) -> dict[str, str]:
        return {"app": self.name}

    def manifest(self, speed: float) -> Obj:
        doc = workload_manifest(
            self.kind,
            self.name,
            self.replicas,
            labels=self.labels,
            image=self.image,
            startup_seconds=self.startup_seconds / speed,
            pod_management="Parallel" if self.kind == "StatefulSet" else None,
        )
        container = doc["spec"]["template"]["spec"]["containers"][0]
        container["name"] = self.name
        if self.port is not None:
            container["ports"] = [{"name": "http", "containerPort": self.port}]
        return doc

    def owns(self, pod: Mapping[str, Any]) -> bool:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        return meta.get("namespace") == self.namespace and all(
            labels.get(k) == v for k, v in self.labels.items()
        )


@dataclass(frozen=True)
class TrinoRemoval:
    """A Trino pod deleted: its worker's state then (``GONE`` if it had left already), tasks, queries killed."""

    pod: str
    at: float
    state: str
    tasks: int
    killed: int


class TrinoPods:
    """Pods of ``workload`` are workers of ``trino``'s cluster (see the module documentation)."""

    def __init__(self, kube: KubeSandbox, trino: TrinoSandbox, workload: Workload) -> None:
        self.kube = kube
        self.trino = trino
        self.workload = workload
        self.removals: list[TrinoRemoval] = []
        self.joined: list[str] = []
        kube.on_pod_ready.append(self.on_ready)
        kube.on_pod_removed.append(self.on_removed)

    @property
    def cluster(self) -> TrinoCluster:
        return self.trino.cluster

    async def on_ready(self, pod: Obj) -> None:
        if not self.workload.owns(pod):
            return
        name = pod["metadata"]["name"]
        if name in {w.node_id for w in self.cluster.workers(include_gone=True)}:
            return
        self.cluster.add_worker(node_id=name)
        self.joined.append(name)
        await self.trino.sync()
        port = urlsplit(self.trino.url(name)).port
        current = self.kube.get_object("", "v1", "pods", self.workload.namespace, name)
        if current is None:
            return
        changed = copy.deepcopy(current)
        for container in changed["spec"]["containers"]:
            for entry in container.get("ports") or []:
                if entry.get("name") == "http":
                    entry["containerPort"] = port
        self.kube.put(PODS, self.workload.namespace, changed)

    async def on_removed(self, pod: Obj) -> None:
        if not self.workload.owns(pod):
            return
        name = pod["metadata"]["name"]
        workers = {w.node_id: w for w in self.cluster.workers(include_gone=True)}
        worker = workers.get(name)
        if worker is None:
            return
        at = self.cluster.now
        if not worker.alive:
            self.removals.append(TrinoRemoval(name, at, "GONE", 0, 0))
            return
        state, tasks = worker.state.value, len(worker.tasks)
        killed = self.cluster.remove_worker(name)
        self.removals.append(TrinoRemoval(name, at, state, tasks, len(killed)))
        await self.trino.sync()


@dataclass(frozen=True)
class SparkRemoval:
    """A Spark pod deleted: its worker's state then (``LEFT`` once decommissioned and gone), executors,
    running tasks lost."""

    pod: str
    at: float
    host: str
    state: str
    executors: int
    tasks_lost: int


class SparkPods:
    """Pods of ``workload`` (a StatefulSet) are standalone workers of ``pool``, ``cores`` each."""

    def __init__(self, kube: KubeSandbox, pool: SparkPool, workload: Workload, cores: int) -> None:
        self.kube = kube
        self.pool = pool
        self.workload = workload
        self.cores = cores
        self.removals: list[SparkRemoval] = []
        self.joined: list[str] = []
        self._next_ip = 0
        kube.on_pod_added.append(self.on_added)
        kube.on_pod_ready.append(self.on_ready)
        kube.on_pod_removed.append(self.on_removed)

    def _new_ip(self) -> str:
        # 127.0.1.1 onwards: a fresh address per pod, so a recreated pod never meets its predecessor's
        # dead worker on the master.
        self._next_ip += 1
        n = self._next_ip
        return f"127.0.{1 + (n - 1) // 250}.{1 + (n - 1) % 250}"

    async def on_added(self, pod: Obj) -> None:
        if not self.workload.owns(pod):
            return
        stored = self.kube.store.get(PODS.key, self.workload.namespace, pod["metadata"]["name"])
        if stored is None:
            return
        ip = self._new_ip()
        changed = copy.deepcopy(stored)
        changed.setdefault("status", {})["podIP"] = ip
        changed["status"]["podIPs"] = [{"ip": ip}]
        self.kube.store.update(PODS.key, changed)

    async def on_ready(self, pod: Obj) -> None:
        if not self.workload.owns(pod):
            return
        stored = self.kube.store.get(PODS.key, self.workload.namespace, pod["metadata"]["name"])
        ip = ((stored or pod).get("status") or {}).get("podIP")
        if not ip or any(w.host == ip for w in self.pool.workers):
            return
        self.pool.add_worker(self.cores, host=ip)
        self.joined.append(pod["metadata"]["name"])

    async def on_removed(self, pod: Obj) -> None:
        if not self.workload.owns(pod):
            return
        name = pod["metadata"]["name"]
        ip = (pod.get("status") or {}).get("podIP") or ""
        at = self.pool.now
        for worker in self.pool.workers:
            if worker.host == ip and worker.state != DEAD:
                tasks = sum(len(e.running) for e in worker.executors)
                self.removals.append(SparkRemoval(name, at, ip, worker.state, len(worker.executors), tasks))
                self.pool.kill_worker(worker.worker_id)
                return
        left = any(w.host == ip for w in self.pool.departed_workers)
        self.removals.append(SparkRemoval(name, at, ip, "LEFT" if left else "NONE", 0, 0))


class SparkMasterFront:
    """The emulated master with a ``/json/`` per worker (see the module documentation)."""

    def __init__(self, spark: SparkSandbox) -> None:
        self.spark = spark
        self._served: Served | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        assert self._served is not None, "the front is not running"
        return self._served.url

    @property
    def pool(self) -> SparkPool:
        return self.spark.pool

    async def _cluster(self, request: web.Request) -> web.Response:
        doc = master_json(self.pool)
        for row in doc["workers"]:
            row["webuiaddress"] = f"{self.url}/worker/{row['id']}"
        return web.json_response(doc)

    async def _worker(self, request: web.Request) -> web.Response:
        wanted = request.match_info["worker_id"]
        for w in self.pool.workers:
            if w.worker_id == wanted and w.state != DEAD:
                rows = [{"id": int(e.executor_id), "appid": e.app_id} for e in w.executors]
                return web.json_response(
                    {"id": w.worker_id, "state": w.state, "coresused": w.cores_used, "executors": rows}
                )
        return web.Response(status=404)

    async def _through(self, request: web.Request) -> web.Response:
        assert self._session is not None
        async with self._session.request(
            request.method,
            self.spark.master_url + request.path_qs,
            data=await request.read(),
            headers={k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept")},
            allow_redirects=False,
        ) as upstream:
            body = await upstream.read()
            kept = {k: v for k, v in upstream.headers.items() if k.lower() in ("content-type", "location")}
            return web.Response(status=upstream.status, body=body, headers=kept)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/json/", self._cluster)
        app.router.add_get("/json", self._cluster)
        app.router.add_get("/worker/{worker_id}/json/", self._worker)
        app.router.add_route("*", "/{tail:.*}", self._through)
        return app

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._served = await serve(self.app())

    async def stop(self) -> None:
        if self._served is not None:
            await self._served.stop()
            self._served = None
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass
class SandboxCluster:
    """Everything :func:`running_cluster` started; ``advance`` moves both models to the clock's now."""

    kube: KubeSandbox
    kube_url: str
    trino: TrinoSandbox
    spark: SparkSandbox
    front: SparkMasterFront
    trino_pods: TrinoPods
    spark_pods: SparkPods
    clock: ModelClock
    trino_workload: Workload
    spark_workload: Workload

    @property
    def spark_master_url(self) -> str:
        """The master as the pool actuator and the adapter read it (through the front)."""
        return self.front.url

    async def advance(self, now: float | None = None) -> float:
        """Both models to ``now`` (default the clock's); servers follow the workers and drivers."""
        at = self.clock.now() if now is None else now
        cluster = self.trino.cluster
        cluster.advance(max(at, cluster.now))
        await self.trino.sync()
        pool = self.spark.pool
        pool.advance(max(at, pool.now))
        await self.spark.sync()
        return at


@contextlib.asynccontextmanager
async def running_cluster(
    trino_cluster: TrinoCluster,
    pool: SparkPool,
    *,
    speed: float,
    trino_workload: Workload,
    spark_workload: Workload,
    spark_cores_per_worker: int,
    seed: int = 0,
) -> AsyncIterator[SandboxCluster]:
    """Serve the API sandbox with both workloads, the Trino cluster and the Spark pool, on loopback.

    The models are not advanced in the background: the caller drives them with
    :meth:`SandboxCluster.advance` (and submits its load in between), so it decides what happens when.
    """
    clock = ModelClock(speed)
    kube = KubeSandbox(pod_ip="127.0.0.1", seed=seed)
    async with contextlib.AsyncExitStack() as stack:
        trino = await stack.enter_async_context(TrinoSandbox(trino_cluster, tick_seconds=None))
        spark = await stack.enter_async_context(SparkSandbox(pool, wall_clock=False))
        front = SparkMasterFront(spark)
        await front.start()
        stack.push_async_callback(front.stop)
        trino_pods = TrinoPods(kube, trino, trino_workload)
        spark_pods = SparkPods(kube, pool, spark_workload, spark_cores_per_worker)
        served = await serve(kube.app())
        stack.push_async_callback(served.stop)
        clock.start()
        for workload in (trino_workload, spark_workload):
            rt = DEPLOYMENTS if workload.kind == "Deployment" else STATEFULSETS
            kube.create(rt, workload.namespace, workload.manifest(speed))
        await kube.settle_hooks()
        yield SandboxCluster(
            kube=kube,
            kube_url=served.url,
            trino=trino,
            spark=spark,
            front=front,
            trino_pods=trino_pods,
            spark_pods=spark_pods,
            clock=clock,
            trino_workload=trino_workload,
            spark_workload=spark_workload,
        )
        # Stop acting on pods before the servers go: hooks started by the last changes finish first.
        await kube.settle_hooks()
