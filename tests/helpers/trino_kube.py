"""A Deployment or StatefulSet of Trino workers on the Kubernetes sandbox, each pod a sandbox Trino worker.

When a pod becomes ready the world starts a Trino worker named after it in the emulated cluster and
writes the worker's port into the pod's ``http`` container port (``https`` when the cluster serves HTTPS);
when the pod is deleted, its worker disappears at once, killing whatever still runs there, as a pod
deletion without a drain does (both: :mod:`lab.pod_workers`). Time is one manual clock for both: ``await world.advance(seconds)``.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import kubernetes.client

from lab.pod_workers import join_trino_worker, leave_trino_worker
from lab.sandbox.kube import KubeSandbox
from lab.sandbox.kube_types import DEPLOYMENTS, STATEFULSETS
from lab.sandbox.trino import ResourceGroupSpec, TrinoAuth, TrinoCluster, TrinoSandbox
from tests.helpers.kube import ManualClock, RunningKube, call, running_kube

NAMESPACE = "trino"
WORKLOAD = "trino-worker"
LABELS = {"app": "trino", "component": "worker"}


def one_group() -> list[ResourceGroupSpec]:
    """One root group that never queues in these tests."""
    return [ResourceGroupSpec("global", hard_concurrency_limit=100, max_queued=100)]


@dataclass
class TrinoKubeWorld:
    kube: RunningKube
    trino: TrinoSandbox
    clock: ManualClock
    kind: Literal["Deployment", "StatefulSet"]
    start: float
    exited_early: list[str] = field(default_factory=list)
    """Workers that left the Trino cluster on their own while their pod still existed."""
    removed: list[str] = field(default_factory=list)
    """Pods deleted, in order."""

    @property
    def cluster(self) -> TrinoCluster:
        return self.trino.cluster

    @property
    def now(self) -> float:
        return self.clock.now

    @property
    def model_time(self) -> float:
        return self.clock.now - self.start

    async def advance(self, seconds: float) -> None:
        """Move both clocks, let the simulated controllers act and the pod hooks finish."""
        self.clock.advance(seconds)
        self.cluster.advance(self.model_time)
        await self.trino.sync()
        self.kube.sandbox.tick()
        await self.kube.sandbox.settle_hooks()

    async def settle(self) -> None:
        self.kube.sandbox.tick()
        await self.kube.sandbox.settle_hooks()
        await self.trino.sync()

    async def pods(self) -> list[dict[str, Any]]:
        """The workload's pods (JSON form), not being deleted, by name."""
        core = kubernetes.client.CoreV1Api(self.kube.api)
        found = await call(core.list_namespaced_pod, NAMESPACE, label_selector="app=trino,component=worker")
        out = [self.kube.api.sanitize_for_serialization(p) for p in found.items]
        return sorted(
            (p for p in out if not p["metadata"].get("deletionTimestamp")),
            key=lambda p: p["metadata"]["name"],
        )

    async def replicas(self) -> int:
        apps = kubernetes.client.AppsV1Api(self.kube.api)
        if self.kind == "Deployment":
            scale = await call(apps.read_namespaced_deployment_scale, WORKLOAD, NAMESPACE)
        else:
            scale = await call(apps.read_namespaced_stateful_set_scale, WORKLOAD, NAMESPACE)
        return int(scale.spec.replicas)

    def state(self, pod: str) -> str:
        node = self.cluster.node(pod)
        return node.state.value if node.alive else "GONE"

    def put_secret(self, name: str, data: dict[str, str]) -> None:
        """A Secret as the API stores it (values base64-encoded)."""
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        self.kube.sandbox.put_object(
            "", "v1", "secrets", NAMESPACE, {"kind": "Secret", "metadata": {"name": name}, "data": encoded}
        )


def _workload(kind: str, replicas: int, version: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": dict(LABELS)},
        "template": {
            "metadata": {"labels": dict(LABELS)},
            "spec": {
                "containers": [
                    {
                        "name": "trino-worker",
                        "image": f"trinodb/trino:{version}",
                        "ports": [
                            {"name": "http", "containerPort": 8080},
                            {"name": "https", "containerPort": 8443},
                        ],
                    }
                ]
            },
        },
    }
    if kind == "StatefulSet":
        spec["serviceName"] = WORKLOAD
        spec["podManagementPolicy"] = "Parallel"
    return {"metadata": {"name": WORKLOAD, "namespace": NAMESPACE}, "spec": spec}


@asynccontextmanager
async def trino_on_kube(
    version: int = 478,
    *,
    kind: Literal["Deployment", "StatefulSet"] = "Deployment",
    replicas: int = 3,
    grace_period: float = 5.0,
    auth: TrinoAuth | None = None,
) -> AsyncIterator[TrinoKubeWorld]:
    clock = ManualClock()
    cluster = TrinoCluster(
        version,
        workers=0,
        groups=one_group(),
        grace_period=grace_period,
        node_refresh_seconds=0.0,
        required_workers=1,
    )
    sandbox = KubeSandbox(clock=clock, pod_ip="127.0.0.1", tick_interval=None, record_events=False)
    async with TrinoSandbox(cluster, auth=auth, tick_seconds=None) as trino, running_kube(sandbox) as kube:
        world = TrinoKubeWorld(kube, trino, clock, kind, clock.now)

        async def pod_ready(pod: dict[str, Any]) -> None:
            await join_trino_worker(sandbox, trino, NAMESPACE, pod["metadata"]["name"])

        async def pod_removed(pod: dict[str, Any]) -> None:
            name = pod["metadata"]["name"]
            world.removed.append(name)
            removal = await leave_trino_worker(trino, name)
            if removal is not None and removal.state == "GONE":
                world.exited_early.append(name)

        sandbox.on_pod_ready.append(pod_ready)
        sandbox.on_pod_removed.append(pod_removed)
        rt = DEPLOYMENTS if kind == "Deployment" else STATEFULSETS
        sandbox.create(rt, NAMESPACE, _workload(kind, replicas, version))
        await world.settle()
        yield world
