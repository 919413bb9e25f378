"""One contract, two peers (issue 13 item 5): behaviour of the Kubernetes API the controller relies on,
checked against the sandbox (lab/sandbox/kube*.py) and the real kube-apiserver by the same tests.

The ``peer`` fixture gives an official-client ``ApiClient`` (admin) and a fresh namespace on either peer; the
real one is marked ``real_kube`` (one shared cluster), the sandbox one runs everywhere.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kubernetes.client
import kubernetes.watch
import pytest
import yaml
from kubernetes.client import V1Scale
from kubernetes.client.exceptions import ApiException

from autoscaler.policy.schema import CRD_PATH
from lab.sandbox.kube import KubeSandbox, client_for
from lab.sandbox.serve import Served, serve
from tests.peers.kube_adapter import wait_for
from tests.peers.kube_cluster import KubeCluster

GROUP, VERSION, PLURAL = "queuescale.io", "v1alpha1", "scalingpolicies"
_names = itertools.count()


@dataclass
class Peer:
    kind: str
    api: kubernetes.client.ApiClient
    namespace: str
    forget_history: Callable[[], None]
    """Make the store forget the changes so far, as a long-running server's does (etcd compaction)."""

    def other_namespace(self) -> str:
        """A second namespace, created where namespaces are objects."""
        name = f"{self.namespace}-other"
        if self.kind == "real":
            body: Any = {"metadata": {"name": name}}
            kubernetes.client.CoreV1Api(self.api).create_namespace(body)
        return name


