"""kubectl, a real Kubernetes client, against the Kubernetes API sandbox over plain HTTP (a kubeconfig)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from lab.sandbox.kube import KubeSandbox
from lab.sandbox.kube_pods import DELETION_COST
from lab.sandbox.kube_types import DEPLOYMENTS, STATEFULSETS
from lab.sandbox.kube_workloads import workload_manifest
from tests.helpers.kube import ManualClock, RunningKube, running_kube

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None and not os.environ.get("CI"), reason="kubectl not installed")


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[tuple[RunningKube, Path]]:
    sandbox = KubeSandbox(clock=ManualClock(), tick_interval=None)
    sandbox.create(DEPLOYMENTS, "trino", workload_manifest("Deployment", "trino-worker", 2))
    sandbox.create(STATEFULSETS, "spark", workload_manifest("StatefulSet", "spark-worker", 1))
    async with running_kube(sandbox) as running:
        config = tmp_path / "kubeconfig"
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "sandbox", "cluster": {"server": running.url}}],
                    "users": [{"name": "nobody", "user": {}}],
                    "contexts": [
                        {
                            "name": "sandbox",
                            "context": {"cluster": "sandbox", "user": "nobody", "namespace": "trino"},
                        }
                    ],
                    "current-context": "sandbox",
                }
            )
        )
        yield running, config


async def kubectl(config: Path, *args: str) -> str:
    assert KUBECTL is not None, "kubectl is required (Debian package kubernetes-client)"
    # HOME points at the test's directory so kubectl's discovery cache starts empty
    env = {**os.environ, "KUBECONFIG": str(config), "HOME": str(config.parent)}
    done = await asyncio.to_thread(
        subprocess.run, [KUBECTL, *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


async def test_kubectl_lists_scales_and_annotates(kube: tuple[RunningKube, Path]) -> None:
    running, config = kube
    listed = rows(await kubectl(config, "get", "deployments", "-A"))
    assert listed[0] == ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert listed[1][:5] == ["trino", "trino-worker", "2/2", "2", "2"]

    out = await kubectl(config, "scale", "statefulset", "spark-worker", "--replicas=3", "-n", "spark")
    assert out.strip() == "statefulset.apps/spark-worker scaled"
    sts = running.sandbox.get_object("apps", "v1", "statefulsets", "spark", "spark-worker")
    assert sts is not None
    assert sts["spec"]["replicas"] == 3
    pods = json.loads(await kubectl(config, "get", "pods", "-n", "spark", "-o", "json"))
    assert [p["metadata"]["name"] for p in pods["items"]] == [
        "spark-worker-0",
        "spark-worker-1",
        "spark-worker-2",
    ]

    pod = rows(await kubectl(config, "get", "pods", "-l", "app=trino-worker", "-o", "name"))[0][0]
    await kubectl(config, "annotate", pod, f"{DELETION_COST}=-10")
    annotated = json.loads(await kubectl(config, "get", pod, "-o", "json"))
    assert annotated["metadata"]["annotations"][DELETION_COST] == "-10"
    await kubectl(config, "scale", "deployment", "trino-worker", "--replicas=1")
    left = rows(await kubectl(config, "get", "pods", "-o", "name"))
    assert len(left) == 1
    assert left[0][0] != pod


async def test_kubectl_sees_the_api_resources_and_policies(kube: tuple[RunningKube, Path]) -> None:
    _running, config = kube
    resources = rows(await kubectl(config, "api-resources"))
    names = {r[0]: r for r in resources[1:]}
    assert names["scalingpolicies"][1:] == ["qsp", "queuescale.io/v1alpha1", "true", "ScalingPolicy"]
    assert names["leases"][1:] == ["coordination.k8s.io/v1", "true", "Lease"]
    assert names["statefulsets"][1:] == ["sts", "apps/v1", "true", "StatefulSet"]
    policy = {
        "apiVersion": "queuescale.io/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "adhoc", "namespace": "trino"},
        "spec": {
            "target": {
                "kind": "TrinoWorkers",
                "workload": {"kind": "Deployment", "name": "trino-worker"},
                "trino": {"cluster": "adhoc", "coordinatorUrl": "http://trino:8080", "version": 478},
            },
            "minReplicas": 2,
            "maxReplicas": 8,
            "metrics": [{"type": "QueueWait", "queueWait": {"targetSeconds": 30}}],
        },
    }
    path = config.parent / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    # the sandbox serves no OpenAPI documents, which kubectl's client-side validation needs
    out = await kubectl(config, "create", "--validate=false", "-f", str(path))
    assert out.strip() == "scalingpolicy.queuescale.io/adhoc created"
    listed = rows(await kubectl(config, "get", "qsp"))
    assert listed[0] == ["NAME", "TARGET", "MIN", "MAX", "DESIRED", "AGE"]
    # DESIRED is empty (no status yet): kubectl prints a null cell as nothing
    assert listed[1][:4] == ["adhoc", "TrinoWorkers", "2", "8"]
    events = await kubectl(config, "get", "events", "-n", "trino")
    assert "ScalingReplicaSet" in events
