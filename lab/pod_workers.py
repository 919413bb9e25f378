"""Pods of the Kubernetes sandbox as emulated workers: the one place a ready pod becomes a Trino or Spark
worker and a deleted pod takes its worker with it.

Every world that puts emulated workers behind sandbox pods (the demo's :mod:`lab.cluster`, the test
helpers, the controller benchmark) wires them here:

- :func:`point_pod_at`: a pod's named container ports (and, if given, its pod IP) rewritten to where its
  worker is served. Every sandbox Trino pod has IP 127.0.0.1, so the port tells workers apart (a real
  cluster has one IP per pod and a fixed port); a Spark pod gets a loopback address of its own, the host its
  standalone worker registers with (the master decommissions by host, and the pool actuator matches pods
  to workers by pod IP).
- :func:`join_trino_worker` / :func:`leave_trino_worker`: when a pod becomes ready, a worker named after it
  joins the emulated Trino cluster, is served, and the pod's ``http`` (``https`` when the cluster serves
  HTTPS) container port is pointed at it; when the pod is deleted its worker leaves at once, killing what
  still runs there, as a pod deletion without a drain does.
- :func:`join_spark_worker` / :func:`leave_spark_worker`: the same for a standalone worker of an emulated
  Spark pool, found by its host (the pod IP).
- :class:`TrinoPods` and :class:`SparkPods` bind those to the pod hooks of a :class:`KubeSandbox` for the
  pods of one :class:`Workload`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from lab.sandbox.kube import KubeSandbox
from lab.sandbox.kube_types import PODS
from lab.sandbox.kube_workloads import workload_manifest
from lab.sandbox.spark_model import DEAD, SparkPool, Worker
from lab.sandbox.trino_http import TrinoSandbox
from lab.sandbox.trino_model import TrinoCluster

__all__ = [
    "SparkPods",
    "SparkRemoval",
    "TrinoPods",
    "TrinoRemoval",
    "Workload",
    "join_spark_worker",
    "join_trino_worker",
    "leave_spark_worker",
    "leave_trino_worker",
    "live_spark_worker",
    "point_pod_at",
]

Obj = dict[str, Any]


def point_pod_at(
    kube: KubeSandbox,
    namespace: str,
    name: str,
    ports: Mapping[str, int] | None = None,
    *,
    pod_ip: str | None = None,
    through_api: bool = True,
) -> bool:
    """Rewrite the pod's container ports named in ``ports`` (name → port) and, with ``pod_ip``, its
    ``podIP``/``podIPs``, to where its worker is served. ``through_api`` writes as :meth:`KubeSandbox.put`
    does (and ticks the sandbox); otherwise straight into the store, as the kubelet's part would. False when
    the pod is gone."""
    current = kube.store.get(PODS.key, namespace, name)
    if current is None:
        return False
    changed = copy.deepcopy(current)
    wanted = ports or {}
    for container in changed["spec"]["containers"]:
        for entry in container.get("ports") or []:
            port = wanted.get(entry.get("name"))
            if port:
                entry["containerPort"] = port
    if pod_ip is not None:
        changed.setdefault("status", {})["podIP"] = pod_ip
        changed["status"]["podIPs"] = [{"ip": pod_ip}]
    if through_api:
        kube.put(PODS, namespace, changed)
    else:
        kube.store.update(PODS.key, changed)
    return True


# ---------------------------------------------------------------------- Trino


@dataclass(frozen=True)
class TrinoRemoval:
    """A Trino pod deleted: its worker's state then (``GONE`` if it had left already), tasks, queries killed."""

    pod: str
    at: float
    state: str
    tasks: int
    killed: int


async def join_trino_worker(kube: KubeSandbox, trino: TrinoSandbox, namespace: str, pod: str) -> bool:
    """A ready pod joins ``trino``'s cluster as a worker named after it, served, with the pod's container
    port named after the served scheme (``http``/``https``) pointed at it. False when the pod already had
    a worker (a worker that left stays known: a pod is one worker for life)."""
    cluster = trino.cluster
    if pod in {w.node_id for w in cluster.workers(include_gone=True)}:
        return False
    cluster.add_worker(node_id=pod)
    await trino.sync()
    served = urlsplit(trino.url(pod))
    assert served.port is not None
    point_pod_at(kube, namespace, pod, {served.scheme: served.port})
    return True


