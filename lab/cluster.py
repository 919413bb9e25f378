"""The sandbox as one cluster: the Kubernetes API sandbox whose workload pods are the emulated Trino workers
and Spark standalone workers, with both models on a clock that runs ``speed`` times faster than the wall.

Kubernetes keeps the wall clock (pod start-ups, Events, the controller's timestamps are real seconds); the
Trino and Spark models run in cluster seconds (:class:`ModelClock`), so a query of 20 cluster seconds takes
``20 / speed`` wall seconds, and a pod start-up of ``s`` cluster seconds is written as ``s / speed`` wall
seconds on its workload.

- :class:`~lab.pod_workers.TrinoPods` and :class:`~lab.pod_workers.SparkPods` (:mod:`lab.pod_workers`, the one
  place a sandbox pod becomes an emulated worker): a ready pod of the Trino workload is a worker of the
  emulated cluster, served on the port its pod's ``http`` container port is rewritten to; each pod of the
  Spark StatefulSet gets a loopback address as pod IP and, when ready, a standalone worker registering with
  that host. A deleted pod's worker leaves or dies at once.
- :class:`SparkMasterFront`: the emulated master as the pool actuator reads it: each worker's
  ``webuiaddress`` points at a ``/json/`` the front serves for it (the emulated workers have no server of
  their own); everything else is passed through to the emulated master.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from lab.pod_workers import SparkPods, TrinoPods, Workload
from lab.sandbox.kube import KubeSandbox
from lab.sandbox.kube_types import DEPLOYMENTS, STATEFULSETS
from lab.sandbox.serve import Served, serve
from lab.sandbox.spark_http import SparkSandbox, master_json
from lab.sandbox.spark_model import DEAD, SparkPool
from lab.sandbox.trino_http import TrinoSandbox
from lab.sandbox.trino_model import TrinoCluster

__all__ = ["ModelClock", "SandboxCluster", "SparkMasterFront", "running_cluster"]

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
