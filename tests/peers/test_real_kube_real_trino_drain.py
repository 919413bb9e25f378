"""Our controller drains a real Trino 476 worker behind a kwok pod on the real kube-apiserver (issue 13 §4).

The world is kube_controller's ``ControllerWorld``: the controller as a subprocess under deploy/'s RBAC only,
the ScalingPolicy from deploy/examples, the queue it scales on from our adapter behind the real aggregation
layer (on the emulated coordinator, so the test sets the queue). The workers are real: once the controller
has scaled the Deployment to two kwok pods, a Trino cluster of this module's own starts whose workers bind
the loopback IPs kwok gave the pods (``node.bind-ip``) on the template's ``http`` port and announce them
(``node.internal-address``). So the coordinator knows each worker as ``http://<pod IP>:<port>``, and the
actuator reaches it there, as in a cluster, with no relay in between.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import kubernetes.client
import pytest

from autoscaler.controller.actuator import POD_DELETION_COST
from tests.peers.kube_adapter import wait_for
from tests.peers.kube_cluster import KubeCluster
from tests.peers.kube_controller import (
    AVERAGE_VALUE,
    GROUP,
    NAMESPACE,
    PLURAL,
    POLICY,
    VERSION,
    ControllerProcess,
    ControllerWorld,
)
from tests.peers.real_trino_kube import long_queries
from tests.peers.trino_cluster import ADMIN, TRINO_VERSION, TrinoCluster, TrinoNode, start_trino_cluster

pytestmark = [pytest.mark.real_kube, pytest.mark.real_trino, pytest.mark.timeout(900)]

WORKERS = 2
IDENTITY = "ctl-real-trino"


@pytest.fixture(scope="module")
def world(real_kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerWorld]:
    with ControllerWorld.start(real_kube, tmp_path_factory.mktemp("controller-real-trino")) as made:
        yield made


def _holder(world: ControllerWorld) -> str | None:
    try:
        return world.lease_holder()
    except kubernetes.client.ApiException as err:
        if err.status == 404:
            return None
        raise


@pytest.fixture(scope="module")
def leader(world: ControllerWorld) -> ControllerProcess:
    ctl = world.start_controller(IDENTITY)
    # An earlier module's controller may still hold the Lease until it expires.
    wait_for(f"{IDENTITY} holding the Lease", lambda: _holder(world) == IDENTITY, 30)
    return ctl


@pytest.fixture(scope="module")
def behind_pods(
    world: ControllerWorld, leader: ControllerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, TrinoNode], TrinoCluster]]:
    """Two real workers, one per kwok pod of the Deployment, the controller having scaled it to two."""
    world.trino.set_queued(AVERAGE_VALUE * WORKERS)
    try:
        world.wait_replicas(WORKERS, timeout=30)
    except AssertionError as err:
        raise AssertionError(f"{err}\n{world.logs()}") from err

    def running() -> dict[str, str]:
        ips = {
            str(p.metadata.name): str(p.status.pod_ip)
            for p in world.pods()
            if p.metadata and p.status and p.status.phase == "Running" and p.status.pod_ip
        }
        return ips if len(ips) == WORKERS else {}

    ips = wait_for(f"{WORKERS} pods Running with IPs", running, 30)
    assert all(ip.startswith("127.0.1.") for ip in ips.values()), ips
    # Started only now: a worker must know its pod's IP before its JVM starts.
    cluster = start_trino_cluster(
        tmp_path_factory.mktemp("trino-behind-pods"),
        workers=WORKERS,
        worker_hosts=sorted(ips.values()),
        worker_port=world.worker_port,
    )
    try:
        by_pod = {name: next(w for w in cluster.workers if w.host == ip) for name, ip in ips.items()}
        yield by_pod, cluster
    finally:
        cluster.stop()


def _counter(trino: TrinoCluster, name: str) -> float:
    full = f"trino_execution_name_QueryManager_{name}"
    return trino.metric_values(trino.coordinator, full + "$").get(full, 0.0)


def test_the_controller_drains_a_real_worker_behind_a_kwok_pod(
    world: ControllerWorld,
    leader: ControllerProcess,
    behind_pods: tuple[dict[str, TrinoNode], TrinoCluster],
) -> None:
    """A scale-down from 2 to 1 while a query runs on both workers: the controller drains one real worker
    at its pod's IP (DRAINING, DRAINED once the query's tasks there end), gives its pod the lowest
    pod-deletion-cost, lowers the replicas, and the ReplicaSet controller removes exactly that pod. The query
    finishes, no query fails, the drained worker stays DRAINED (until the test stops it as a kubelet would)
    and the other one ACTIVE and serving."""
    by_pod, trino = behind_pods
    port = world.worker_port
    # As in a cluster: the coordinator lists each worker at its pod's address, which the worker says it has.
    rows = trino.query(
        "SELECT http_uri, state FROM system.runtime.nodes WHERE NOT coordinator ORDER BY http_uri", user=ADMIN
    )
    assert rows == sorted([f"http://{n.host}:{port}", "active"] for n in by_pod.values()), rows
    for node in by_pod.values():
        status = trino.request(node, "GET", "/v1/status", user=ADMIN).json()
        assert status["internalAddress"] == node.host, status

    # Splits on both workers, each taking 15 s: whichever worker is chosen has work while it drains.
    (query,) = long_queries(trino, "behind_pods", "15s", count=1)
    custom = kubernetes.client.CustomObjectsApi(world.api)
    # The policy now names the real coordinator and version; no password: plain HTTP (Trino refuses one
    # there, 401) and X-Trino-User admin may write system information on this cluster.
    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        POLICY,
        {
            "spec": {
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
                "target": {
                    "trino": {
                        "coordinatorUrl": trino.coordinator.http_url,
                        "version": TRINO_VERSION,
                        "credentialsSecret": None,
                    }
                },
            }
        },
    )
    world.trino.set_queued(0)  # one worker wanted: MIN_REPLICAS
    started = time.monotonic()
    states: dict[str, list[str]] = {name: [] for name in by_pod}
    costs: dict[str, str] = {}
    running_when_draining: dict[str, bool] = {}
    gone: set[str] = set()
    deadline = started + 90
    while True:
        for name, node in by_pod.items():
            state = trino.get_state(node)
            if not states[name] or states[name][-1] != state:
                states[name].append(state)
            if state == "DRAINING":
                running_when_draining.setdefault(name, not query.done)
        present = set()
        for pod in world.pods():
            meta = pod.metadata
            if meta is None or meta.deletion_timestamp is not None:
                continue
            present.add(str(meta.name))
            cost = (meta.annotations or {}).get(POD_DELETION_COST)
            if cost is not None:
                costs[str(meta.name)] = cost
        gone = set(by_pod) - present
        if gone and world.replicas() == 1:
            break
        assert time.monotonic() < deadline, (
            f"no pod drained and removed: {states}, costs {costs}\n{world.logs()}"
        )
        time.sleep(0.2)
    took = time.monotonic() - started

    (drained,) = gone
    (kept,) = set(by_pod) - gone
    assert drained in costs, f"{drained} left without a pod-deletion-cost; costs seen: {costs}"
    assert states[drained] == ["ACTIVE", "DRAINING", "DRAINED"], states
    assert running_when_draining[drained], "the drain began only after the query had ended"
    assert states[kept] == ["ACTIVE"], states
    assert query.result(120) == [[2 * WORKERS]]
    assert trino.get_state(by_pod[drained]) == "DRAINED"
    assert trino.get_state(by_pod[kept]) == "ACTIVE"
    assert sorted(str(p.metadata.name) for p in world.pods() if p.metadata) == [kept]
    wait_for(
        "a ScaledDown Event naming the drained pod",
        lambda: any(e["reason"] == "ScaledDown" and drained in e.get("message", "") for e in world.events()),
        20,
    )
    # The coordinator, 5-8 s behind the workers (TRINO_FACTS §6), then schedules on the kept worker only.
    wait_for(
        "the coordinator using only the kept worker",
        lambda: trino.active_workers() == [by_pod[kept].node_id],
        30,
    )
    assert trino.get_state(by_pod[drained]) == "DRAINED"
    # What a kubelet does once the pod is gone (kwok does not): stop the container. A drained worker has
    # nothing left to lose, so queries go on on the kept worker.
    trino.kill(by_pod[drained], signal.SIGTERM)
    assert trino.query("SELECT count(*) FROM tpch.tiny.nation") == [[25]]
    assert trino.get_state(by_pod[kept]) == "ACTIVE"
    # Every query on this cluster is the test's own; the only failures allowed are the cancels with which
    # long_queries retries a scan that missed a worker.
    failed, canceled = _counter(trino, "FailedQueries"), _counter(trino, "CanceledQueries")
    assert failed == canceled, trino.metric_values(
        trino.coordinator, "QueryManager_.*(Failed|Canceled|Failures)"
    )
    refused = leader.forbidden()
    assert not refused, "the server refused calls our RBAC should allow:\n" + "\n".join(refused[:20])
    problems = leader.problems()
    assert not problems, "the controller logged problems:\n" + "\n".join(problems[:20])
    print(
        f"drain of a real worker behind a kwok pod + scale-down 2 -> 1: {took:.1f} s; {drained} drained; "
        f"Trino started in {trino.startup_seconds:.1f} s; failed queries {failed:.0f} ({canceled:.0f} cancelled)"
    )
