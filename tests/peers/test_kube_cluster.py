"""The real control plane of tests/peers/kube_cluster.py: it starts, tells its version, and runs pods on kwok.

Uses the session's shared cluster (``real_kube`` in conftest.py), which builds the binaries first if the
cache is missing; a failed build or start fails these tests, never skips them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.peers import kube_cluster
from tests.peers.conftest import KWOK_NODE

KUBE_VERSION = "v1.37.2"

pytestmark = pytest.mark.real_kube


@pytest.fixture
def cluster(real_kube: kube_cluster.KubeCluster) -> kube_cluster.KubeCluster:
    real_kube.check_running()
    return real_kube


def _wait(what: str, ok: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = ok()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.mark.timeout(240)
def test_ready_and_tells_its_version(cluster: kube_cluster.KubeCluster) -> None:
    status, body = cluster.get("/readyz")
    assert (status, body) == (200, b"ok")
    status, body = cluster.get("/version")
    version = json.loads(body)
    assert status == 200
    assert version["gitVersion"] == KUBE_VERSION
    assert (version["major"], version["minor"]) == ("1", KUBE_VERSION.split(".")[1])
    assert cluster.kubectl("version", "-o", "json").returncode == 0


@pytest.mark.timeout(240)
def test_kwok_node_ready_and_deployment_pods_running_ready_with_ips(
    cluster: kube_cluster.KubeCluster,
) -> None:
    from kubernetes import client

    cluster.wait_node_ready(KWOK_NODE)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "web:1", "resources": {"requests": {"cpu": "100m"}}}
                    ]
                },
            },
        },
    }
    with cluster.api_client() as api:
        client.AppsV1Api(api).create_namespaced_deployment("default", body=deployment)
        core = client.CoreV1Api(api)

        def running_ready() -> list[Any]:
            pods = core.list_namespaced_pod("default", label_selector="app=web").items
            good = [
                p
                for p in pods
                if p.status.phase == "Running"
                and p.status.pod_ip
                and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
            ]
            return good if len(good) == 3 else []

        pods = _wait("3 Running and Ready pods", running_ready, 90)
        assert all(p.spec.node_name == KWOK_NODE for p in pods)
        assert len({p.status.pod_ip for p in pods}) == 3
        apps = client.AppsV1Api(api)
        _wait(
            "the Deployment available",
            lambda: apps.read_namespaced_deployment("web", "default").status.ready_replicas == 3,
        )


@pytest.mark.timeout(120)
def test_endpoints_refuse_loopback(cluster: kube_cluster.KubeCluster) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "loopback", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 8443}]}],
    }
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "loopback", "namespace": "default"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"]}],
        "ports": [{"port": 8443}],
    }
    with cluster.api_client() as api:
        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(api).create_namespaced_endpoints("default", body=endpoints)
        assert refused.value.status == 422
        assert "loopback" in str(refused.value.body)
        with pytest.raises(ApiException) as refused:
            client.DiscoveryV1Api(api).create_namespaced_endpoint_slice("default", body=slice_)
        assert refused.value.status == 422
        assert "loopback" in str(refused.value.body)


@pytest.mark.timeout(120)
def test_user_kubeconfig_is_that_user(cluster: kube_cluster.KubeCluster) -> None:
    from kubernetes import client

    config = cluster.kubeconfig("alice", ["team-a"])
    with cluster.api_client(config) as api:
        review = client.AuthenticationV1Api(api).create_self_subject_review(
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
    assert review.status.user_info.username == "alice"
    assert "team-a" in review.status.user_info.groups


class _Recorder:
    """What the aggregated server saw: the client certificate's CN and the identity headers, per path."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []


def _start_aggregated_server(
    cluster: kube_cluster.KubeCluster, pki: Path, service: str, namespace: str
) -> tuple[Any, int, _Recorder, bytes]:
    """A tiny HTTPS server answering for external.metrics.k8s.io/v1beta1 on 127.0.0.1, with a serving
    certificate for ``<service>.<namespace>.svc`` and asking for a client certificate of the front-proxy CA."""
    import http.server
    import ssl
    import threading

    ca = kube_cluster._new_ca(pki, "adapter-ca")
    serving = kube_cluster._issue(
        ca,
        pki,
        "adapter",
        cn=f"{service}.{namespace}.svc",
        server=True,
        dns_names=[f"{service}.{namespace}.svc"],
    )
    recorder = _Recorder()
    group_version = "external.metrics.k8s.io/v1beta1"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
            cn = next(
                (v for rdn in (peer or {}).get("subject", ()) for k, v in rdn if k == "commonName"), None
            )
            recorder.requests.append(
                {
                    "path": self.path,
                    "cn": cn,
                    "user": self.headers.get("X-Remote-User"),
                    "groups": self.headers.get_all("X-Remote-Group") or [],
                }
            )
            path = self.path.split("?")[0]
            if path == f"/apis/{group_version}":
                body: dict[str, Any] = {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": group_version,
                    "resources": [
                        {
                            "name": "*",
                            "singularName": "",
                            "namespaced": True,
                            "kind": "ExternalMetricValueList",
                            "verbs": ["get"],
                        }
                    ],
                }
            elif path.startswith(f"/apis/{group_version}/namespaces/"):
                body = {
                    "kind": "ExternalMetricValueList",
                    "apiVersion": group_version,
                    "metadata": {},
                    "items": [
                        {
                            "metricName": path.rsplit("/", 1)[-1],
                            "metricLabels": {},
                            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "value": "10",
                        }
                    ],
                }
            else:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(serving.cert_file), str(serving.key_file))
    context.load_verify_locations(str(cluster.front_proxy_ca.cert_file))
    context.verify_mode = ssl.CERT_OPTIONAL
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1]), recorder, ca.pair.cert_file.read_bytes()


