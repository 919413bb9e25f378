"""Deployments, StatefulSets and their pods in the Kubernetes API sandbox, through the official client.

The sandbox runs on a manual clock with no background ticking: pods start or go only when the test
moves the clock, and every request carries out what is due, so nothing depends on wall time.
"""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import kubernetes.client
import kubernetes_validate
import pytest
from kubernetes.client.exceptions import ApiException

from lab.sandbox.kube import KubeSandbox
from lab.sandbox.kube_pods import DELETION_COST
from lab.sandbox.kube_types import DEPLOYMENTS, STATEFULSETS
from lab.sandbox.kube_workloads import PORT_ANNOTATION, workload_manifest
from tests.helpers.kube import ManualClock, RunningKube, call, running_kube

NS = "trino"


def sandbox(clock: ManualClock, **kwargs: Any) -> KubeSandbox:
    return KubeSandbox(clock=clock, tick_interval=None, **kwargs)


def apps(kube: RunningKube) -> kubernetes.client.AppsV1Api:
    return kubernetes.client.AppsV1Api(kube.api)


def core(kube: RunningKube) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(kube.api)


async def pods(kube: RunningKube, selector: str) -> list[Any]:
    listed = await call(core(kube).list_namespaced_pod, NS, label_selector=selector)
    return sorted(listed.items, key=lambda p: p.metadata.name)


def ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


async def raw(kube: RunningKube, method: str, path: str, body: Any, content_type: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, kube.url + path, data=json.dumps(body), headers={"Content-Type": content_type}
        ) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def test_deployment_pods_start_after_the_startup_delay() -> None:
    clock = ManualClock()
    start = clock.now
    async with running_kube(sandbox(clock)) as kube:
        body = workload_manifest("Deployment", "workers", 3, startup_seconds=30)
        created = await call(apps(kube).create_namespaced_deployment, NS, body)
        assert created.metadata.generation == 1
        listed = await pods(kube, "app=workers")
        assert len(listed) == 3
        assert [p.status.phase for p in listed] == ["Pending"] * 3
        rs = (await call(apps(kube).list_namespaced_replica_set, NS)).items
        assert len(rs) == 1
        rs_name = rs[0].metadata.name
        assert rs[0].metadata.owner_references[0].kind == "Deployment"
        assert rs[0].metadata.owner_references[0].uid == created.metadata.uid
        for pod in listed:
            assert re.fullmatch(rf"{rs_name}-[bcdfghjklmnpqrstvwxz2456789]{{5}}", pod.metadata.name)
            assert pod.metadata.labels["pod-template-hash"] == rs_name.removeprefix("workers-")
            assert pod.metadata.owner_references[0].name == rs_name
            assert not ready(pod)

        clock.advance(29)
        assert [p.status.phase for p in await pods(kube, "app=workers")] == ["Pending"] * 3
        clock.advance(1)
        listed = await pods(kube, "app=workers")
        assert [p.status.phase for p in listed] == ["Running"] * 3
        assert all(ready(p) for p in listed)
        ready_at = {
            c.last_transition_time.timestamp()
            for p in listed
            for c in p.status.conditions
            if c.type == "Ready"
        }
        assert ready_at == {start + 30}
        assert len({p.status.pod_ip for p in listed}) == 3

        d = await call(apps(kube).read_namespaced_deployment, "workers", NS)
        assert (d.status.replicas, d.status.ready_replicas, d.status.available_replicas) == (3, 3, 3)
        assert d.status.updated_replicas == 3
        assert d.status.observed_generation == d.metadata.generation
        assert {c.type: c.status for c in d.status.conditions} == {"Available": "True", "Progressing": "True"}


