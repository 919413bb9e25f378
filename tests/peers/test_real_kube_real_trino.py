"""Real peers at both ends: a real Trino 476 (tests/peers/trino_cluster.py) read by our adapter behind the real
aggregation layer, and the real HPA scaling on it (issue 13, §3 "the real Trino of the previous issue where its
fixture is available"). Marked real_kube and real_trino: a peer that cannot start fails these tests.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.deploy import ROOT
from tests.peers.kube_adapter import GROUP_VERSION, AggregatedAdapter, apply_objects, wait_for
from tests.peers.kube_cluster import KubeCluster
from tests.peers.trino_cluster import ADMIN, MONITOR, SERIAL_SOURCE, RunningQuery, TrinoCluster

pytestmark = [pytest.mark.real_kube, pytest.mark.real_trino]

CLUSTER = "real"  # the source's name: the `cluster` label of its series
NAME = "trino-worker-real"


@pytest.fixture(scope="module")
def adapter(
    real_kube: KubeCluster, real_trino: TrinoCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AggregatedAdapter]:
    running = AggregatedAdapter.start(
        real_kube,
        tmp_path_factory.mktemp("adapter-real-trino"),
        real_trino.coordinator.http_url,
        max_age_seconds=None,
        poll_interval_seconds=0.5,
        source={"name": CLUSTER, "user": MONITOR, "timeout_seconds": 5.0},
    )
    try:
        yield running
    finally:
        running.stop()
        running.unregister()


def _raw(cluster: KubeCluster, metric: str, selector: str = "") -> dict[str, float]:
    """``kubectl get --raw`` of one external metric through kube-apiserver: {state or cluster: value}."""
    path = f"/apis/{GROUP_VERSION}/namespaces/trino/{metric}?labelSelector=cluster%3D{CLUSTER}{selector}"
    done = cluster.kubectl("get", "--raw", path, check=False)
    assert done.returncode == 0, done.stderr
    items = json.loads(done.stdout)["items"]
    return {i["metricLabels"].get("state", i["metricLabels"]["cluster"]): float(i["value"]) for i in items}


@pytest.mark.timeout(300)
def test_real_trino_nodes_through_kube_apiserver(
    real_kube: KubeCluster, real_trino: TrinoCluster, adapter: AggregatedAdapter
) -> None:
    rows = real_trino.query("SELECT state, count(*) FROM system.runtime.nodes GROUP BY state", user=ADMIN)
    trino_side = {str(state): float(n) for state, n in rows}
    assert trino_side["active"] == 3  # coordinator and two workers
    got = wait_for("trino_nodes through kube-apiserver", lambda: _raw(real_kube, "trino_nodes"), 30)
    assert got["active"] == trino_side["active"]


def _example_hpa() -> dict[str, Any]:
    """deploy/examples/hpa/hpa-trino-workers.yaml with only names and timings changed."""
    hpa: dict[str, Any] = copy.deepcopy(
        yaml.safe_load((ROOT / "deploy" / "examples" / "hpa" / "hpa-trino-workers.yaml").read_text())
    )
    hpa["metadata"]["name"] = NAME
    hpa["spec"]["scaleTargetRef"]["name"] = NAME
    for metric in hpa["spec"]["metrics"]:
        metric["external"]["metric"]["selector"]["matchLabels"]["cluster"] = CLUSTER
    down = hpa["spec"]["behavior"]["scaleDown"]
    down["stabilizationWindowSeconds"] = 6
    for policy in down["policies"]:
        policy["periodSeconds"] = 1
    return hpa


def _replicas(cluster: KubeCluster) -> int:
    got = json.loads(cluster.kubectl("get", "deployment", NAME, "-n", "trino", "-o", "json").stdout)
    return int(got["spec"]["replicas"])


def _trino_states(cluster: TrinoCluster) -> dict[str, int]:
    rows = cluster.query(
        "SELECT state, count(*) FROM system.runtime.queries WHERE state IN ('QUEUED', 'RUNNING') "
        "AND query LIKE '%kube_hpa_slow%' AND query NOT LIKE '%system.runtime%' GROUP BY state",
        user=ADMIN,
    )
    return {str(state): int(n) for state, n in rows}


@pytest.mark.timeout(300)
def test_the_real_hpa_scales_on_a_real_trino_queue(
    real_kube: KubeCluster, real_trino: TrinoCluster, adapter: AggregatedAdapter, tmp_path: Path
) -> None:
    real_kube.kubectl("create", "namespace", "trino", check=False)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": "trino"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {
                "metadata": {"labels": {"app": NAME}},
                "spec": {"containers": [{"name": "worker", "image": "trino:476"}]},
            },
        },
    }
    apply_objects(real_kube, tmp_path, "real-trino-workers", [deployment, _example_hpa()])
    queries: list[RunningQuery] = []
    try:
        wait_for("the HPA at 1 replica", lambda: _replicas(real_kube) == 1, 60)
        # global.serial runs one query at a time: 9 slow queries there are 1 running and 8 queued. With no
        # resource_groups configured in the adapter, trino_capacity_queued_queries is the whole queue: 8
        # against 4 per worker -> 2 replicas.
        table = real_trino.create_slow_table("kube_hpa_slow", splits=2, delay="60s")
        queries = [real_trino.submit(f"SELECT count(*) FROM {table}", source=SERIAL_SOURCE) for _ in range(9)]
        wait_for("8 queued in Trino", lambda: _trino_states(real_trino) == {"QUEUED": 8, "RUNNING": 1}, 60)
        wait_for(
            "8 queued through kube-apiserver",
            lambda: _raw(real_kube, "trino_capacity_queued_queries") == {CLUSTER: 8.0},
            30,
        )
        wait_for("the HPA to scale to 2", lambda: _replicas(real_kube) == 2, 60)
        for query in queries:
            query.cancel()
        wait_for("Trino's queue empty", lambda: not _trino_states(real_trino), 60)
        wait_for("the HPA back at 1", lambda: _replicas(real_kube) == 1, 60)
        hpa = json.loads(real_kube.kubectl("get", "hpa", NAME, "-n", "trino", "-o", "json").stdout)
        active = next(c for c in hpa["status"]["conditions"] if c["type"] == "ScalingActive")
        assert active["status"] == "True", active
    finally:
        for query in queries:
            query.cancel()
        deadline = time.monotonic() + 60
        while queries and _trino_states(real_trino) and time.monotonic() < deadline:
            time.sleep(0.5)
        real_kube.kubectl("delete", "hpa,deployment", NAME, "-n", "trino", "--ignore-not-found")