class SandboxServer:
    """The Kubernetes API sandbox served from a thread of its own, so blocking client calls can reach it."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.served: Served | None = None
        self.sandbox = KubeSandbox()
        self._thread = threading.Thread(target=self._run, name="kube-sandbox", daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the Kubernetes sandbox did not start within 30 s"
        assert self.served is not None, "the Kubernetes sandbox did not start"

    def _run(self) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()
            try:
                self.served = await serve(self.sandbox.app())
            finally:
                self._ready.set()
            await self._stop.wait()
            await self.served.stop()

        self._loop.run_until_complete(main())
        self._loop.close()

    def compact(self) -> None:
        """The sandbox's compaction, on its own event loop's thread."""

        async def compact() -> None:
            self.sandbox.compact()

        asyncio.run_coroutine_threadsafe(compact(), self._loop).result(30)

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer()
    try:
        yield server
    finally:
        server.stop()


def _install_crd(api: kubernetes.client.ApiClient) -> None:
    crd = yaml.safe_load(CRD_PATH.read_text())
    ext = kubernetes.client.ApiextensionsV1Api(api)
    try:
        ext.create_custom_resource_definition(crd)
    except ApiException as err:
        if err.status != 409:
            raise

    def established() -> bool:
        got = ext.read_custom_resource_definition(crd["metadata"]["name"])
        conditions = (got.status.conditions if got.status else None) or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_for("the ScalingPolicy CRD Established", established, 30)


@pytest.fixture(params=["sandbox", pytest.param("real", marks=pytest.mark.real_kube)])
def peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    namespace = f"contract-{next(_names)}"
    forget: Callable[[], None]
    if request.param == "real":
        cluster: KubeCluster = request.getfixturevalue("real_kube")
        api = cluster.api_client()

        def forget() -> None:
            _compact_etcd(cluster)

    else:
        server: SandboxServer = request.getfixturevalue("sandbox_server")
        assert server.served is not None
        api = client_for(server.served.url)
        forget = server.compact
    try:
        if request.param == "real":
            # The sandbox has no Namespace objects: any namespace exists there.
            body: Any = {"metadata": {"name": namespace}}
            kubernetes.client.CoreV1Api(api).create_namespace(body)
        _install_crd(api)
        yield Peer(str(request.param), api, namespace, forget)
    finally:
        api.close()


def _compact_etcd(cluster: KubeCluster) -> None:
    """etcd compaction at its current revision, through etcd's JSON gateway (kube-apiserver does the same
    every 5 minutes by default)."""
    url = f"http://127.0.0.1:{cluster.ports['etcd']}/v3/kv/range"
    asked = urllib.request.Request(url, data=json.dumps({"key": "AA=="}).encode(), method="POST")
    with urllib.request.urlopen(asked, timeout=10) as answer:
        revision = int(json.load(answer)["header"]["revision"])
    url = f"http://127.0.0.1:{cluster.ports['etcd']}/v3/kv/compaction"
    asked = urllib.request.Request(url, data=json.dumps({"revision": revision}).encode(), method="POST")
    with urllib.request.urlopen(asked, timeout=30) as answer:
        answer.read()


def _status(err: ApiException) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(err.body or "{}")
    return doc


def test_a_stale_lease_update_is_409_and_one_without_resource_version_wins(peer: Peer) -> None:
    """What leader election relies on: of two replicas that read the same Lease, the second write loses."""
    coord = kubernetes.client.CoordinationV1Api(peer.api)
    now = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    lease = kubernetes.client.V1Lease(
        metadata=kubernetes.client.V1ObjectMeta(name="queuescale-controller"),
        spec=kubernetes.client.V1LeaseSpec(
            holder_identity="a", lease_duration_seconds=15, acquire_time=now, renew_time=now
        ),
    )
    created = coord.create_namespaced_lease(peer.namespace, lease)
    assert created.spec is not None
    assert created.spec.renew_time == now
    first = coord.read_namespaced_lease("queuescale-controller", peer.namespace)
    second = coord.read_namespaced_lease("queuescale-controller", peer.namespace)
    assert first.spec is not None
    assert second.spec is not None
    first.spec.holder_identity = "b"
    coord.replace_namespaced_lease("queuescale-controller", peer.namespace, first)
    second.spec.holder_identity = "c"
    with pytest.raises(ApiException) as caught:
        coord.replace_namespaced_lease("queuescale-controller", peer.namespace, second)
    assert caught.value.status == 409
    status = _status(caught.value)
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on leases.coordination.k8s.io "queuescale-controller": the object has '
        "been modified; please apply your changes to the latest version and try again"
    )
    # Unlike most built-in types, a Lease refuses an update without a resourceVersion (its strategy does not
    # allow unconditional updates): no replica can take a Lease by writing blindly.
    assert second.metadata is not None
    second.metadata.resource_version = None
    with pytest.raises(ApiException) as caught:
        coord.replace_namespaced_lease("queuescale-controller", peer.namespace, second)
    assert caught.value.status == 422
    assert _status(caught.value)["message"] == (
        'leases.coordination.k8s.io "queuescale-controller" is invalid: metadata.resourceVersion: '
        "Invalid value: 0: must be specified for an update"
    )
    got = coord.read_namespaced_lease("queuescale-controller", peer.namespace)
    assert got.spec is not None
    assert got.spec.holder_identity == "b"
    with pytest.raises(ApiException) as caught:
        coord.create_namespaced_lease(peer.namespace, lease)
    assert _status(caught.value)["reason"] == "AlreadyExists"


def _deployment(name: str, replicas: int) -> Any:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                # No node matches: the pods stay Pending on either peer (nothing here needs them).
                "spec": {
                    "nodeSelector": {"queuescale.io/contract": "nowhere"},
                    "containers": [{"name": "c", "image": "example/worker:1"}],
                },
            },
        },
    }


def test_the_scale_subresource_answers_and_refuses_a_stale_resource_version(peer: Peer) -> None:
    """What the actuators rely on: the scale subresource's selector, PUT with its resourceVersion, and 409."""
    apps = kubernetes.client.AppsV1Api(peer.api)
    apps.create_namespaced_deployment(peer.namespace, _deployment("workers", 2))
    scale = apps.read_namespaced_deployment_scale("workers", peer.namespace)
    assert scale.spec is not None
    assert scale.spec.replicas == 2
    assert scale.status is not None

    def selector() -> str | None:
        status = apps.read_namespaced_deployment_scale("workers", peer.namespace).status
        return status.selector if status else None

    wait_for("the scale's status selector", lambda: selector() == "app=workers", 20)
    # On the real server the Deployment controller's status writes move the Deployment's resourceVersion,
    # which is the scale's: a read-modify-write may lose to them (409) and is retried, as the controller does.
    stale = scale.metadata.resource_version if scale.metadata else None

    def put_four() -> V1Scale | None:
        fresh = apps.read_namespaced_deployment_scale("workers", peer.namespace)
        assert fresh.spec is not None
        fresh.spec.replicas = 4
        try:
            return apps.replace_namespaced_deployment_scale("workers", peer.namespace, fresh)
        except ApiException as err:
            if err.status != 409:
                raise
            return None

    done = wait_for("a scale PUT with a fresh resourceVersion", put_four, 20, interval=0.05)
    assert done is not None
    assert scale.metadata is not None
    assert scale.spec is not None
    assert done.spec is not None
    assert done.spec.replicas == 4
    deployment = apps.read_namespaced_deployment("workers", peer.namespace)
    assert deployment.spec is not None
    assert deployment.spec.replicas == 4
    scale.spec.replicas = 1
    scale.metadata.resource_version = stale
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment_scale("workers", peer.namespace, scale)
    assert caught.value.status == 409
    status = _status(caught.value)
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on deployments.apps "workers": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert status["details"] == {"name": "workers", "group": "apps", "kind": "deployments"}
    patched = apps.patch_namespaced_deployment_scale("workers", peer.namespace, {"spec": {"replicas": 3}})
    assert patched.spec is not None
    assert patched.spec.replicas == 3
    with pytest.raises(ApiException) as caught:
        apps.read_namespaced_deployment_scale("missing", peer.namespace)
    assert caught.value.status == 404
    assert _status(caught.value)["message"] == 'deployments.apps "missing" not found'