async def test_scale_subresource_get_put_patch_and_conflicts() -> None:
    clock = ManualClock()
    async with running_kube(sandbox(clock)) as kube:
        body = workload_manifest("Deployment", "workers", 2)
        body["spec"]["selector"]["matchExpressions"] = [
            {"key": "tier", "operator": "In", "values": ["b", "a"]}
        ]
        body["spec"]["template"]["metadata"]["labels"]["tier"] = "a"
        await call(apps(kube).create_namespaced_deployment, NS, body)
        scale = await call(apps(kube).read_namespaced_deployment_scale, "workers", NS)
        assert scale.spec.replicas == 2
        assert scale.status.replicas == 2
        assert scale.status.selector == "app=workers,tier in (a,b)"
        stale = scale.metadata.resource_version

        # a PUT with the current resourceVersion wins and bumps the generation
        scale.spec.replicas = 4
        done = await call(apps(kube).replace_namespaced_deployment_scale, "workers", NS, scale)
        assert done.spec.replicas == 4
        d = await call(apps(kube).read_namespaced_deployment, "workers", NS)
        assert (d.spec.replicas, d.metadata.generation) == (4, 2)
        assert len(await pods(kube, "app=workers")) == 4

        # the same PUT again carries a stale resourceVersion now
        scale.spec.replicas = 1
        scale.metadata.resource_version = stale
        with pytest.raises(ApiException) as caught:
            await call(apps(kube).replace_namespaced_deployment_scale, "workers", NS, scale)
        assert caught.value.status == 409
        status = json.loads(caught.value.body)
        assert status["reason"] == "Conflict"
        assert status["message"] == (
            'Operation cannot be fulfilled on deployments.apps "workers": the object has been modified; '
            "please apply your changes to the latest version and try again"
        )
        assert status["details"] == {"name": "workers", "group": "apps", "kind": "deployments"}

        # strategic merge (the client's default for a dict), JSON merge and JSON patch all reach spec.replicas
        patched = await call(
            apps(kube).patch_namespaced_deployment_scale, "workers", NS, {"spec": {"replicas": 3}}
        )
        assert patched.spec.replicas == 3
        path = f"/apis/apps/v1/namespaces/{NS}/deployments/workers/scale"
        code, doc = await raw(kube, "PATCH", path, {"spec": {"replicas": 5}}, "application/merge-patch+json")
        assert (code, doc["spec"]["replicas"], doc["kind"]) == (200, 5, "Scale")
        ops = [
            {"op": "test", "path": "/spec/replicas", "value": 5},
            {"op": "replace", "path": "/spec/replicas", "value": 2},
        ]
        code, doc = await raw(kube, "PATCH", path, ops, "application/json-patch+json")
        assert (code, doc["spec"]["replicas"]) == (200, 2)
        # a failed test operation changes nothing
        code, doc = await raw(kube, "PATCH", path, ops, "application/json-patch+json")
        assert (code, doc["reason"]) == (422, "Invalid")
        # a merge patch carrying a stale resourceVersion is a conflict too
        code, doc = await raw(
            kube,
            "PATCH",
            path,
            {"metadata": {"resourceVersion": stale}, "spec": {"replicas": 9}},
            "application/merge-patch+json",
        )
        assert (code, doc["reason"]) == (409, "Conflict")
        code, doc = await raw(kube, "PATCH", path, {"spec": {"replicas": -1}}, "application/merge-patch+json")
        assert code == 422
        assert doc["message"] == (
            'Scale.autoscaling "workers" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'
        )
        assert (await call(apps(kube).read_namespaced_deployment_scale, "workers", NS)).spec.replicas == 2
        with pytest.raises(ApiException) as caught:
            await call(apps(kube).read_namespaced_deployment_scale, "missing", NS)
        assert caught.value.status == 404
        assert json.loads(caught.value.body)["message"] == 'deployments.apps "missing" not found'