async def leave_trino_worker(trino: TrinoSandbox, pod: str) -> TrinoRemoval | None:
    """A deleted pod's worker leaves the cluster at once, killing what still runs there; what it was doing
    (``GONE`` when it had left on its own already). None when the pod never had a worker."""
    cluster = trino.cluster
    worker = {w.node_id: w for w in cluster.workers(include_gone=True)}.get(pod)
    if worker is None:
        return None
    at = cluster.now
    if not worker.alive:
        return TrinoRemoval(pod, at, "GONE", 0, 0)
    state, tasks = worker.state.value, len(worker.tasks)
    killed = cluster.remove_worker(pod)
    await trino.sync()
    return TrinoRemoval(pod, at, state, tasks, len(killed))


# ---------------------------------------------------------------------- Spark


@dataclass(frozen=True)
class SparkRemoval:
    """A Spark pod deleted: its worker's state then (``LEFT`` once decommissioned and gone, ``NONE`` when it
    never had one), executors, running tasks lost."""

    pod: str
    at: float
    host: str
    state: str
    executors: int
    tasks_lost: int


def join_spark_worker(pool: SparkPool, host: str, cores: int) -> Worker:
    """A standalone worker of ``cores`` registering with ``host`` (the pod's IP)."""
    return pool.add_worker(cores, host=host)


def live_spark_worker(pool: SparkPool, host: str) -> Worker | None:
    """The worker on ``host`` the master has not declared dead, if any."""
    for worker in pool.workers:
        if worker.host == host and worker.state != DEAD:
            return worker
    return None


def leave_spark_worker(pool: SparkPool, pod: str, host: str) -> SparkRemoval:
    """A deleted pod's worker dies with it; what it ran then."""
    at = pool.now
    worker = live_spark_worker(pool, host)
    if worker is not None:
        tasks = sum(len(e.running) for e in worker.executors)
        removal = SparkRemoval(pod, at, host, worker.state, len(worker.executors), tasks)
        pool.kill_worker(worker.worker_id)
        return removal
    left = any(w.host == host for w in pool.departed_workers)
    return SparkRemoval(pod, at, host, "LEFT" if left else "NONE", 0, 0)


# ---------------------------------------------------------------------- one workload's pods


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


class TrinoPods:
    """Pods of ``workload`` are workers of ``trino``'s cluster (:func:`join_trino_worker`,
    :func:`leave_trino_worker`)."""

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
        if await join_trino_worker(self.kube, self.trino, self.workload.namespace, name):
            self.joined.append(name)

    async def on_removed(self, pod: Obj) -> None:
        if not self.workload.owns(pod):
            return
        removal = await leave_trino_worker(self.trino, pod["metadata"]["name"])
        if removal is not None:
            self.removals.append(removal)


class SparkPods:
    """Pods of ``workload`` (a StatefulSet) are standalone workers of ``pool``, ``cores`` each: each pod gets
    a loopback address of its own as pod IP, and when ready a worker registering with that host."""

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
        name = pod["metadata"]["name"]
        if self.kube.store.get(PODS.key, self.workload.namespace, name) is None:
            return
        point_pod_at(self.kube, self.workload.namespace, name, pod_ip=self._new_ip(), through_api=False)

    async def on_ready(self, pod: Obj) -> None:
        if not self.workload.owns(pod):
            return
        stored = self.kube.store.get(PODS.key, self.workload.namespace, pod["metadata"]["name"])
        ip = ((stored or pod).get("status") or {}).get("podIP")
        if not ip or any(w.host == ip for w in self.pool.workers):
            return
        join_spark_worker(self.pool, ip, self.cores)
        self.joined.append(pod["metadata"]["name"])

    async def on_removed(self, pod: Obj) -> None:
        if not self.workload.owns(pod):
            return
        ip = (pod.get("status") or {}).get("podIP") or ""
        self.removals.append(leave_spark_worker(self.pool, pod["metadata"]["name"], ip))