@pytest.mark.timeout(240)
def test_apiservice_backed_by_externalname_localhost(
    cluster: kube_cluster.KubeCluster, tmp_path: Path
) -> None:
    """REFERENCE.md §7: with aggregator routing off, an APIService whose Service is ExternalName ``localhost``
    reaches a server on loopback, which sees the front-proxy certificate and X-Remote-User/Group."""
    import base64

    from kubernetes import client

    server, port, recorder, ca_pem = _start_aggregated_server(cluster, tmp_path, "adapter", "default")
    try:
        with cluster.api_client() as api:
            client.CoreV1Api(api).create_namespaced_service(
                "default",
                body={
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "adapter"},
                    "spec": {"type": "ExternalName", "externalName": "localhost", "ports": [{"port": port}]},
                },
            )
            registration = client.ApiregistrationV1Api(api)
            registration.create_api_service(
                body={
                    "apiVersion": "apiregistration.k8s.io/v1",
                    "kind": "APIService",
                    "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
                    "spec": {
                        "group": "external.metrics.k8s.io",
                        "version": "v1beta1",
                        "service": {"name": "adapter", "namespace": "default", "port": port},
                        "caBundle": base64.b64encode(ca_pem).decode(),
                        "groupPriorityMinimum": 100,
                        "versionPriority": 100,
                    },
                }
            )

            def available() -> bool:
                status = registration.read_api_service("v1beta1.external.metrics.k8s.io").status
                return any(c.type == "Available" and c.status == "True" for c in status.conditions or [])

            _wait("the APIService Available", available, 90)
            rbac = client.RbacAuthorizationV1Api(api)
            rbac.create_cluster_role(
                body={
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": "external-metrics-reader"},
                    "rules": [
                        {"apiGroups": ["external.metrics.k8s.io"], "resources": ["*"], "verbs": ["list"]}
                    ],
                }
            )
            rbac.create_cluster_role_binding(
                body={
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": "external-metrics-reader-team-b"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "external-metrics-reader",
                    },
                    "subjects": [
                        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "team-b"}
                    ],
                }
            )
            # A GET of /namespaces/<ns>/<metric> is verb "list" (no name). RBAC answers from an informer's cache:
            # the binding may take a moment to count.
            bob = cluster.client_cert("bob", ["team-b"])
            path = "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queued?labelSelector=a%3Db"
            _wait("bob allowed", lambda: cluster.get(path, client=bob)[0] != 403, 30)
            status, body = cluster.get(path, client=bob)
            assert status == 200, body
            assert json.loads(body)["kind"] == "ExternalMetricValueList"
            seen = [r for r in recorder.requests if "/namespaces/default/queued" in r["path"]]
            assert seen, recorder.requests
            assert seen[-1]["cn"] == kube_cluster.FRONT_PROXY_CLIENT_CN
            assert seen[-1]["user"] == "bob"
            assert "team-b" in seen[-1]["groups"]

            # The real HPA reads the metric through the aggregator, as its own service account, and scales a
            # Deployment whose pods kwok keeps Running and Ready: 10 queued against a Value target of 2 per
            # replica... capped at maxReplicas 4.
            cluster.add_node("kwok-node-hpa")
            client.AppsV1Api(api).create_namespaced_deployment(
                "default",
                body={
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "workers"},
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": {"app": "workers"}},
                        "template": {
                            "metadata": {"labels": {"app": "workers"}},
                            "spec": {"containers": [{"name": "w", "image": "w:1"}]},
                        },
                    },
                },
            )
            autoscaling = client.AutoscalingV2Api(api)
            autoscaling.create_namespaced_horizontal_pod_autoscaler(
                "default",
                body={
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": "workers"},
                    "spec": {
                        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "workers"},
                        "minReplicas": 1,
                        "maxReplicas": 4,
                        "metrics": [
                            {
                                "type": "External",
                                "external": {
                                    "metric": {
                                        "name": "queued",
                                        "selector": {"matchLabels": {"queue": "etl"}},
                                    },
                                    "target": {"type": "Value", "value": "2"},
                                },
                            }
                        ],
                    },
                },
            )
            apps = client.AppsV1Api(api)
            _wait(
                "the HPA to scale workers to 4",
                lambda: apps.read_namespaced_deployment("workers", "default").spec.replicas == 4,
                90,
            )
            hpa_reads = [
                r for r in recorder.requests if r["user"] and "horizontal-pod-autoscaler" in r["user"]
            ]
            assert hpa_reads, recorder.requests
            assert hpa_reads[0]["user"] == "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
            assert "/namespaces/default/queued?labelSelector=queue%3Detl" in hpa_reads[0]["path"]
    finally:
        # The cluster is the session's: leave no APIService (the adapter tests register their own), HPA or
        # Deployment behind.
        cluster.kubectl("delete", "apiservice", "v1beta1.external.metrics.k8s.io", "--ignore-not-found")
        cluster.kubectl("delete", "hpa,deployment,service", "workers", "-n", "default", "--ignore-not-found")
        cluster.kubectl("delete", "service", "adapter", "-n", "default", "--ignore-not-found")
        server.shutdown()
        server.server_close()
