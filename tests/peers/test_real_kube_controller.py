"""Our controller against the real kube-apiserver, under our own RBAC only (issue 13 item 4).

One controller world for the module (kube_controller.py): the CRD and the controller's RBAC as rendered from
deploy/, a ScalingPolicy adapted from deploy/examples/policies over a kwok Deployment, our adapter behind the
real aggregation layer on the emulated coordinator. The tests run in order: scale-up, an HPA conflict,
leader fail-over, then a drain before a scale-down. Any 403 (or warning) in a controller's log fails the test
that saw it.
"""

from __future__ import annotations

import base64
import math
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from autoscaler.controller.actuator import POD_DELETION_COST
from lab.sandbox.tls import self_signed
from lab.sandbox.trino import TrinoAuth
from tests.peers.kube_adapter import SandboxThread, apply_objects, wait_for
from tests.peers.kube_cluster import KubeCluster
from tests.peers.kube_controller import (
    CA_SECRET,
    GROUP,
    LEASE_SECONDS,
    MAX_REPLICAS,
    NAMESPACE,
    PLURAL,
    POLICY,
    RETRY_PERIOD,
    SECRET,
    TRINO_PASSWORD,
    VERSION,
    WORKER_SERVER_NAME,
    WORKLOAD,
    ControllerProcess,
    ControllerWorld,
    EmulatedKubelet,
)

pytestmark = pytest.mark.real_kube


@pytest.fixture(scope="module")
def world(real_kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerWorld]:
    with ControllerWorld.start(real_kube, tmp_path_factory.mktemp("controller")) as made:
        yield made


@pytest.fixture(scope="module")
def leader(world: ControllerWorld) -> ControllerProcess:
    first = world.start_controller("ctl-a")
    wait_for(
        "ctl-a holding the Lease", lambda: world.lease_holder() == "ctl-a" if _lease(world) else False, 30
    )
    return first


def _lease(world: ControllerWorld) -> bool:
    try:
        world.lease_holder()
    except kubernetes.client.ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


def _no_forbidden(world: ControllerWorld) -> None:
    refused = [line for ctl in world.controllers for line in ctl.forbidden()]
    assert not refused, "the server refused calls our RBAC should allow:\n" + "\n".join(refused[:20])
    problems = [line for ctl in world.controllers for line in ctl.problems()]
    assert not problems, "the controller logged problems:\n" + "\n".join(problems[:20])


def test_scales_up_through_the_scale_subresource_and_writes_status_and_events(
    world: ControllerWorld, leader: ControllerProcess
) -> None:
    assert world.replicas() == 1
    started = time.monotonic()
    world.trino.set_queued(10)  # 10 queued / 4 per worker -> 3
    try:
        world.wait_replicas(3, timeout=30)
    except AssertionError as err:
        raise AssertionError(f"{err}\n{world.logs()}") from err
    took = time.monotonic() - started
    # kwok gave the pods loopback IPs from the node's spec.podCIDR: the actuator's probes are refused at once.
    wait_for("3 pods with IPs", lambda: len([ip for ip in world.pod_ips() if ip]) == 3, 20)
    assert all(ip.startswith("127.0.1.") for ip in world.pod_ips()), world.pod_ips()

    def settled() -> bool:
        status = world.policy_status()
        return (
            world.condition("Ready").get("status") == "True"
            and world.condition("ScalingActive").get("status") == "True"
            and status.get("desiredReplicas") == 3
            and status.get("currentReplicas") == 3
        )

    wait_for("the policy's status at 3 replicas, Ready and ScalingActive", settled, 20)
    status = world.policy_status()
    assert status.get("lastScaleTime"), status
    assert status.get("observedGeneration") == 1, status
    wait_for("an Event about the scale-up", lambda: world.events(), 20)
    events = world.events()
    assert all(e["source"].get("component") or e.get("reportingComponent") for e in events), events
    assert leader.alive(), leader.log_text()[-3000:]
    _no_forbidden(world)
    print(f"scale-up 1 -> 3 on the real server: {took:.1f} s; events: {[e['reason'] for e in events]}")