def _policy(name: str) -> Any:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ScalingPolicy",
        "metadata": {"name": name},
        "spec": {
            "target": {
                "kind": "TrinoWorkers",
                "workload": {"kind": "Deployment", "name": "trino-worker"},
                "trino": {"cluster": "adhoc", "coordinatorUrl": "http://trino:8080", "version": 478},
            },
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [{"type": "QueueWait", "queueWait": {"targetSeconds": 30}}],
        },
    }


def test_the_status_subresource_is_apart_from_spec(peer: Peer) -> None:
    """What the StatusWriter relies on: status written only through /status, which leaves spec and the
    generation alone; a spec change bumps the generation, a status change does not."""
    custom = kubernetes.client.CustomObjectsApi(peer.api)
    ns = peer.namespace
    created: Any = custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, _policy("p"))
    assert created["metadata"]["generation"] == 1
    assert "status" not in created
    # status in a write of the main resource is ignored
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "p", {"status": {"desiredReplicas": 9}, "spec": {"maxReplicas": 12}}
    )
    got: Any = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "p")
    assert "status" not in got
    assert (got["spec"]["maxReplicas"], got["metadata"]["generation"]) == (12, 2)
    # /status takes status, ignores spec, keeps the generation
    done: Any = custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        ns,
        PLURAL,
        "p",
        {"status": {"desiredReplicas": 3, "observedGeneration": 2}, "spec": {"maxReplicas": 1}},
    )
    assert done["status"]["desiredReplicas"] == 3
    assert (done["spec"]["maxReplicas"], done["metadata"]["generation"]) == (12, 2)
    # a stale resourceVersion on /status is a conflict too
    stale = created["metadata"]["resourceVersion"]
    body = dict(done)
    body["metadata"] = {**done["metadata"], "resourceVersion": stale}
    with pytest.raises(ApiException) as caught:
        custom.replace_namespaced_custom_object_status(GROUP, VERSION, ns, PLURAL, "p", body)
    assert caught.value.status == 409
    assert _status(caught.value)["reason"] == "Conflict"
    # a custom resource takes no update without a resourceVersion
    del body["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as caught:
        custom.replace_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "p", body)
    assert caught.value.status == 422
    assert _status(caught.value)["message"] == (
        'scalingpolicies.queuescale.io "p" is invalid: metadata.resourceVersion: '
        "Invalid value: 0: must be specified for an update"
    )


