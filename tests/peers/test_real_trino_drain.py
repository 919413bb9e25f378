"""The controller's Trino actuator drains real Trino 476 workers.

The workers are pods of a Deployment on the Kubernetes sandbox; each pod, once ready, stands for one real
worker JVM on loopback (its container port ``http`` is the worker's port, every pod's IP 127.0.0.1), so the
actuator reaches the worker the way it does in a cluster: ``http://<podIP>:<port>``. Long queries scan a
blackhole table whose pages take seconds, so work runs on every worker while the drain goes on.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import kubernetes.client
import pytest

from autoscaler.controller.actuator import Outcome
from autoscaler.controller.drain_plan import DRAIN_KEPT_ANNOTATION
from autoscaler.controller.kube_ops import KubeOps
from autoscaler.controller.trino_actuator import TrinoWorkersActuator
from autoscaler.controller.trino_workers import parse_tasks
from autoscaler.policy_models import Drain, SecretKeyRef, TrinoTarget, WorkloadRef
from autoscaler.sandbox.kube import KubeSandbox
from autoscaler.sandbox.kube_types import DEPLOYMENTS, PODS
from tests.helpers.kube import RunningKube, call, running_kube
from tests.peers.trino_cluster import ADMIN, MONITOR, RunningQuery, TrinoCluster, TrinoNode

pytestmark = [pytest.mark.real_trino, pytest.mark.timeout(900)]

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
            current = sandbox.get_object("", "v1", "pods", NAMESPACE, name)
            if current is None:
                return
            changed = copy.deepcopy(current)
            for container in changed["spec"]["containers"]:
                for entry in container.get("ports") or []:
                    if entry.get("name") == "http":
                        entry["containerPort"] = node.http_port
            sandbox.put(PODS, NAMESPACE, changed)

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
                        "ports": [{"name": "http", "containerPort": 8080}],
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
) -> TrinoWorkersActuator:
    return TrinoWorkersActuator(
        KubeOps(world.kube.api),
        namespace=NAMESPACE,
        workload=WorkloadRef(kind="Deployment", name=WORKLOAD),
        trino=TrinoTarget(
            cluster="real",
            coordinator_url=world.trino.coordinator.http_url,
            version=476,
            user=ADMIN,
            credentials_secret=SecretKeyRef(name="trino-admin", key="password") if password_file else None,
        ),
        drain=Drain(grace_period_seconds=GRACE, timeout_seconds=timeout, on_timeout=on_timeout),
        password_file=password_file,
    )


def long_queries(trino: TrinoCluster, name: str, delay: str, count: int = 2) -> list[RunningQuery]:
    """Scans that hold drivers on every worker for about ``delay``."""
    table = trino.create_slow_table(name, splits=4, delay=delay)
    queries = [trino.submit(f"SELECT count(*) FROM {table}") for _ in range(count)]
    deadline = time.monotonic() + 60
    while not all((parse_tasks(trino.metrics(w, user=MONITOR).text) or 0) > 0 for w in trino.workers):
        assert time.monotonic() < deadline, "the queries did not reach every worker"
        time.sleep(0.3)
    return queries


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


async def test_scale_down_drains_the_least_busy_worker_and_fails_no_query(real_trino: TrinoCluster) -> None:
    async with real_workers_on_kube(real_trino) as world:
        queries = long_queries(real_trino, "drain_slow", "12s")
        tasks = {node.name: world.tasks(node) for node in real_trino.workers}
        act = actuator(world)
        try:
            outcomes = await passes(act, 1, 120, lambda o: o.replicas is not None)
        finally:
            await act.close()
        assert outcomes[-1].replicas == 1, [o.errors or o.detail for o in outcomes]
        assert all(not o.errors for o in outcomes), [o.errors for o in outcomes]
        assert await world.replicas() == 1
        deadline = time.monotonic() + 30
        while not world.removals:
            assert time.monotonic() < deadline, "the Deployment removed no pod"
            await asyncio.sleep(0.1)
        # Removed only once DRAINED, and the worker chosen was the one with the least work then.
        (removal,) = world.removals
        assert (removal.state, removal.tasks) == ("DRAINED", 0)
        assert tasks[removal.worker] == min(t or 0 for t in tasks.values()), tasks
        assert [e.outcome for o in outcomes for e in o.drains_ended] == ["completed"]
        # Zero queries failed.
        for q in queries:
            assert q.result(120) == [[4]]


async def test_load_returning_mid_drain_puts_the_worker_back(real_trino: TrinoCluster) -> None:
    async with real_workers_on_kube(real_trino) as world:
        queries = long_queries(real_trino, "return_slow", "60s")
        act = actuator(world)
        try:
            first = await act.apply(1, time.time())
            assert (first.drains_started, first.replicas) == (1, None)
            draining = [n for n in real_trino.workers if real_trino.get_state(n) == "DRAINING"]
            assert len(draining) == 1
            back = await act.apply(2, time.time())
        finally:
            await act.close()
        assert [e.outcome for e in back.drains_ended] == ["aborted"]
        assert real_trino.get_state(draining[0]) == "ACTIVE"
        assert await world.replicas() == 2
        assert world.removals == []
        for q in queries:
            q.cancel()


async def test_a_drain_that_cannot_finish_in_time_leaves_the_worker_serving(real_trino: TrinoCluster) -> None:
    async with real_workers_on_kube(real_trino) as world:
        queries = long_queries(real_trino, "stuck_slow", "60s")
        act = actuator(world, timeout=8, on_timeout="Abort")
        try:
            outcomes = await passes(act, 1, 40, lambda o: bool(o.drains_ended))
        finally:
            await act.close()
        (ended,) = [e for o in outcomes for e in o.drains_ended]
        assert ended.outcome == "timeout_kept"
        # The worker that could not drain serves again, and the outcome says so (a Warning Event); the
        # controller may go on to try the other worker, whose drain is as undoable.
        (kept,) = [
            world.by_pod[name]
            for name in await world.pods()
            if DRAIN_KEPT_ANNOTATION
            in (world.kube.sandbox.get_object("", "v1", "pods", NAMESPACE, name) or {})
            .get("metadata", {})
            .get("annotations", {})
        ]
        assert real_trino.get_state(kept) == "ACTIVE"
        assert "kept ACTIVE (onTimeout: Abort)" in outcomes[-1].detail
        assert any(e.reason == "DrainTimedOut" and e.type == "Warning" for e in outcomes[-1].events)
        assert await world.replicas() == 2
        assert world.removals == []
        for q in queries:
            q.cancel()


async def test_credentials_the_worker_refuses_are_reported_and_it_keeps_serving(
    real_trino: TrinoCluster, tmp_path: Path
) -> None:
    # A password over plain HTTP: Trino refuses it (401 "Password not allowed for insecure authentication").
    password = tmp_path / "password"
    password.write_text("not-used-over-http")
    async with real_workers_on_kube(real_trino) as world:
        act = actuator(world, password_file=password)
        try:
            outcome = await act.apply(1, time.time())
        finally:
            await act.close()
        assert outcome.errors, outcome
        assert any("401" in str(e) for e in outcome.errors), outcome.errors
        assert all(real_trino.get_state(n) == "ACTIVE" for n in real_trino.workers)
        assert await world.replicas() == 2
        assert world.removals == []