def test_an_hpa_on_the_same_target_is_reported_as_a_conflict_and_not_acted_on(
    world: ControllerWorld, leader: ControllerProcess
) -> None:
    autoscaling = kubernetes.client.AutoscalingV2Api(world.api)
    hpa: Any = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "also-trino-worker", "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": WORKLOAD},
            # Held at 3 so the real HPA controller leaves the replicas where they are.
            "minReplicas": 3,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": "trino_queued_queries",
                            "selector": {"matchLabels": {"cluster": "adhoc"}},
                        },
                        "target": {"type": "AverageValue", "averageValue": "4"},
                    },
                }
            ],
        },
    }
    autoscaling.create_namespaced_horizontal_pod_autoscaler(NAMESPACE, hpa)
    try:

        def conflict() -> bool:
            cond = world.condition("ScalingActive")
            return cond.get("status") == "False" and cond.get("reason") == "ConflictingHPA"

        wait_for("ScalingActive=False, reason ConflictingHPA", conflict, 20)
        assert "also-trino-worker" in world.condition("ScalingActive").get("message", "")
        world.trino.set_queued(20)  # the policy alone would now want 5
        # Not acted on: several passes (0.5 s each) and adapter polls (0.25 s) go by at 3.
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert world.replicas() == 3, "the controller scaled a target an HPA owns"
            assert conflict(), world.condition("ScalingActive")
            time.sleep(0.25)
        assert any(e["reason"] == "ConflictingHPA" for e in world.events()), world.events()
    finally:
        autoscaling.delete_namespaced_horizontal_pod_autoscaler("also-trino-worker", NAMESPACE)
    # Without the HPA the policy acts again.
    world.wait_replicas(5, timeout=30)
    wait_for("ScalingActive=True again", lambda: world.condition("ScalingActive").get("status") == "True", 20)
    _no_forbidden(world)


def test_leader_election_two_processes_one_killed(world: ControllerWorld, leader: ControllerProcess) -> None:
    follower = world.start_controller("ctl-b")
    # The follower is up and waiting (it read the Lease, found it held): still ctl-a's after a few retries.
    wait_for("ctl-b started", lambda: follower.log_text().strip() != "", 20)
    time.sleep(3 * RETRY_PERIOD)  # a few of the follower's attempts at the Lease go by
    assert follower.alive(), follower.log_text()[-3000:]
    assert world.lease_holder() == "ctl-a"
    leader.kill()
    killed = time.monotonic()
    wait_for(
        "ctl-b holding the Lease", lambda: world.lease_holder() == "ctl-b", LEASE_SECONDS + RETRY_PERIOD + 10
    )
    took = time.monotonic() - killed
    assert took <= LEASE_SECONDS + RETRY_PERIOD + 2, f"fail-over took {took:.1f} s"
    world.trino.set_queued(30)  # 30 / 4 -> 8, capped at MAX_REPLICAS
    world.wait_replicas(MAX_REPLICAS, timeout=30)
    wait_for(
        "the new leader's status at max",
        lambda: world.policy_status().get("desiredReplicas") == MAX_REPLICAS,
        20,
    )
    _no_forbidden(world)
    print(f"fail-over after SIGKILL: {took:.1f} s")