def test_a_pod_deletion_cost_patch(peer: Peer) -> None:
    """What a drain relies on: a merge patch of one annotation on a pod, seen by a label-selected list.
    The pods come from a Deployment (the sandbox refuses pods created directly: 405)."""
    apps = kubernetes.client.AppsV1Api(peer.api)
    core = kubernetes.client.CoreV1Api(peer.api)
    apps.create_namespaced_deployment(peer.namespace, _deployment("w", 2))

    def names() -> list[str]:
        found = core.list_namespaced_pod(peer.namespace, label_selector="app=w")
        return sorted(str(p.metadata.name) for p in found.items if p.metadata)

    wait_for("the Deployment's 2 pods", lambda: len(names()) == 2, 30)
    first, second = names()
    cost = "controller.kubernetes.io/pod-deletion-cost"
    core.patch_namespaced_pod(first, peer.namespace, {"metadata": {"annotations": {cost: "-1000"}}})
    found = core.list_namespaced_pod(peer.namespace, label_selector="app in (w),app!=x")
    costs = {
        str(p.metadata.name): (p.metadata.annotations or {}).get(cost) for p in found.items if p.metadata
    }
    assert costs == {first: "-1000", second: None}


# ----- watches: what the informer (autoscaler/controller/informer.py) relies on


@dataclass
class Seen:
    at: float
    """Seconds since the watch was asked for."""
    type: str
    object: dict[str, Any]

    @property
    def rv(self) -> int:
        return int(self.object["metadata"]["resourceVersion"])


def _watch(peer: Peer, namespace: str, resource_version: str, timeout: int) -> tuple[list[Seen], float]:
    """Every event of one ScalingPolicy watch, raw as the server sent them, and when the stream ended."""
    custom = kubernetes.client.CustomObjectsApi(peer.api)
    started = time.monotonic()
    response: Any = custom.list_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        watch=True,
        resource_version=resource_version,
        allow_watch_bookmarks=True,
        timeout_seconds=timeout,
        _preload_content=False,
        _request_timeout=timeout + 30,
    )
    assert response.status == 200
    seen: list[Seen] = []
    pending = b""
    try:
        for chunk in response.stream(1024, decode_content=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    event = json.loads(line)
                    seen.append(Seen(time.monotonic() - started, event["type"], event["object"]))
    finally:
        response.release_conn()
    assert not pending.strip(), pending
    return seen, time.monotonic() - started


def _list_rv(peer: Peer, namespace: str) -> str:
    listed: Any = kubernetes.client.CustomObjectsApi(peer.api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL
    )
    return str(listed["metadata"]["resourceVersion"])


def test_a_watch_from_a_list_sees_added_modified_deleted_in_order(peer: Peer) -> None:
    """List, then watch from the list's resourceVersion with bookmarks allowed, as the informer does: the
    changes made after the list come in order, each at the resourceVersion its write answered, and one
    made while the watch is open follows."""
    custom = kubernetes.client.CustomObjectsApi(peer.api)
    ns = peer.namespace
    start = _list_rv(peer, ns)
    created: Any = custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, _policy("a"))
    patched: Any = custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "a", {"spec": {"maxReplicas": 7}}
    )
    custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "a")
    later: dict[str, Any] = {}

    def create_later() -> None:
        time.sleep(0.5)
        later["b"] = custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, _policy("b"))

    writer = threading.Thread(target=create_later)
    writer.start()
    try:
        seen, ended = _watch(peer, ns, start, timeout=2)
    finally:
        writer.join(30)
    changes = [e for e in seen if e.type != "BOOKMARK"]
    assert [(e.type, e.object["metadata"]["name"]) for e in changes] == [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
        ("ADDED", "b"),
    ], seen
    versions = [e.rv for e in changes]
    assert versions == sorted(set(versions)), versions
    assert versions[0] == int(created["metadata"]["resourceVersion"])
    assert versions[1] == int(patched["metadata"]["resourceVersion"])
    assert versions[3] == int(later["b"]["metadata"]["resourceVersion"])
    assert versions[0] > int(start)
    for e in changes:
        assert (e.object["kind"], e.object["apiVersion"]) == ("ScalingPolicy", f"{GROUP}/{VERSION}")
    assert changes[1].object["spec"]["maxReplicas"] == 7
    assert changes[2].object["spec"]["maxReplicas"] == 7  # DELETED carries the last state
    # Bookmarks, if any, never go back.
    marks = [(i, e.rv) for i, e in enumerate(seen) if e.type == "BOOKMARK"]
    assert all(rv >= max([int(start), *(x.rv for x in seen[:i])]) for i, rv in marks), seen
    assert 1.5 <= ended < 10, f"the watch of timeoutSeconds=2 ended after {ended:.1f} s"


