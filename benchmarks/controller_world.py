"""The world the controller-loop benchmark runs against, in a process of its own.

    python -m benchmarks.controller_world '{"trino_clusters": 50, ...}'

Prints ``READY <json>`` (URLs of the Kubernetes API, the Trino coordinators, the Spark masters and a
control endpoint) once every pod is running and every Trino worker answers. What it serves:

- the Kubernetes API sandbox (:class:`~lab.sandbox.kube.KubeSandbox`) with the ScalingPolicy
  custom resources, the Deployments/StatefulSets and their pods, the Trino Secrets and the spark-operator
  applications; every request it answers is counted by method;
- per Trino cluster one emulated cluster model (:class:`~lab.sandbox.trino.TrinoCluster`, 478,
  password authentication) with its coordinator served, and one emulated Trino worker per running pod,
  each on a loopback port of its own (the node application of the Trino sandbox, ``/v1/info/state`` GET
  and PUT and ``/metrics``): the pod's IP is rewritten to 127.0.0.1 and its ``http`` container port to
  the worker's port, so the actuator reaches exactly that pod's worker. A pod deleted removes its worker;
- per Spark pool one emulated standalone master (``/json/``, ``POST /workers/kill/``) whose workers are
  the pool StatefulSets' pods (worker host = pod IP, as the pool actuator matches them);
- ``GET /counts`` (requests answered so far, by server), ``POST /perturb`` (move workloads off what the
  policies want: the scaling pass), ``GET /settled`` (every pod running and every worker answering).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import signal
import ssl
import sys
import tempfile
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from core.metric_names import SPARK_WAITING_APPS, TRINO_QUEUED_QUERIES
from lab.pod_workers import join_spark_worker, live_spark_worker, point_pod_at
from lab.sandbox.kube import KubeSandbox
from lab.sandbox.kube_types import DEPLOYMENTS, PODS, STATEFULSETS
from lab.sandbox.serve import Served, serve
from lab.sandbox.spark import SparkPool, master_app
from lab.sandbox.tls import self_signed
from lab.sandbox.trino import Faults, ResourceGroupSpec, TrinoAuth, TrinoCluster, create_node_app

Obj = dict[str, Any]
GROUP, VERSION = "queuescale.io", "v1alpha1"
OPERATOR = ("sparkoperator.k8s.io", "v1beta2")
TRINO_USER = "admin"
TRINO_PASSWORD = "bench-secret"
APP_MAX_EXECUTORS = 24


@dataclass(frozen=True)
class WorldSpec:
    trino_clusters: int = 50
    trino_policies: int = 800
    spark_pools: int = 10
    pool_policies: int = 150
    app_policies: int = 50
    pods: int = 3
    """Replicas of every workload (the policies' minReplicas, so the steady state scales nothing)."""


def trino_namespace(cluster: int) -> str:
    return f"trino-{cluster:02d}"


def spark_namespace(pool: int) -> str:
    return f"spark-{pool:02d}"


def _count_into(counter: Counter[str], key: Callable[[web.Request], str]) -> Callable[..., Awaitable[None]]:
    async def on_prepare(request: web.Request, _: web.StreamResponse) -> None:
        counter[key(request)] += 1

    return on_prepare


def _counted(
    app: web.Application, counter: Counter[str], key: Callable[[web.Request], str]
) -> web.Application:
    app.on_response_prepare.append(_count_into(counter, key))
    return app


@dataclass
class TrinoFace:
    """One emulated Trino cluster: the coordinator and one served node application per worker, over HTTPS
    (Trino takes passwords only over HTTPS)."""

    cluster: TrinoCluster
    auth: TrinoAuth
    counts: Counter[str]
    tls: ssl.SSLContext
    coordinator: Served | None = None
    workers: dict[str, tuple[str, Served]] = field(default_factory=dict)
    """Pod name → (node id, its server); a recreated StatefulSet pod gets a new node."""
    urls: dict[str, str] = field(default_factory=dict)
    seq: int = 0

    def _app(self, node_id: str, key: str) -> web.Application:
        app = create_node_app(self.cluster, node_id, auth=self.auth, faults=Faults(), urls=self.urls)
        return _counted(app, self.counts, lambda _: key)

    async def start(self) -> None:
        node = self.cluster.coordinator.node_id
        self.coordinator = await serve(self._app(node, "trino coordinator"), ssl_context=self.tls)
        self.urls[node] = self.coordinator.url

    async def add(self, pod: str) -> int:
        if pod not in self.workers:
            self.seq += 1
            node = self.cluster.add_worker(node_id=f"{pod}.{self.seq}").node_id
            served = await serve(self._app(node, "trino worker"), ssl_context=self.tls)
            self.workers[pod] = (node, served)
            self.urls[node] = served.url
        return self.workers[pod][1].port

    async def remove(self, pod: str) -> None:
        if pod not in self.workers:
            return
        node, served = self.workers.pop(pod)
        self.urls.pop(node, None)
        if any(w.node_id == node and w.alive for w in self.cluster.workers()):
            self.cluster.remove_worker(node)
        await served.stop(grace_seconds=0.0)

    async def stop(self) -> None:
        for name in list(self.workers):
            await self.remove(name)
        if self.coordinator is not None:
            await self.coordinator.stop(grace_seconds=0.0)


def _serving(pod: Obj) -> bool:
    """Running, not being deleted, and (a Trino pod) pointing at its worker."""
    status = pod.get("status") or {}
    if pod["metadata"].get("deletionTimestamp") or status.get("phase") != "Running":
        return False
    return not pod["metadata"]["namespace"].startswith("trino-") or status.get("podIP") == "127.0.0.1"


class World:
    def __init__(self, spec: WorldSpec) -> None:
        self.spec = spec
        self.counts: Counter[str] = Counter()
        self.kube = KubeSandbox(
            startup_seconds=0.0,
            termination_seconds=0.0,
            record_events=False,
            watch_history=20_000,
            on_pod_ready=[self._pod_ready],
            on_pod_removed=[self._pod_removed],
        )
        auth = TrinoAuth(mode="password", passwords={TRINO_USER: TRINO_PASSWORD})
        tls_dir = tempfile.mkdtemp(prefix="queuescale-bench-tls-")
        weakref.finalize(self, shutil.rmtree, tls_dir, ignore_errors=True)
        self.tls = self_signed(Path(tls_dir))
        serving = self.tls.server_context()
        self.trino = [
            TrinoFace(
                TrinoCluster(
                    478,
                    workers=0,
                    groups=[ResourceGroupSpec("global", hard_concurrency_limit=100, max_queued=1000)],
                    grace_period=0.0,
                    node_refresh_seconds=0.0,
                ),
                auth,
                self.counts,
                serving,
            )
            for _ in range(spec.trino_clusters)
        ]
        self.pools = [
            SparkPool(name=f"pool-{p:02d}", decommission_enabled=True, epoch=time.time())
            for p in range(spec.spark_pools)
        ]
        self.masters: list[Served] = []
        self.served: list[Served] = []
        self._started = time.monotonic()
        self.trino_workloads: list[tuple[str, str, str]] = []
        self.pool_workloads: list[tuple[str, str]] = []
        self.apps: list[tuple[str, str, str]] = []

    # ------------------------------------------------------------------ pod hooks

    async def _pod_ready(self, pod: Obj) -> None:
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if ns.startswith("trino-"):
            port = await self.trino[int(ns.split("-")[1])].add(name)
            point_pod_at(self.kube, ns, name, {"https": port}, pod_ip="127.0.0.1", through_api=False)
        elif ns.startswith("spark-"):
            pool = self.pools[int(ns.split("-")[1])]
            join_spark_worker(pool, pod["status"]["podIP"], 4)

    async def _pod_removed(self, pod: Obj) -> None:
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if ns.startswith("trino-"):
            await self.trino[int(ns.split("-")[1])].remove(name)
        elif ns.startswith("spark-"):
            pool = self.pools[int(ns.split("-")[1])]
            ip = (pod.get("status") or {}).get("podIP")
            while (worker := live_spark_worker(pool, ip or "")) is not None:
                pool.kill_worker(worker.worker_id)

    # ------------------------------------------------------------------ objects

    def _trino_policy(self, i: int, cluster: int, kind: str, name: str, coordinator: str) -> Obj:
        spec: Obj = {
            "target": {
                "kind": "TrinoWorkers",
                "workload": {"apiVersion": "apps/v1", "kind": kind, "name": name},
                "trino": {
                    "cluster": f"c{cluster:02d}",
                    "coordinatorUrl": coordinator,
                    "version": 478,
                    "slotsPerWorker": 4,
                    "credentialsSecret": {"name": "trino-admin", "key": "password"},
                    "user": TRINO_USER,
                    "workerTls": {"caSecret": {"name": "trino-ca", "key": "ca.crt"}},
                },
                "startupSeconds": 0,
            },
            "minReplicas": self.spec.pods,
            "maxReplicas": 4 * self.spec.pods,
            "metrics": [
                {"type": "QueueWait", "queueWait": {"targetSeconds": 10, "percentile": 95, "sloSeconds": 30}},
                {"type": "RequiredWorkers", "requiredWorkers": {}},
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": TRINO_QUEUED_QUERIES,
                            "selector": {"matchLabels": {"cluster": f"c{cluster:02d}"}},
                        },
                        "target": {"type": "AverageValue", "averageValue": "4"},
                    },
                },
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
            "drain": {"gracePeriodSeconds": 0, "timeoutSeconds": 600, "onTimeout": "Abort"},
        }
        if i % 4 == 1:
            spec["forecast"] = {
                "enabled": True,
                "method": "holt-winters",
                "horizonSeconds": 900,
                "seasonSeconds": 86400,
                "historySeconds": 1209600,
            }
        if i % 4 == 2:
            spec["schedules"] = [
                {
                    "name": "business-hours",
                    "cron": "0 8 * * 1-5",
                    "durationSeconds": 36000,
                    "timeZone": "Europe/Berlin",
                    "minReplicas": self.spec.pods,
                    "maxReplicas": 6 * self.spec.pods,
                }
            ]
        return spec

    def _trino_workload(self, kind: str, name: str) -> Obj:
        labels = {"app": name, "component": "worker"}
        spec: Obj = {
            "replicas": self.spec.pods,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "trino-worker",
                            "image": "trinodb/trino:478",
                            "ports": [{"name": "https", "containerPort": 8443}],
                        }
                    ]
                },
            },
        }
        if kind == "StatefulSet":
            spec["serviceName"] = name
            spec["podManagementPolicy"] = "Parallel"
        return {"metadata": {"name": name}, "spec": spec}

    def _pool_workload(self, name: str) -> Obj:
        labels = {"app": name}
        return {
            "metadata": {"name": name},
            "spec": {
                "replicas": self.spec.pods,
                "serviceName": name,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "worker", "image": "apache/spark:4.0.0"}]},
                },
            },
        }

    def _put_policy(self, namespace: str, name: str, spec: Obj) -> None:
        body = {"kind": "ScalingPolicy", "metadata": {"name": name}, "spec": spec}
        self.kube.put_object(GROUP, VERSION, "scalingpolicies", namespace, body)

    def _app_object(self, kind: str, name: str, instances: int) -> Obj:
        app_spec: Obj = {
            "type": "Python",
            "sparkVersion": "4.0.0",
            "mode": "cluster",
            "mainApplicationFile": "local:///opt/spark/examples/src/main/python/pi.py",
            "driver": {"cores": 1, "memory": "512m"},
            "executor": {"cores": 2, "memory": "1g", "instances": instances},
        }
        if kind == "SparkApplication":
            return {"kind": kind, "metadata": {"name": name}, "spec": app_spec}
        return {
            "kind": kind,
            "metadata": {"name": name},
            "spec": {"schedule": "@every 1h", "concurrencyPolicy": "Forbid", "template": app_spec},
        }

    def populate(self) -> None:
        s = self.spec
        password = base64.b64encode(TRINO_PASSWORD.encode()).decode()
        for c, face in enumerate(self.trino):
            ns = trino_namespace(c)
            secret = {"kind": "Secret", "metadata": {"name": "trino-admin"}, "data": {"password": password}}
            self.kube.put_object("", "v1", "secrets", ns, secret)
            ca = base64.b64encode(self.tls.ca_pem.encode()).decode()
            ca_secret = {"kind": "Secret", "metadata": {"name": "trino-ca"}, "data": {"ca.crt": ca}}
            self.kube.put_object("", "v1", "secrets", ns, ca_secret)
            assert face.coordinator is not None
        for i in range(s.trino_policies):
            c = i % s.trino_clusters
            ns, name = trino_namespace(c), f"workers-{i:03d}"
            kind = "StatefulSet" if i % 4 == 3 else "Deployment"
            self.kube.create(
                STATEFULSETS if kind == "StatefulSet" else DEPLOYMENTS, ns, self._trino_workload(kind, name)
            )
            coordinator = self.trino[c].coordinator
            assert coordinator is not None
            self._put_policy(ns, name, self._trino_policy(i, c, kind, name, coordinator.url))
            self.trino_workloads.append((ns, kind, name))
        for j in range(s.pool_policies):
            p = j % s.spark_pools
            ns, name = spark_namespace(p), f"pool-workers-{j:03d}"
            self.kube.create(STATEFULSETS, ns, self._pool_workload(name))
            spec: Obj = {
                "target": {
                    "kind": "SparkWorkerPool",
                    "workload": {"kind": "StatefulSet", "name": name},
                    "spark": {
                        "pool": f"pool-{p:02d}",
                        "masterUrl": self.masters[p].url,
                        "coresPerWorker": 4,
                        "executorCores": 1,
                        "decommission": True,
                    },
                    "startupSeconds": 0,
                },
                "minReplicas": s.pods,
                "maxReplicas": 4 * s.pods,
                "metrics": [
                    {"type": "SparkExecutors", "sparkExecutors": {"executorsPerWorker": 4}},
                    {
                        "type": "External",
                        "external": {
                            "metric": {
                                "name": SPARK_WAITING_APPS,
                                "selector": {"matchLabels": {"pool": f"pool-{p:02d}"}},
                            },
                            "target": {"type": "Value", "value": 1},
                        },
                    },
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
                "drain": {"gracePeriodSeconds": 0, "timeoutSeconds": 600},
            }
            self._put_policy(ns, name, spec)
            self.pool_workloads.append((ns, name))
        for k in range(s.app_policies):
            p = k % s.spark_pools
            ns = spark_namespace(p)
            kind = "SparkApplication" if k % 2 == 0 else "ScheduledSparkApplication"
            name = f"job-{k:03d}"
            plural = "sparkapplications" if kind == "SparkApplication" else "scheduledsparkapplications"
            self.kube.put_object(*OPERATOR, plural, ns, self._app_object(kind, name, 2))
            spec = {
                "target": {
                    "kind": kind,
                    "application": {"name": name},
                    "spark": {"pool": f"pool-{p:02d}", "executorCores": 2},
                },
                "minReplicas": 2,
                "maxReplicas": APP_MAX_EXECUTORS,
                "metrics": [{"type": "SparkExecutors", "sparkExecutors": {}}],
            }
            self._put_policy(ns, name, spec)
            self.apps.append((ns, kind, name))

    # ------------------------------------------------------------------ control

    def settled(self) -> tuple[bool, str]:
        pods = self.kube.store.items(PODS.key)
        waiting = sum(1 for pod in pods if not _serving(pod))
        return waiting == 0, f"{len(pods)} pods, {waiting} not running or not served yet"

    def perturb(self) -> dict[str, int]:
        """Every other workload two replicas over what its policy wants (drains, decommissions), the rest
        down to one (a scale-up); every spark-operator application's next run over its policy's maximum."""
        moved = Counter[str]()
        for i, (ns, kind, name) in enumerate(self.trino_workloads):
            rt = STATEFULSETS if kind == "StatefulSet" else DEPLOYMENTS
            self.kube.scale(rt, ns, name, self.spec.pods + 2 if i % 2 == 0 else 1)
            moved["trino down" if i % 2 == 0 else "trino up"] += 1
        for j, (ns, name) in enumerate(self.pool_workloads):
            self.kube.scale(STATEFULSETS, ns, name, self.spec.pods + 2 if j % 2 == 0 else 1)
            moved["pool down" if j % 2 == 0 else "pool up"] += 1
        for ns, kind, name in self.apps:
            plural = "sparkapplications" if kind == "SparkApplication" else "scheduledsparkapplications"
            self.kube.put_object(
                *OPERATOR, plural, ns, self._app_object(kind, name, 6 * APP_MAX_EXECUTORS // 5)
            )
            moved["applications over their maximum"] += 1
        return dict(moved)

    def control_app(self) -> web.Application:
        async def counts(_: web.Request) -> web.Response:
            return web.json_response(dict(self.counts))

        async def settled(_: web.Request) -> web.Response:
            done, detail = self.settled()
            return web.json_response({"settled": done, "detail": detail})

        async def perturb(_: web.Request) -> web.Response:
            return web.json_response(self.perturb())

        app = web.Application()
        app.router.add_get("/counts", counts)
        app.router.add_get("/settled", settled)
        app.router.add_post("/perturb", perturb)
        return app

    async def _advance_models(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            model_now = time.monotonic() - self._started
            for face in self.trino:
                face.cluster.advance(model_now)
            for pool in self.pools:
                pool.advance(max(model_now, pool.now))

    async def run(self) -> None:
        for face in self.trino:
            await face.start()
        for pool in self.pools:
            app = _counted(master_app(pool, lambda _app_id: None), self.counts, lambda _: "spark master")
            self.masters.append(await serve(app))
        kube_app = _counted(self.kube.app(), self.counts, lambda r: f"kube {r.method}")
        kube = await serve(kube_app)
        control = await serve(self.control_app())
        self.populate()
        ticker = asyncio.create_task(self._advance_models())
        deadline = time.monotonic() + 120
        while not self.settled()[0]:
            if time.monotonic() > deadline:
                raise SystemExit(f"the world did not settle: {self.settled()[1]}")
            await asyncio.sleep(0.1)
            self.kube.tick()
        await self.kube.settle_hooks()
        ready = {
            "kube": kube.url,
            "control": control.url,
            "trino": {f"c{c:02d}": f.coordinator.url for c, f in enumerate(self.trino) if f.coordinator},
            "spark": {pool.name: m.url for pool, m in zip(self.pools, self.masters, strict=True)},
            "trino_user": TRINO_USER,
            "trino_password": TRINO_PASSWORD,
        }
        print("READY " + json.dumps(ready), flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        ticker.cancel()


def main() -> None:
    spec = WorldSpec(**json.loads(sys.argv[1])) if len(sys.argv) > 1 else WorldSpec()
    asyncio.run(World(spec).run())


if __name__ == "__main__":
    main()