async def test_scale_down_deletes_pods_in_the_replicaset_controllers_order() -> None:
    clock = ManualClock()
    async with running_kube(sandbox(clock, pod_capacity=5)) as kube:
        await call(apps(kube).create_namespaced_deployment, NS, workload_manifest("Deployment", "w", 5))
        names = [p.metadata.name for p in await pods(kube, "app=w")]
        costs = {names[0]: "100", names[1]: "-5", names[2]: "50", names[3]: "0", names[4]: "7"}
        for name, cost in costs.items():
            # the controller's way: a strategic merge patch of the annotation
            await call(
                core(kube).patch_namespaced_pod,
                name,
                NS,
                {"metadata": {"annotations": {DELETION_COST: cost}}},
            )
        # the most expensive pod is not ready: not-ready pods go before any ready one
        kube.sandbox.set_pod_ready(NS, names[0], False)
        # one more replica than the capacity: the unscheduled pod goes first of all
        await call(apps(kube).patch_namespaced_deployment_scale, "w", NS, {"spec": {"replicas": 6}})
        unscheduled = [p.metadata.name for p in await pods(kube, "app=w") if not p.spec.node_name]
        assert len(unscheduled) == 1
        await call(apps(kube).patch_namespaced_deployment_scale, "w", NS, {"spec": {"replicas": 5}})
        assert unscheduled[0] not in {p.metadata.name for p in await pods(kube, "app=w")}

        await call(apps(kube).patch_namespaced_deployment_scale, "w", NS, {"spec": {"replicas": 2}})
        kept = {p.metadata.name for p in await pods(kube, "app=w")}
        # not ready (cost 100) first, then the lowest costs among the ready: -5 and 0
        assert kept == {names[2], names[4]}


async def test_statefulset_ordered_ready_goes_up_one_pod_at_a_time_and_down_from_the_top() -> None:
    clock = ManualClock()
    removed: list[str] = []
    sb = sandbox(clock)
    sb.on_pod_removed.append(lambda pod: removed.append(pod["metadata"]["name"]))
    async with running_kube(sb) as kube:
        body = workload_manifest("StatefulSet", "spark", 3, startup_seconds=10, termination_seconds=5)
        await call(apps(kube).create_namespaced_stateful_set, NS, body)
        seen = []
        for _ in range(3):
            seen.append([(p.metadata.name, p.status.phase) for p in await pods(kube, "app=spark")])
            clock.advance(10)
        assert seen == [
            [("spark-0", "Pending")],
            [("spark-0", "Running"), ("spark-1", "Pending")],
            [("spark-0", "Running"), ("spark-1", "Running"), ("spark-2", "Pending")],
        ]
        listed = await pods(kube, "app=spark")
        assert [p.status.phase for p in listed] == ["Running"] * 3
        assert [p.metadata.labels["apps.kubernetes.io/pod-index"] for p in listed] == ["0", "1", "2"]
        assert [p.spec.hostname for p in listed] == ["spark-0", "spark-1", "spark-2"]
        s = await call(apps(kube).read_namespaced_stateful_set, "spark", NS)
        assert (s.status.replicas, s.status.ready_replicas, s.status.current_revision) == (
            3,
            3,
            s.status.update_revision,
        )

        await call(apps(kube).patch_namespaced_stateful_set_scale, "spark", NS, {"spec": {"replicas": 1}})
        terminating = {
            p.metadata.name for p in await pods(kube, "app=spark") if p.metadata.deletion_timestamp
        }
        assert terminating == {"spark-2"}
        clock.advance(5)
        terminating = {
            p.metadata.name for p in await pods(kube, "app=spark") if p.metadata.deletion_timestamp
        }
        assert terminating == {"spark-1"}
        clock.advance(5)
        assert [p.metadata.name for p in await pods(kube, "app=spark")] == ["spark-0"]
        assert removed == ["spark-2", "spark-1"]


async def test_statefulset_parallel_creates_and_deletes_at_once() -> None:
    clock = ManualClock()
    removed: list[str] = []
    sb = sandbox(clock)
    sb.on_pod_removed.append(lambda pod: removed.append(pod["metadata"]["name"]))
    async with running_kube(sb) as kube:
        body = workload_manifest("StatefulSet", "pool", 4, startup_seconds=10, pod_management="Parallel")
        await call(apps(kube).create_namespaced_stateful_set, NS, body)
        assert [p.metadata.name for p in await pods(kube, "app=pool")] == [f"pool-{i}" for i in range(4)]
        await call(apps(kube).patch_namespaced_stateful_set_scale, "pool", NS, {"spec": {"replicas": 1}})
        assert [p.metadata.name for p in await pods(kube, "app=pool")] == ["pool-0"]
        assert removed == ["pool-3", "pool-2", "pool-1"]


