"""Real Trino 476 workers as the pods of a Deployment on the Kubernetes sandbox, for the controller's actuator.

Each pod, once ready, stands for one real worker JVM on loopback (its container port ``http`` is the
worker's port, every pod's IP 127.0.0.1), so the actuator reaches the worker the way it does in a cluster:
``http://<podIP>:<port>``. Used by tests/peers/test_real_trino_drain.py and benchmarks/real_trino_drain.py.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import kubernetes.client

from autoscaler.controller.actuator import Outcome
from autoscaler.controller.kube_ops import KubeOps
from autoscaler.controller.targets.trino_workers.actuator import TrinoWorkersActuator
from autoscaler.controller.targets.trino_workers.worker_api import parse_tasks
from autoscaler.policy.models import Drain, SecretKeyRef, TrinoTarget, TrinoWorkerTls, WorkloadRef
from lab.pod_workers import point_pod_at
from lab.sandbox.kube import KubeSandbox
from lab.sandbox.kube_types import DEPLOYMENTS
from tests.helpers.kube import RunningKube, call, running_kube
from tests.peers.trino_cluster import ADMIN, MONITOR, RunningQuery, TrinoCluster, TrinoNode

NAMESPACE = "trino"
WORKLOAD = "trino-worker"
LABELS = {"app": "trino", "component": "worker"}
GRACE = 3  # the real cluster's shutdown.grace-period


@dataclass
class Removal:
    pod: str
    worker: str
    state: str
    tasks: int | None


@dataclass
class RealWorld:
    trino: TrinoCluster
    kube: RunningKube
    by_pod: dict[str, TrinoNode] = field(default_factory=dict)
    removals: list[Removal] = field(default_factory=list)

    def tasks(self, node: TrinoNode) -> int | None:
        return parse_tasks(self.trino.metrics(node, user=MONITOR).text)

    async def pods(self) -> list[str]:
        core = kubernetes.client.CoreV1Api(self.kube.api)
        found = await call(core.list_namespaced_pod, NAMESPACE, label_selector="app=trino,component=worker")
        return sorted(p.metadata.name for p in found.items if p.metadata.deletion_timestamp is None)

    def put_secret(self, name: str, data: dict[str, str]) -> None:
        """A Secret in the workers' namespace, as the API stores it (values base64-encoded)."""
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        self.kube.sandbox.put_object(
            "", "v1", "secrets", NAMESPACE, {"kind": "Secret", "metadata": {"name": name}, "data": encoded}
        )

    async def replicas(self) -> int:
        apps = kubernetes.client.AppsV1Api(self.kube.api)
        scale = await call(apps.read_namespaced_deployment_scale, WORKLOAD, NAMESPACE)
        return int(scale.spec.replicas)


