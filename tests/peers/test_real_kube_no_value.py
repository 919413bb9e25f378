"""A figure with no value is an empty list, and the REAL HPA holds on it (kube-controller-manager v1.37).

A resource group's hard concurrency limit has no value for a group Trino has not created: served as the idle
0 of a count, an HPA would read a limit of 0. The adapter answers an empty item list instead; this checks,
through kube-apiserver's aggregation layer, that the real HPA then reports FailedGetExternalMetric ("no
metrics returned from external metrics API") and keeps its replicas rather than scaling on a 0.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers.kube_adapter import GROUP_VERSION, AggregatedAdapter, SandboxThread, apply_objects, wait_for
from tests.peers.kube_cluster import KubeCluster

pytestmark = pytest.mark.real_kube

LIMIT = "trino_resource_group_hard_concurrency_limit"
NAMESPACE = "limits"


@pytest.fixture(scope="module")
def adapter(
    real_kube: KubeCluster, trino: SandboxThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AggregatedAdapter]:
    trino.set_queued(1)  # a query selects the root group ``global``, so Trino has created it
    running = AggregatedAdapter.start(
        real_kube,
        tmp_path_factory.mktemp("adapter-no-value"),
        trino.url,
        name="adapter-no-value",
        source={"resource_groups": ["global", "nosuch"]},
    )
    try:
        yield running
    finally:
        running.stop()
        running.unregister()


def _items(cluster: KubeCluster, group: str) -> list[dict[str, Any]]:
    path = f"/apis/{GROUP_VERSION}/namespaces/{NAMESPACE}/{LIMIT}?labelSelector=resource_group%3D{group}"
    items: list[dict[str, Any]] = json.loads(cluster.kubectl("get", "--raw", path).stdout)["items"]
    return items


def _objects(group: str) -> list[dict[str, Any]]:
    labels = {"app": f"workers-{group}"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"workers-{group}", "namespace": NAMESPACE},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "worker", "image": "trino:478"}]},
            },
        },
    }
    # A Value target of 1 on the limit: a 0 read as a value would take the workload to minReplicas at once
    # (no scale-down stabilization), a limit of 2 to 3 x 2 / 1 = 6, capped at 5.
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"workers-{group}", "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"workers-{group}"},
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": LIMIT, "selector": {"matchLabels": {"resource_group": group}}},
                        "target": {"type": "Value", "value": "1"},
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
        },
    }
    return [deployment, hpa]


def _get(cluster: KubeCluster, kind: str, name: str) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(cluster.kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json").stdout)
    return got


def _scaling_active(cluster: KubeCluster, name: str) -> dict[str, Any]:
    conditions = _get(cluster, "hpa", name).get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "ScalingActive"), {})


@pytest.mark.timeout(180)
def test_the_real_hpa_holds_on_a_limit_with_no_value_and_scales_on_one_with_a_value(
    real_kube: KubeCluster, adapter: AggregatedAdapter, tmp_path: Path
) -> None:
    real_kube.kubectl("create", "namespace", NAMESPACE, check=False)
    wait_for("the adapter to serve global's limit", lambda: _items(real_kube, "global"), 30)
    assert [i["value"] for i in _items(real_kube, "global")] == ["2"]
    assert _items(real_kube, "nosuch") == []

    apply_objects(real_kube, tmp_path, "workloads", [*_objects("nosuch"), *_objects("global")])
    try:
        # The control: the same HPA on a group with a limit scales (3 x 2 / 1 -> 6, capped at 5).
        wait_for(
            "the HPA on global's limit at 5",
            lambda: _get(real_kube, "deployment", "workers-global")["spec"]["replicas"] == 5,
            60,
        )

        def failed() -> dict[str, Any]:
            condition = _scaling_active(real_kube, "workers-nosuch")
            return condition if condition.get("status") == "False" else {}

        condition = wait_for("ScalingActive=False on the group with no limit", failed, 60)
        assert condition["reason"] == "FailedGetExternalMetric", condition
        assert "no metrics returned" in condition["message"], condition
        held_until = time.monotonic() + 8  # four HPA syncs of 2 s, no stabilization window
        while time.monotonic() < held_until:
            assert _get(real_kube, "deployment", "workers-nosuch")["spec"]["replicas"] == 3
            time.sleep(0.5)
    finally:
        real_kube.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false")