async def test_a_deleted_pod_is_replaced() -> None:
    clock = ManualClock()
    async with running_kube(sandbox(clock, termination_seconds=3)) as kube:
        await call(apps(kube).create_namespaced_stateful_set, NS, workload_manifest("StatefulSet", "s", 2))
        await call(apps(kube).create_namespaced_deployment, NS, workload_manifest("Deployment", "d", 1))
        first = (await pods(kube, "app=d"))[0]
        answer = await call(core(kube).delete_namespaced_pod, first.metadata.name, NS)
        # a graceful delete answers the pod, now carrying its deletionTimestamp
        assert answer.kind == "Pod"
        assert answer.metadata.deletion_timestamp is not None
        listed = await pods(kube, "app=d")
        # the ReplicaSet replaces it at once; the old one stays Terminating meanwhile
        assert len(listed) == 2
        assert len([p for p in listed if not p.metadata.deletion_timestamp]) == 1
        await call(core(kube).delete_namespaced_pod, "s-1", NS)
        # a StatefulSet waits for the old pod to be gone before it makes the same name again
        uid = next(p for p in await pods(kube, "app=s") if p.metadata.name == "s-1").metadata.uid
        clock.advance(3)
        listed = await pods(kube, "app=s")
        assert [p.metadata.name for p in listed] == ["s-0", "s-1"]
        assert listed[1].metadata.uid != uid
        assert len(await pods(kube, "app=d")) == 1


async def test_template_change_bumps_generation_and_replaces_the_replicaset() -> None:
    clock = ManualClock()
    async with running_kube(sandbox(clock)) as kube:
        await call(apps(kube).create_namespaced_deployment, NS, workload_manifest("Deployment", "d", 2))
        before = {p.metadata.name for p in await pods(kube, "app=d")}
        # metadata only: no new generation
        await call(apps(kube).patch_namespaced_deployment, "d", NS, {"metadata": {"labels": {"team": "x"}}})
        d = await call(apps(kube).read_namespaced_deployment, "d", NS)
        assert d.metadata.generation == 1
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "trino:479"}]}}}}
        await call(apps(kube).patch_namespaced_deployment, "d", NS, patch)
        d = await call(apps(kube).read_namespaced_deployment, "d", NS)
        assert d.metadata.generation == 2
        assert d.status.observed_generation == 2
        # the strategic merge matched the container by name: the rest of it is kept
        assert d.spec.template.spec.containers[0].termination_message_path == "/dev/termination-log"
        sets = sorted(
            (await call(apps(kube).list_namespaced_replica_set, NS)).items,
            key=lambda r: r.metadata.annotations["deployment.kubernetes.io/revision"],
        )
        assert [r.spec.replicas for r in sets] == [0, 2]
        after = await pods(kube, "app=d")
        assert before.isdisjoint({p.metadata.name for p in after})
        assert {p.spec.containers[0].image for p in after} == {"trino:479"}


async def test_pod_hooks_ip_and_port_annotation() -> None:
    clock = ManualClock()
    events: list[tuple[str, str]] = []
    sb = sandbox(clock, pod_ip="127.0.0.1")

    async def added(pod: dict[str, Any]) -> None:
        events.append(("added", pod["metadata"]["name"]))
        # a world would start a Trino worker here and note where it listens
        sb.set_pod_annotations(
            pod["metadata"]["namespace"], pod["metadata"]["name"], {PORT_ANNOTATION: "18080"}
        )

    sb.on_pod_added.append(added)
    sb.on_pod_ready.append(lambda pod: events.append(("ready", pod["metadata"]["name"])))
    sb.on_pod_removed.append(lambda pod: events.append(("removed", pod["metadata"]["name"])))
    async with running_kube(sb) as kube:
        await call(
            apps(kube).create_namespaced_stateful_set,
            NS,
            workload_manifest("StatefulSet", "t", 1, startup_seconds=5),
        )
        await sb.settle_hooks()
        pod = (await pods(kube, "app=t"))[0]
        assert pod.status.pod_ip == "127.0.0.1"
        assert pod.metadata.annotations[PORT_ANNOTATION] == "18080"
        clock.advance(5)
        await call(apps(kube).patch_namespaced_stateful_set_scale, "t", NS, {"spec": {"replicas": 0}})
        await sb.settle_hooks()
        assert events == [("added", "t-0"), ("ready", "t-0"), ("removed", "t-0")]