def test_a_bookmark_is_sent_before_the_timeout_only_when_the_type_moved(peer: Peer) -> None:
    """A BOOKMARK carries the kind and a resourceVersion and nothing else. The real server sends one about
    2 s before timeoutSeconds, and only when the resource type's resourceVersion moved past what the watch
    has seen (here: writes in another namespace); a quiet watch ends with no event at all, so the informer
    cannot count on a bookmark at the end of each watch (it resumes from the last version seen)."""
    custom = kubernetes.client.CustomObjectsApi(peer.api)
    ns = peer.namespace
    quiet, ended = _watch(peer, ns, _list_rv(peer, ns), timeout=3)
    assert quiet == [], quiet
    assert 2.5 <= ended < 10, f"the quiet watch of timeoutSeconds=3 ended after {ended:.1f} s"

    other = peer.other_namespace()
    custom.create_namespaced_custom_object(GROUP, VERSION, other, PLURAL, _policy("elsewhere"))
    start = _list_rv(peer, ns)
    stop = threading.Event()
    written: list[int] = []

    def keep_writing() -> None:
        n = 0
        while not stop.wait(0.3):
            n += 1
            done: Any = custom.patch_namespaced_custom_object(
                GROUP, VERSION, other, PLURAL, "elsewhere", {"spec": {"maxReplicas": 10 + n % 5}}
            )
            written.append(int(done["metadata"]["resourceVersion"]))

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        seen, ended = _watch(peer, ns, start, timeout=4)
    finally:
        stop.set()
        writer.join(30)
    assert seen, "no bookmark while the type moved"
    assert {e.type for e in seen} == {"BOOKMARK"}, seen
    for e in seen:
        assert e.object == {
            "kind": "ScalingPolicy",
            "apiVersion": f"{GROUP}/{VERSION}",
            "metadata": {"resourceVersion": e.object["metadata"]["resourceVersion"]},
        }, e.object
        assert int(start) < e.rv <= max(written), (start, e.rv, written)
        # Before the timeout, not at its start: the pre-timeout bookmark (timeoutSeconds - 2 s).
        assert 1.0 <= e.at <= 4.5, f"a bookmark at {e.at:.1f} s of a 4 s watch"
    versions = [e.rv for e in seen]
    assert versions == sorted(versions), versions
    assert 3.5 <= ended < 10, f"the watch of timeoutSeconds=4 ended after {ended:.1f} s"


def test_a_watch_from_a_forgotten_resource_version_is_410_expired(peer: Peer) -> None:
    """The answer is 200 and one ERROR event holding a 410 Status with reason Expired, then the end of the
    stream; the official client's Watch raises it as ApiException(410), on which the informer lists again.

    On the real server resourceVersion 1 is older than the watch cache of a CRD, which begins when the
    CRD is established (its 410 comes from that cache, compaction or not); the sandbox keeps every change
    until compacted, so both forget their history first."""
    custom = kubernetes.client.CustomObjectsApi(peer.api)
    ns = peer.namespace
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, _policy("old"))
    peer.forget_history()
    seen, ended = _watch(peer, ns, "1", timeout=10)
    assert [e.type for e in seen] == ["ERROR"], seen
    status = seen[0].object
    message = str(status.get("message"))
    assert re.fullmatch(r"too old resource version: 1 \(\d+\)", message), message
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Expired",
        "code": 410,
    }
    assert ended < 5, f"the stream stayed open {ended:.1f} s after the ERROR event"
    with pytest.raises(ApiException) as caught:
        for _ in kubernetes.watch.Watch().stream(  # type: ignore[no-untyped-call]
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            PLURAL,
            resource_version="1",
            allow_watch_bookmarks=True,
            timeout_seconds=10,
        ):
            pass
    assert caught.value.status == 410
    # A list has no such limit: it answers the current state and a resourceVersion to watch from.
    assert int(_list_rv(peer, ns)) > 1