@asynccontextmanager
async def real_workers_on_kube(trino: TrinoCluster) -> AsyncIterator[RealWorld]:
    """A Deployment of as many pods as the cluster has workers, each pod one real worker."""
    # A worker a previous test drained is ACTIVE again, but the coordinator sees it 5-8 s later; queries
    # started before then would leave it out.
    everyone = sorted(n.name for n in trino.workers)
    deadline = time.monotonic() + 60
    while trino.active_workers() != everyone:
        assert time.monotonic() < deadline, "the coordinator does not see every worker active"
        await asyncio.sleep(0.5)
    sandbox = KubeSandbox(pod_ip="127.0.0.1", record_events=False)
    async with running_kube(sandbox) as kube:
        world = RealWorld(trino, kube)
        free = list(trino.workers)

        async def pod_ready(pod: dict[str, Any]) -> None:
            name = pod["metadata"]["name"]
            if name in world.by_pod or not free:
                return
            node = world.by_pod[name] = free.pop(0)
            point_pod_at(sandbox, NAMESPACE, name, {"http": node.http_port, "https": node.https_port})

        async def pod_removed(pod: dict[str, Any]) -> None:
            # What the worker was doing when Kubernetes took its pod away.
            node = world.by_pod[pod["metadata"]["name"]]
            state = await asyncio.to_thread(trino.get_state, node)
            tasks = await asyncio.to_thread(world.tasks, node)
            world.removals.append(Removal(pod["metadata"]["name"], node.name, state, tasks))

        sandbox.on_pod_ready.append(pod_ready)
        sandbox.on_pod_removed.append(pod_removed)
        template = {
            "metadata": {"labels": dict(LABELS)},
            "spec": {
                "containers": [
                    {
                        "name": "trino",
                        "image": "trinodb/trino:476",
                        "ports": [
                            {"name": "http", "containerPort": 8080},
                            {"name": "https", "containerPort": 8443},
                        ],
                    }
                ]
            },
        }
        sandbox.create(
            DEPLOYMENTS,
            NAMESPACE,
            {
                "metadata": {"name": WORKLOAD, "namespace": NAMESPACE},
                "spec": {
                    "replicas": len(trino.workers),
                    "selector": {"matchLabels": dict(LABELS)},
                    "template": template,
                },
            },
        )
        deadline = time.monotonic() + 30
        while len(world.by_pod) < len(trino.workers):
            assert time.monotonic() < deadline, "the pods did not become ready"
            await asyncio.sleep(0.1)
        try:
            yield world
        finally:
            # Leave every worker serving for the next test of the session.
            for node in trino.workers:
                trino.set_state(node, "ACTIVE")


def actuator(
    world: RealWorld,
    *,
    timeout: int = 180,
    on_timeout: Literal["Abort", "Force"] = "Abort",
    password_file: Path | None = None,
    credentials: SecretKeyRef | None = None,
    worker_tls: TrinoWorkerTls | None = None,
) -> TrinoWorkersActuator:
    """The actuator as a policy configures it; an HTTPS cluster is reached over HTTPS."""
    coordinator = world.trino.coordinator
    url = coordinator.https_url if world.trino.https and coordinator.https_url else coordinator.http_url
    if credentials is None and password_file is not None:
        credentials = SecretKeyRef(name="trino-admin", key="password")
    return TrinoWorkersActuator(
        KubeOps(world.kube.api),
        namespace=NAMESPACE,
        workload=WorkloadRef(kind="Deployment", name=WORKLOAD),
        trino=TrinoTarget(
            cluster="real",
            coordinator_url=url,
            version=476,
            user=ADMIN,
            credentials_secret=credentials,
            worker_tls=worker_tls,
        ),
        drain=Drain(grace_period_seconds=GRACE, timeout_seconds=timeout, on_timeout=on_timeout),
        password_file=password_file,
    )


def long_queries(trino: TrinoCluster, name: str, delay: str, count: int = 2) -> list[RunningQuery]:
    """Scans that hold drivers on every worker for about ``delay``.

    A worker put back to ACTIVE is scheduled on again only after the coordinator's next read of the nodes
    (5-8 s on a real 476), and a scan's splits are placed when it starts: scans that left a worker out are
    cancelled and started again."""
    table = trino.create_slow_table(name, splits=2 * len(trino.workers), delay=delay)
    for _ in range(4):
        queries = [trino.submit(f"SELECT count(*) FROM {table}") for _ in range(count)]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if all((parse_tasks(trino.metrics(w, user=MONITOR).text) or 0) > 0 for w in trino.workers):
                return queries
            time.sleep(0.3)
        for q in queries:
            q.cancel()
        time.sleep(5)
    raise AssertionError("the queries did not reach every worker")


async def passes(act: TrinoWorkersActuator, desired: int, until: float, stop: Any) -> list[Outcome]:
    """Apply ``desired`` once a second until ``stop(outcome)`` or ``until`` seconds passed."""
    out: list[Outcome] = []
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        outcome = await act.apply(desired, time.time())
        out.append(outcome)
        if stop(outcome):
            return out
        await asyncio.sleep(1.0)
    return out