async def test_external_readiness_waits_for_the_world() -> None:
    clock = ManualClock()
    async with running_kube(sandbox(clock)) as kube:
        body = workload_manifest("Deployment", "d", 1, startup_seconds=1, external_readiness=True)
        await call(apps(kube).create_namespaced_deployment, NS, body)
        clock.advance(1)
        pod = (await pods(kube, "app=d"))[0]
        assert pod.status.phase == "Running"
        assert not ready(pod)
        kube.sandbox.set_pod_ready(NS, pod.metadata.name, True)
        assert ready((await pods(kube, "app=d"))[0])
        d = await call(apps(kube).read_namespaced_deployment, "d", NS)
        assert d.status.ready_replicas == 1


async def test_deleting_a_workload_collects_its_pods_unless_orphaned() -> None:
    clock = ManualClock()
    async with running_kube(sandbox(clock)) as kube:
        await call(apps(kube).create_namespaced_deployment, NS, workload_manifest("Deployment", "d", 2))
        await call(apps(kube).create_namespaced_stateful_set, NS, workload_manifest("StatefulSet", "s", 2))
        status = await call(apps(kube).delete_namespaced_deployment, "d", NS)
        # this client version answers deletes as plain dicts: a Status here, as kube-apiserver sends it
        assert (status["kind"], status["status"]) == ("Status", "Success")
        assert status["details"]["name"] == "d"
        assert await pods(kube, "app=d") == []
        assert (await call(apps(kube).list_namespaced_replica_set, NS)).items == []
        body = kubernetes.client.V1DeleteOptions(propagation_policy="Orphan")
        await call(apps(kube).delete_namespaced_stateful_set, "s", NS, body=body)
        left = await pods(kube, "app=s")
        assert [p.metadata.name for p in left] == ["s-0", "s-1"]
        assert all(not p.metadata.owner_references for p in left)


async def test_workload_validation() -> None:
    async with running_kube(sandbox(ManualClock())) as kube:
        body = workload_manifest("Deployment", "d", 1)
        body["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
        with pytest.raises(ApiException) as caught:
            await call(apps(kube).create_namespaced_deployment, NS, body)
        assert caught.value.status == 422
        assert "`selector` does not match template `labels`" in json.loads(caught.value.body)["message"]
        await call(apps(kube).create_namespaced_deployment, NS, workload_manifest("Deployment", "d", 1))
        with pytest.raises(ApiException) as caught:
            await call(apps(kube).create_namespaced_deployment, NS, workload_manifest("Deployment", "d", 1))
        assert caught.value.status == 409
        assert json.loads(caught.value.body)["reason"] == "AlreadyExists"
        assert json.loads(caught.value.body)["message"] == 'deployments.apps "d" already exists'
        patch = {"spec": {"selector": {"matchLabels": {"app": "d", "x": "y"}}}}
        with pytest.raises(ApiException) as caught:
            await call(apps(kube).patch_namespaced_deployment, "d", NS, patch)
        assert "field is immutable" in json.loads(caught.value.body)["message"]


@pytest.mark.parametrize("version", ["1.30", "1.33"])
async def test_objects_the_sandbox_makes_follow_the_official_schemas(version: str) -> None:
    clock = ManualClock()
    async with running_kube(sandbox(clock, termination_seconds=5)) as kube:
        await call(
            apps(kube).create_namespaced_deployment,
            NS,
            workload_manifest("Deployment", "d", 2, startup_seconds=1),
        )
        await call(apps(kube).create_namespaced_stateful_set, NS, workload_manifest("StatefulSet", "s", 1))
        clock.advance(1)
        await call(apps(kube).patch_namespaced_deployment_scale, "d", NS, {"spec": {"replicas": 1}})
        docs = []
        for path in (
            f"/apis/apps/v1/namespaces/{NS}/deployments",
            f"/apis/apps/v1/namespaces/{NS}/statefulsets",
            f"/apis/apps/v1/namespaces/{NS}/replicasets",
            f"/api/v1/namespaces/{NS}/pods",
            f"/api/v1/namespaces/{NS}/events",
        ):
            async with aiohttp.ClientSession() as session, session.get(kube.url + path) as resp:
                listed = await resp.json()
            kind = listed["kind"].removesuffix("List")
            docs += [{"kind": kind, "apiVersion": listed["apiVersion"], **item} for item in listed["items"]]
        async with (
            aiohttp.ClientSession() as session,
            session.get(kube.url + f"/apis/apps/v1/namespaces/{NS}/deployments/d/scale") as resp,
        ):
            docs.append(await resp.json())
        assert {d["kind"] for d in docs} == {
            "Deployment",
            "StatefulSet",
            "ReplicaSet",
            "Pod",
            "Event",
            "Scale",
        }
        assert any(d["kind"] == "Pod" and d["metadata"].get("deletionTimestamp") for d in docs)
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)


