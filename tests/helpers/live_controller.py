"""The real controller on the wall clock: the Kubernetes sandbox with a Deployment of Trino workers (each
pod a sandbox Trino worker), ScalingPolicy resources on it, and ``queuescale controller`` as
:func:`~autoscaler.controller.runtime.running_controller` runs it, reading metrics from a real adapter.

Unlike ``tests.helpers.trino_kube`` (a manual clock stepped by the test) and
``lab.cluster.running_cluster`` (models advanced by the caller), everything here moves by
itself: the sandbox ticks pods on ``time.time``, the Trino model follows the wall clock,
:func:`query_bursts` submits load on a period, and the controller reconciles every ``period_seconds``.
For tests that need the controller's series as a running one produces them (dashboards, alerting rules).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import kubernetes.client

from adapter.kube import KubeSettings
from autoscaler.controller.runtime import RunningController, running_controller
from autoscaler.controller.settings import (
    ControllerSettings,
    HealthSettings,
    LeaderElectionSettings,
    PolicySettings,
    ReadingSettings,
    ReconcileSettings,
)
from lab.pod_workers import TrinoPods, Workload
from lab.sandbox.kube import KubeSandbox
from lab.sandbox.kube_types import DEPLOYMENTS
from lab.sandbox.trino import ResourceGroupSpec, TrinoCluster, TrinoSandbox
from tests.helpers.kube import RunningKube, call, running_kube
from tests.helpers.trino import refused_url

NAMESPACE = "trino"
CLUSTER = "scaled"
"""The ``cluster`` label the adapter serves this Trino cluster's metrics under."""
WORKLOAD = "trino-worker"
POLICY = "adhoc-workers"
LOCKED_WORKLOAD = "trino-worker-locked"
LOCKED_POLICY = "locked-workers"
"""Names a credentials Secret that does not exist: every pass fails to read it (an actuator error)."""
MISSING_SECRET = "trino-locked-password"
GROUP, VERSION, PLURAL = "queuescale.io", "v1alpha1", "scalingpolicies"


@dataclass
class LiveTrinoOnKube:
    kube: RunningKube
    trino: TrinoSandbox

    @property
    def cluster(self) -> TrinoCluster:
        return self.trino.cluster

    def adapter_source(self, poll_interval_seconds: float) -> dict[str, Any]:
        """This cluster as an entry of the adapter's ``trino`` settings."""
        return {
            "name": CLUSTER,
            "endpoint": {"url": self.trino.coordinator_url},
            "resource_groups": ["global"],
            "poll_interval_seconds": poll_interval_seconds,
        }

    async def create_policy(self, body: dict[str, Any]) -> None:
        custom = kubernetes.client.CustomObjectsApi(self.kube.api)
        await call(custom.create_namespaced_custom_object, GROUP, VERSION, NAMESPACE, PLURAL, body)


@asynccontextmanager
async def live_trino_on_kube(
    *, replicas: int = 1, grace_period: float = 0.5
) -> AsyncIterator[LiveTrinoOnKube]:
    """Trino 478 on the sandbox, on the wall clock: :data:`WORKLOAD`'s pods join the cluster as workers
    when ready and leave it when deleted (``TrinoPods``); :data:`LOCKED_WORKLOAD`'s pods are no Trino
    workers at all."""
    cluster = TrinoCluster(
        478,
        workers=0,
        groups=[ResourceGroupSpec("global", hard_concurrency_limit=100, max_queued=100)],
        grace_period=grace_period,
        node_refresh_seconds=0.0,
        required_workers=1,
    )
    sandbox = KubeSandbox(clock=time.time, pod_ip="127.0.0.1", tick_interval=0.05, record_events=False)
    # Until a pod's worker is served, its port is one where nothing listens: a probe is refused at once.
    closed_port = urlsplit(refused_url()).port
    workers = Workload(NAMESPACE, WORKLOAD, replicas=replicas, image="trinodb/trino:478", port=closed_port)
    locked = Workload(NAMESPACE, LOCKED_WORKLOAD, image="trinodb/trino:478", port=closed_port)
    async with TrinoSandbox(cluster, tick_seconds=0.1) as trino, running_kube(sandbox) as kube:
        TrinoPods(sandbox, trino, workers)
        for workload in (workers, locked):
            sandbox.create(DEPLOYMENTS, NAMESPACE, workload.manifest(speed=1.0))
        await sandbox.settle_hooks()
        yield LiveTrinoOnKube(kube, trino)
        await sandbox.settle_hooks()


def trino_policy(
    name: str, workload: str, coordinator_url: str, *, max_replicas: int, **trino: Any
) -> dict[str, Any]:
    """A ScalingPolicy on running queries (2 per worker) that drains at once and scales down at once."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ScalingPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "target": {
                "kind": "TrinoWorkers",
                "workload": {"kind": "Deployment", "name": workload},
                "trino": {"cluster": CLUSTER, "coordinatorUrl": coordinator_url, "version": 478, **trino},
                "startupSeconds": 0,
            },
            "minReplicas": 1,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": "trino_running_queries",
                            "selector": {"matchLabels": {"cluster": CLUSTER}},
                        },
                        "target": {"type": "AverageValue", "averageValue": "2"},
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
            "drain": {"gracePeriodSeconds": 0, "timeoutSeconds": 60},
        },
    }


async def create_policies(world: LiveTrinoOnKube) -> None:
    """:data:`POLICY` on :data:`WORKLOAD` (1 to 3 workers) and :data:`LOCKED_POLICY` on
    :data:`LOCKED_WORKLOAD` (held at 1), whose credentials Secret is missing."""
    url = world.trino.coordinator_url
    await world.create_policy(trino_policy(POLICY, WORKLOAD, url, max_replicas=3))
    await world.create_policy(
        trino_policy(
            LOCKED_POLICY,
            LOCKED_WORKLOAD,
            url,
            max_replicas=1,
            credentialsSecret={"name": MISSING_SECRET, "key": "password"},
        )
    )


async def query_bursts(
    cluster: TrinoCluster, stop: asyncio.Event, *, every: float, count: int, work_seconds: float
) -> None:
    """Every ``every`` seconds, ``count`` queries of ``work_seconds`` worker-seconds each, once a worker is
    up; between bursts the cluster goes idle, so the controller scales up and drains down again and again."""
    while not stop.is_set():
        wait = 0.1
        if cluster.active_worker_count() > 0:
            cluster.submit_many("global", count, work_seconds)
            wait = every
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)


@asynccontextmanager
async def live_controller(
    world: LiveTrinoOnKube, adapter_url: str, stop: asyncio.Event
) -> AsyncIterator[RunningController]:
    """``queuescale controller --policies crd --metrics-url <adapter> --leader-elect`` on the sandbox, with
    short periods; ``/metrics`` on an ephemeral loopback port (``metrics_url``)."""
    settings = ControllerSettings(
        policies=PolicySettings(sources=["crd"], namespaces=[NAMESPACE]),
        kube=KubeSettings(host=world.kube.url),
        readings=ReadingSettings(adapter_url=adapter_url),
        health=HealthSettings(listen="127.0.0.1:0"),
        reconcile=ReconcileSettings(period_seconds=0.5),
        leader_election=LeaderElectionSettings(
            enabled=True,
            lease_namespace=NAMESPACE,
            identity="live-controller",
            lease_duration_seconds=2,
            renew_deadline_seconds=1.5,
            retry_period_seconds=0.2,
        ),
    )
    async with running_controller(settings, stop) as running:
        yield running