def test_drain_before_scale_down_on_the_real_server(
    world: ControllerWorld, leader: ControllerProcess
) -> None:
    """Scale-down drains first: the chosen pod's worker (reached at its kwok pod IP, as in a cluster) is
    drained, its pod gets the lowest pod-deletion-cost, and only then are the replicas lowered, so the real
    Deployment controller removes that pod and no other."""
    assert world.replicas() == MAX_REPLICAS
    world.trino.call(lambda sb: setattr(sb.cluster, "grace_period", 0.5))
    with EmulatedKubelet(world) as kubelet:
        wait_for(
            f"{MAX_REPLICAS} workers served at their pod IPs", lambda: len(kubelet.served) == MAX_REPLICAS, 20
        )
        before = set(kubelet.served)
        costs: dict[str, str] = {}
        custom = kubernetes.client.CustomObjectsApi(world.api)
        # One worker too many (the 10-minute stabilization holds the 6 meanwhile). The group runs nothing
        # (its limit is 0): the queue stays while the model's clock moves, and no task holds a drain back.
        wanted = 4 * (MAX_REPLICAS - 1)
        world.trino.set_queued(0)
        world.trino.call(lambda sb: setattr(sb.cluster.root_groups()[0], "hard_concurrency_limit", 0))
        world.trino.call(lambda sb: sb.cluster.submit_many("global", wanted, work_seconds=1.0))
        wait_for(f"the adapter serving {wanted} queued", lambda: world.queued_metric() == wanted, 20)
        # The policy's watch sees the change: no stabilization any more, and no password (the emulated
        # workers, as Trino's insecure authentication, refuse a password over HTTP: 401).
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            NAMESPACE,
            PLURAL,
            POLICY,
            {
                "spec": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
                    "target": {"trino": {"credentialsSecret": None}},
                }
            },
        )
        started = time.monotonic()

        def scaled_down() -> bool:
            for pod in world.pods():
                meta = pod.metadata
                cost = (meta.annotations or {}).get(POD_DELETION_COST) if meta else None
                if meta is not None and cost is not None:
                    costs[str(meta.name)] = cost
            return world.replicas() == MAX_REPLICAS - 1 and len(kubelet.left) == 1

        try:
            wait_for("one pod drained and removed", scaled_down, 30)
        except AssertionError as err:
            raise AssertionError(f"{err}; costs {costs}; left {kubelet.left}\n{world.logs()}") from err
        took = time.monotonic() - started
        ((gone, state),) = kubelet.left.items()
        assert gone in before
        assert gone in costs, f"{gone} left without a pod-deletion-cost; costs seen: {costs}"
        assert state in {"DRAINED", "GONE", "SHUTTING_DOWN"}, f"{gone}'s worker was {state} when its pod went"
        wait_for(f"{MAX_REPLICAS - 1} workers left", lambda: len(kubelet.served) == MAX_REPLICAS - 1, 20)
        assert all(kubelet.state(name) == "ACTIVE" for name in kubelet.served), {
            name: kubelet.state(name) for name in kubelet.served
        }
        wait_for(
            "observedGeneration 2 in the status",
            lambda: world.policy_status().get("observedGeneration") == 2,
            20,
        )
    _no_forbidden(world)
    print(f"drain + scale-down {MAX_REPLICAS} -> {MAX_REPLICAS - 1}: {took:.1f} s; {gone} was {state}")