async def test_sandbox_api_for_worlds() -> None:
    clock = ManualClock()
    sb = sandbox(clock)
    created = sb.create(DEPLOYMENTS, NS, workload_manifest("Deployment", "d", 2, startup_seconds=4))
    assert created["metadata"]["generation"] == 1
    assert len(sb.pods_of(DEPLOYMENTS, NS, "d")) == 2
    scale = sb.scale(DEPLOYMENTS, NS, "d", 3)
    assert scale["spec"]["replicas"] == 3
    assert len(sb.pods_of(DEPLOYMENTS, NS, "d")) == 3
    clock.advance(4)
    sb.tick()
    assert {p["status"]["phase"] for p in sb.pods_of(DEPLOYMENTS, NS, "d")} == {"Running"}
    sb.create(STATEFULSETS, NS, workload_manifest("StatefulSet", "s", 1))
    assert [p["metadata"]["name"] for p in sb.pods_of(STATEFULSETS, NS, "s")] == ["s-0"]
    assert sb.pods_of(STATEFULSETS, NS, "missing") == []


async def test_min_ready_seconds_delays_availability_and_capacity_frees_pending_pods() -> None:
    clock = ManualClock()
    async with running_kube(sandbox(clock, pod_capacity=2)) as kube:
        body = workload_manifest("Deployment", "d", 3, startup_seconds=5)
        body["spec"]["minReadySeconds"] = 10
        await call(apps(kube).create_namespaced_deployment, NS, body)
        # capacity 2: the third pod waits unscheduled
        assert sorted(bool(p.spec.node_name) for p in await pods(kube, "app=d")) == [False, True, True]
        clock.advance(5)
        d = await call(apps(kube).read_namespaced_deployment, "d", NS)
        assert (d.status.ready_replicas, d.status.available_replicas) == (2, None)
        clock.advance(10)
        d = await call(apps(kube).read_namespaced_deployment, "d", NS)
        assert (d.status.ready_replicas, d.status.available_replicas) == (2, 2)
        # a scheduled pod goes: the waiting one takes its place and starts in turn
        running = next(p for p in await pods(kube, "app=d") if p.spec.node_name)
        await call(core(kube).delete_namespaced_pod, running.metadata.name, NS)
        listed = await pods(kube, "app=d")
        assert len(listed) == 3
        assert sum(1 for p in listed if p.spec.node_name) == 2
        clock.advance(5)
        phases = sorted(p.status.phase for p in await pods(kube, "app=d") if p.spec.node_name)
        assert phases == ["Running", "Running"]


async def test_events_expire_after_their_ttl() -> None:
    clock = ManualClock()
    async with running_kube(sandbox(clock, event_ttl_seconds=120)) as kube:
        await call(apps(kube).create_namespaced_deployment, NS, workload_manifest("Deployment", "d", 1))
        reasons = {e.reason for e in (await call(core(kube).list_namespaced_event, NS)).items}
        assert reasons == {"ScalingReplicaSet", "SuccessfulCreate"}
        clock.advance(60)
        await call(apps(kube).patch_namespaced_deployment_scale, "d", NS, {"spec": {"replicas": 2}})
        clock.advance(61)
        left = (await call(core(kube).list_namespaced_event, NS)).items
        # the first events are 121 s old, the scale-up's 61 s
        assert len(left) == 2
        assert sorted(e.reason for e in left) == ["ScalingReplicaSet", "SuccessfulCreate"]
        assert any(e.message.endswith("from 1 to 2") for e in left)
