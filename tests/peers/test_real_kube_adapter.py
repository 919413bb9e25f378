"""Our adapter behind the REAL aggregation layer of kube-apiserver v1.37, and the REAL HPA scaling on it
(issue 13, §2 and §3). See kube_adapter.py for how the adapter is run and registered.

The adapter's identity is a token of the ServiceAccount queuescale/queuescale-adapter, bound only by the RBAC of
deploy/base/adapter: a call our RBAC forgot (the front-proxy ConfigMap, SubjectAccessReviews, TokenReviews)
fails these tests. The Trino source is the emulated coordinator, whose queued queries the tests set.

The HPA test comes last in this module: it stops the coordinator.
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
from tests.peers.kube_adapter import (
    GROUP_VERSION,
    AggregatedAdapter,
    SandboxThread,
    apply_objects,
    service_account_token,
    wait_for,
)
from tests.peers.kube_cluster import KubeCluster

pytestmark = pytest.mark.real_kube

METRIC_PATH = f"/apis/{GROUP_VERSION}/namespaces/default/trino_queued_queries"
READER = "alice"  # bound to read external metrics below
STRANGER = "mallory"  # bound to nothing
MONITORING = ROOT / "deploy" / "components" / "monitoring"


def _grant_reads(cluster: KubeCluster, workdir: Path) -> None:
    """``alice`` may read external metrics (verb list: the GET has no name); the monitoring component's
    ClusterRole and ClusterRoleBinding, as shipped, let monitoring/prometheus-k8s read /metrics."""
    reader = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "test-external-metrics-reader"},
            "rules": [
                {"apiGroups": ["external.metrics.k8s.io"], "resources": ["*"], "verbs": ["get", "list"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "test-external-metrics-reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "test-external-metrics-reader",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": READER}],
        },
    ]
    monitoring: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "prometheus-k8s", "namespace": "monitoring"},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "unbound", "namespace": "monitoring"},
        },
    ]
    for name in ("clusterrole-metrics-reader.yaml", "clusterrolebinding-metrics-reader.yaml"):
        monitoring.append(yaml.safe_load((MONITORING / name).read_text()))
    apply_objects(cluster, workdir, "test-readers", [*reader, *monitoring])
    # RBAC answers from the apiserver's informer cache: wait until it counts, before the adapter caches a deny.
    review = workdir / "sar-alice.json"
    review.write_text(
        json.dumps(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": READER,
                    "resourceAttributes": {
                        "group": "external.metrics.k8s.io",
                        "resource": "trino_queued_queries",
                        "namespace": "default",
                        "verb": "list",
                    },
                },
            }
        )
    )

    def allowed() -> bool:
        done = cluster.kubectl("create", "-f", str(review), "-o", "json", check=False)
        return done.returncode == 0 and bool(json.loads(done.stdout)["status"].get("allowed"))

    wait_for("alice's binding to count", allowed, 30)


@pytest.fixture(scope="module")
def adapter(
    real_kube: KubeCluster, trino: SandboxThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AggregatedAdapter]:
    workdir = tmp_path_factory.mktemp("adapter")
    _grant_reads(real_kube, workdir)
    trino.set_queued(7)
    running = AggregatedAdapter.start(real_kube, workdir, trino.url)
    try:
        yield running
    finally:
        running.stop()
        running.unregister()


def _raw(cluster: KubeCluster, path: str, *, kubeconfig: Path | None = None) -> tuple[int, str]:
    args = ["get", "--raw", path]
    if kubeconfig is not None:
        args.insert(0, f"--kubeconfig={kubeconfig}")  # a later --kubeconfig wins over the admin's
    done = cluster.kubectl(*args, check=False)
    return done.returncode, done.stdout + done.stderr


def _values(body: str) -> list[tuple[dict[str, str], str]]:
    got = json.loads(body)
    assert got["kind"] == "ExternalMetricValueList", got
    return [(item["metricLabels"], item["value"]) for item in got["items"]]


@pytest.mark.timeout(180)
def test_apiservice_available_and_our_values_through_kube_apiserver(
    real_kube: KubeCluster, adapter: AggregatedAdapter, trino: SandboxThread
) -> None:
    trino.set_queued(7)
    status = json.loads(
        real_kube.kubectl("get", "apiservice", "v1beta1.external.metrics.k8s.io", "-o", "json").stdout
    )
    assert {c["type"]: c["status"] for c in status["status"]["conditions"]}["Available"] == "True"
    # Discovery through the aggregator lists our metrics.
    code, out = _raw(real_kube, f"/apis/{GROUP_VERSION}")
    assert code == 0, out
    assert "trino_queued_queries" in {r["name"] for r in json.loads(out)["resources"]}

    def seven() -> bool:
        code, out = _raw(real_kube, METRIC_PATH + "?labelSelector=cluster%3Dadhoc")
        return code == 0 and _values(out) == [({"cluster": "adhoc"}, "7")]

    wait_for("7 queued queries through kube-apiserver", seven, 30)
    trino.set_queued(12)
    wait_for(
        "12 queued queries through kube-apiserver",
        lambda: _values(_raw(real_kube, METRIC_PATH)[1]) == [({"cluster": "adhoc"}, "12")],
        30,
    )
    # A user with RBAC for external metrics gets the same through kube-apiserver.
    code, out = _raw(real_kube, METRIC_PATH, kubeconfig=real_kube.kubeconfig(READER))
    assert code == 0, out
    assert _values(out) == [({"cluster": "adhoc"}, "12")]


@pytest.mark.timeout(120)
def test_user_without_rbac_gets_403(real_kube: KubeCluster, adapter: AggregatedAdapter) -> None:
    code, out = _raw(real_kube, METRIC_PATH, kubeconfig=real_kube.kubeconfig(STRANGER))
    assert code != 0
    assert "Forbidden" in out or "forbidden" in out, out
    status, body = real_kube.get(METRIC_PATH, client=real_kube.client_cert(STRANGER))
    assert status == 403, body
    assert b"items" not in body


@pytest.mark.timeout(120)
def test_forged_identity_headers_straight_to_the_adapter_get_401(adapter: AggregatedAdapter) -> None:
    forged = {"X-Remote-User": "system:admin", "X-Remote-Group": "system:masters"}
    answer = adapter.get(METRIC_PATH, headers=forged)
    assert answer.status == 401, answer.body
    assert b"items" not in answer.body
    assert b"adhoc" not in answer.body
    # A client certificate of another CA (the cluster's user CA) with CN front-proxy-client is no better: the
    # adapter verifies client certificates against the front-proxy CA of the ConfigMap, and the TLS handshake
    # fails (with TLS 1.3 the client learns it as an alert or a closed connection: an OSError either way).
    impostor = adapter.cluster.client_cert("front-proxy-client", name="impostor-front-proxy")
    try:
        answer = adapter.get(METRIC_PATH, headers=forged, client=impostor)
    except OSError:
        pass  # measured: RemoteDisconnected (the server's alert ends the connection before any response)
    else:
        pytest.fail(f"the adapter answered {answer.status} to a client certificate of a foreign CA")


@pytest.mark.timeout(120)
def test_adapter_authorizes_with_real_subject_access_reviews(
    real_kube: KubeCluster, adapter: AggregatedAdapter
) -> None:
    """Through the genuine front-proxy certificate, the identity headers count, and the adapter asks the real
    server (SubjectAccessReview under our ClusterRole) whether that user may read the metric."""
    proxy = real_kube.front_proxy_client
    allowed = adapter.get(METRIC_PATH, client=proxy, headers={"X-Remote-User": READER})
    assert allowed.status == 200, allowed.body
    assert allowed.json()["items"][0]["metricLabels"] == {"cluster": "adhoc"}
    denied = adapter.get(METRIC_PATH, client=proxy, headers={"X-Remote-User": STRANGER})
    assert denied.status == 403, denied.body
    assert STRANGER in denied.json()["message"]


@pytest.mark.timeout(120)
def test_metrics_needs_a_token_that_tokenreview_accepts_and_rbac_for_the_path(
    real_kube: KubeCluster, adapter: AggregatedAdapter
) -> None:
    reader = service_account_token(real_kube, "monitoring", "prometheus-k8s")
    unbound = service_account_token(real_kube, "monitoring", "unbound")
    scraped = adapter.get("/metrics", headers={"Authorization": f"Bearer {reader}"})
    assert scraped.status == 200, scraped.body
    assert b"queuescale_adapter_source_up" in scraped.body
    denied = adapter.get("/metrics", headers={"Authorization": f"Bearer {unbound}"})
    assert denied.status == 403, denied.body
    assert b"queuescale_adapter" not in denied.body
    assert adapter.get("/metrics").status == 401
    assert adapter.get("/metrics", headers={"Authorization": "Bearer not-a-token"}).status == 401


# ------------------------------------------------------------------------------------------- the real HPA


def _example_hpa() -> dict[str, Any]:
    """deploy/examples/hpa/hpa-trino-workers.yaml with only timings changed: a scale-down stabilization window
    of 6 s (600 s as written) and one pod per 1 s (per 120 s)."""
    hpa: dict[str, Any] = copy.deepcopy(
        yaml.safe_load((ROOT / "deploy" / "examples" / "hpa" / "hpa-trino-workers.yaml").read_text())
    )
    down = hpa["spec"]["behavior"]["scaleDown"]
    down["stabilizationWindowSeconds"] = 6
    for policy in down["policies"]:
        policy["periodSeconds"] = 1
    return hpa


def _worker_deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "trino-worker", "namespace": "trino"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "trino-worker"}},
            "template": {
                "metadata": {"labels": {"app": "trino-worker"}},
                "spec": {"containers": [{"name": "worker", "image": "trino:478"}]},
            },
        },
    }


def _hpa(cluster: KubeCluster) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(
        cluster.kubectl("get", "hpa", "trino-worker", "-n", "trino", "-o", "json").stdout
    )
    return got


def _condition(hpa: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in hpa.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def _replicas(cluster: KubeCluster) -> int:
    got = json.loads(cluster.kubectl("get", "deployment", "trino-worker", "-n", "trino", "-o", "json").stdout)
    return int(got["spec"]["replicas"])


@pytest.mark.timeout(240)
def test_the_real_hpa_scales_on_our_metrics_and_holds_when_the_source_goes_stale(
    real_kube: KubeCluster, adapter: AggregatedAdapter, trino: SandboxThread, tmp_path: Path
) -> None:
    real_kube.kubectl("create", "namespace", "trino", check=False)
    trino.set_queued(0)
    apply_objects(real_kube, tmp_path, "workers", [_worker_deployment(), _example_hpa()])
    try:

        def settled_at_one() -> bool:
            hpa = _hpa(real_kube)
            return _condition(hpa, "ScalingActive").get("status") == "True" and _replicas(real_kube) == 1

        wait_for("the HPA active at 1 replica", settled_at_one, 60)

        # 10 queued, none of them limit-bound to the adapter (no resource_groups configured): capacity-queued 10
        # against 4 per worker -> 3 workers; running 2 against 4 -> 1; required workers 1 against 1 -> 1.
        t0 = time.monotonic()
        trino.set_queued(10)
        wait_for("the HPA to scale up to 3", lambda: _replicas(real_kube) == 3, 60)
        up = time.monotonic() - t0
        hpa = _hpa(real_kube)
        assert hpa["status"]["desiredReplicas"] == 3
        assert _condition(hpa, "ScalingActive")["status"] == "True"
        values = {
            m["external"]["metric"]["name"]: m["external"]["current"]
            for m in hpa["status"].get("currentMetrics", [])
            if m["type"] == "External"
        }
        assert values["trino_capacity_queued_queries"]["averageValue"] in {"3334m", "3333m", "10"}, values

        t0 = time.monotonic()
        trino.set_queued(0)
        wait_for("the HPA to scale back down to 1", lambda: _replicas(real_kube) == 1, 60)
        down = time.monotonic() - t0
        # Not before the 6 s stabilization window, less one HPA sync period (2 s) for the last recommendation
        # of 3, which may predate the change.
        assert down >= 4, f"scaled down after {down:.1f} s, inside the stabilization window"
        assert _condition(_hpa(real_kube), "ScalingActive")["status"] == "True"

        trino.set_queued(10)
        wait_for("the HPA to scale up to 3 again", lambda: _replicas(real_kube) == 3, 60)

        # The coordinator goes away: after max_age_seconds (3 s) the adapter answers 503, the HPA cannot get its
        # metrics and holds its replicas, however long past its stabilization window.
        trino.stop()
        wait_for(
            "the adapter's 503 through kube-apiserver",
            lambda: (
                "ServiceUnavailable" in _raw(real_kube, METRIC_PATH)[1]
                or "503" in _raw(real_kube, METRIC_PATH)[1]
            ),
            30,
        )

        def inactive() -> dict[str, Any]:
            condition = _condition(_hpa(real_kube), "ScalingActive")
            return condition if condition.get("status") == "False" else {}

        condition = wait_for("ScalingActive=False", inactive, 30)
        assert condition["reason"] == "FailedGetExternalMetric", condition
        held_until = time.monotonic() + 12  # two stabilization windows, six HPA syncs
        while time.monotonic() < held_until:
            assert _replicas(real_kube) == 3
            time.sleep(0.5)
        hpa = _hpa(real_kube)
        assert _condition(hpa, "ScalingActive")["status"] == "False"
        assert hpa["status"]["desiredReplicas"] == 3
        print(f"real HPA: up in {up:.1f} s, down in {down:.1f} s")
    finally:
        real_kube.kubectl("delete", "hpa,deployment", "trino-worker", "-n", "trino", "--ignore-not-found")