def test_drain_over_https_with_a_password_on_the_real_server(
    world: ControllerWorld, leader: ControllerProcess, tmp_path: Path
) -> None:
    """The same drain as a cluster with Trino password authentication runs it: the workers serve HTTPS and
    refuse a state change without the password (401), their certificate names the workers' Service, not
    the pod IPs the controller dials, and its CA is in a Secret the controller's Role names.
    The policy gets an https coordinator, the credentials Secret and ``workerTls`` (caSecret, serverName):
    the actuator reaches each pod's worker at ``https://<pod IP>:<port named https>`` with the password,
    checks the certificate against the Secret's CA under the Service name, drains one and scales down."""
    start = MAX_REPLICAS - 1
    assert world.replicas() == start
    certificate = self_signed(tmp_path / "worker-tls", "trino-worker", dns_names=[WORKER_SERVER_NAME])
    auth = TrinoAuth(mode="password", passwords={"admin": TRINO_PASSWORD}, write_users=frozenset({"admin"}))
    secure = SandboxThread(workers=0, auth=auth, tls=certificate)
    try:
        secure.call(lambda sb: setattr(sb.cluster, "grace_period", 0.5))
        assert secure.url.startswith("https://"), secure.url
        ca = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": CA_SECRET, "namespace": NAMESPACE},
            "stringData": {"ca.crt": certificate.ca_pem},
        }
        apply_objects(world.cluster, world.workdir, "worker-ca", [ca])
        with EmulatedKubelet(world, trino=secure, port=world.worker_tls_port) as kubelet:
            wait_for(f"{start} workers served over HTTPS", lambda: len(kubelet.served) == start, 20)
            before = set(kubelet.served)
            _refuses_what_the_controller_must_not_do(world, kubelet)
            custom = kubernetes.client.CustomObjectsApi(world.api)
            current: Any = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, POLICY)
            metrics = current["spec"]["metrics"]
            queued = world.queued_metric()
            assert queued is not None
            # One worker fewer for the same queue: a higher per-worker target.
            per_worker = math.ceil(queued / (start - 1))
            assert math.ceil(queued / per_worker) == start - 1, (queued, per_worker)
            metrics[0]["external"]["target"]["averageValue"] = str(per_worker)
            custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                NAMESPACE,
                PLURAL,
                POLICY,
                {
                    "spec": {
                        "metrics": metrics,
                        "target": {
                            "trino": {
                                "coordinatorUrl": secure.url,
                                "credentialsSecret": {"name": SECRET, "key": "password"},
                                "workerTls": {
                                    "caSecret": {"name": CA_SECRET, "key": "ca.crt"},
                                    "serverName": WORKER_SERVER_NAME,
                                },
                            }
                        },
                    }
                },
            )
            started = time.monotonic()
            costs: dict[str, str] = {}

            def scaled_down() -> bool:
                for pod in world.pods():
                    meta = pod.metadata
                    cost = (meta.annotations or {}).get(POD_DELETION_COST) if meta else None
                    if meta is not None and cost is not None:
                        costs[str(meta.name)] = cost
                return world.replicas() == start - 1 and len(kubelet.left) == 1

            try:
                wait_for("one pod drained over HTTPS and removed", scaled_down, 30)
            except AssertionError as err:
                raise AssertionError(f"{err}; costs {costs}; left {kubelet.left}\n{world.logs()}") from err
            took = time.monotonic() - started
            ((gone, state),) = kubelet.left.items()
            assert gone in before
            assert gone in costs, f"{gone} left without a pod-deletion-cost; costs seen: {costs}"
            # Only an authenticated request over TLS can have changed a worker's state.
            assert state in {"DRAINED", "GONE", "SHUTTING_DOWN"}, f"{gone}'s worker was {state}"
            wait_for(f"{start - 1} workers left", lambda: len(kubelet.served) == start - 1, 20)
            assert all(kubelet.state(name) == "ACTIVE" for name in kubelet.served), {
                name: kubelet.state(name) for name in kubelet.served
            }
    finally:
        secure.stop()
    _no_forbidden(world)
    print(f"drain over HTTPS with a password {start} -> {start - 1}: {took:.1f} s; {gone} was {state}")


def _refuses_what_the_controller_must_not_do(world: ControllerWorld, kubelet: EmulatedKubelet) -> None:
    """The emulated workers behind the pod IPs hold Trino's line: a certificate that names the Service,
    not the pod IP, and no state change without the password."""
    name = next(iter(kubelet.served))
    ip, _ = kubelet.served[name]
    pem = world.cluster.kubectl(
        "get", "secret", CA_SECRET, "-n", NAMESPACE, "-o", "jsonpath={.data.ca\\.crt}"
    ).stdout
    context = ssl.create_default_context(cadata=base64.b64decode(pem).decode())
    with (
        socket.create_connection((ip, world.worker_tls_port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError) as caught,
    ):
        context.wrap_socket(raw, server_hostname=ip).close()
    assert "IP address mismatch" in str(caught.value), caught.value
    body = b'"DRAINING"'
    request = (
        f"PUT /v1/info/state HTTP/1.1\r\nHost: {ip}:{world.worker_tls_port}\r\n"
        f"Content-Type: application/json\r\nX-Trino-User: admin\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    with (
        socket.create_connection((ip, world.worker_tls_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=WORKER_SERVER_NAME) as tls,
    ):
        tls.sendall(request)
        answer = b""
        while b"\r\n" not in answer and (chunk := tls.recv(4096)):
            answer += chunk
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"401", answer[:200]
    assert kubelet.state(name) == "ACTIVE"
