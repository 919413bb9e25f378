"""The API server contracts of the Kubernetes API sandbox other than workloads and watches: optimistic
concurrency, status subresources, custom resources from CRDs, Leases, Events, HPAs, patches,
deletion, discovery and Tables, through the official client (raw HTTP where it cannot reach)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
import kubernetes.client
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from autoscaler.policy.schema import CRD_PATH
from lab.sandbox.kube import KubeSandbox
from lab.sandbox.kube_workloads import workload_manifest
from tests.helpers.kube import ManualClock, RunningKube, call, running_kube

NS = "analytics"
QS = ("queuescale.io", "v1alpha1")


async def raw(
    kube: RunningKube,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    **headers: str,
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body)
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, kube.url + path, data=data, headers={"Content-Type": content_type, **headers}
        ) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


def policy(name: str, max_replicas: int = 10, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "queuescale.io/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": name},
        "spec": {
            "target": {
                "kind": "TrinoWorkers",
                "workload": {"kind": "Deployment", "name": "trino-worker"},
                "trino": {"cluster": "adhoc", "coordinatorUrl": "http://trino:8080", "version": 478},
            },
            "minReplicas": 1,
            "maxReplicas": max_replicas,
            "metrics": [{"type": "QueueWait", "queueWait": {"targetSeconds": 30}}],
            **extra,
        },
    }


async def test_stale_update_is_409_and_lease_crud() -> None:
    async with running_kube() as kube:
        coord = kubernetes.client.CoordinationV1Api(kube.api)
        now = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
        lease = kubernetes.client.V1Lease(
            metadata=kubernetes.client.V1ObjectMeta(name="queuescale-controller"),
            spec=kubernetes.client.V1LeaseSpec(
                holder_identity="a", lease_duration_seconds=15, acquire_time=now, renew_time=now
            ),
        )
        created = await call(coord.create_namespaced_lease, NS, lease)
        assert created.spec.holder_identity == "a"
        assert created.spec.renew_time == now
        # two replicas read the same version; the second write loses
        first = await call(coord.read_namespaced_lease, "queuescale-controller", NS)
        second = await call(coord.read_namespaced_lease, "queuescale-controller", NS)
        first.spec.holder_identity = "b"
        await call(coord.replace_namespaced_lease, "queuescale-controller", NS, first)
        second.spec.holder_identity = "c"
        with pytest.raises(ApiException) as caught:
            await call(coord.replace_namespaced_lease, "queuescale-controller", NS, second)
        assert caught.value.status == 409
        assert json.loads(caught.value.body)["message"] == (
            'Operation cannot be fulfilled on leases.coordination.k8s.io "queuescale-controller": the object has '
            "been modified; please apply your changes to the latest version and try again"
        )
        assert (
            await call(coord.read_namespaced_lease, "queuescale-controller", NS)
        ).spec.holder_identity == "b"
        # unlike most built-in types, a Lease takes no update without a resourceVersion (as kube-apiserver
        # v1.37: tests/peers/test_kube_contract.py), so a replica cannot take it by a blind write
        second.metadata.resource_version = None
        with pytest.raises(ApiException) as caught:
            await call(coord.replace_namespaced_lease, "queuescale-controller", NS, second)
        assert caught.value.status == 422
        assert json.loads(caught.value.body)["message"] == (
            'leases.coordination.k8s.io "queuescale-controller" is invalid: metadata.resourceVersion: '
            "Invalid value: 0: must be specified for an update"
        )
        assert (
            await call(coord.read_namespaced_lease, "queuescale-controller", NS)
        ).spec.holder_identity == "b"
        # MicroTime comes back with six fractional digits
        _code, doc = await raw(
            kube, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/queuescale-controller"
        )
        assert doc["spec"]["acquireTime"] == "2026-01-02T03:04:05.123456Z"
        with pytest.raises(ApiException) as caught:
            await call(coord.create_namespaced_lease, NS, lease)
        assert json.loads(caught.value.body)["reason"] == "AlreadyExists"
        await call(coord.delete_namespaced_lease, "queuescale-controller", NS)
        with pytest.raises(ApiException) as caught:
            await call(coord.read_namespaced_lease, "queuescale-controller", NS)
        assert caught.value.status == 404


async def test_scaling_policy_status_subresource_is_separate() -> None:
    async with running_kube() as kube:
        co = kubernetes.client.CustomObjectsApi(kube.api)
        body = policy("adhoc")
        body["status"] = {"desiredReplicas": 99}
        created = await call(co.create_namespaced_custom_object, *QS, NS, "scalingpolicies", body)
        # status is not taken on create
        assert "status" not in created
        assert created["metadata"]["generation"] == 1
        status = {"observedGeneration": 1, "currentReplicas": 2, "desiredReplicas": 3}
        written = await call(
            co.replace_namespaced_custom_object_status,
            *QS,
            NS,
            "scalingpolicies",
            "adhoc",
            {**created, "spec": {**created["spec"], "maxReplicas": 1}, "status": status},
        )
        # the status endpoint ignores spec; status changes leave the generation alone
        assert written["status"] == status
        assert written["spec"]["maxReplicas"] == 10
        assert written["metadata"]["generation"] == 1
        # the main endpoint ignores status, and a spec change bumps the generation
        changed = {
            **written,
            "spec": {**written["spec"], "maxReplicas": 20},
            "status": {"desiredReplicas": 0},
        }
        replaced = await call(
            co.replace_namespaced_custom_object, *QS, NS, "scalingpolicies", "adhoc", changed
        )
        assert replaced["status"] == status
        assert (replaced["spec"]["maxReplicas"], replaced["metadata"]["generation"]) == (20, 2)
        # the status patch the controller sends (a merge patch for custom resources)
        patched = await call(
            co.patch_namespaced_custom_object_status,
            *QS,
            NS,
            "scalingpolicies",
            "adhoc",
            {"status": {"desiredReplicas": 5}},
        )
        assert patched["status"]["desiredReplicas"] == 5
        assert patched["status"]["currentReplicas"] == 2
        # a stale resourceVersion on a status write is a conflict like anywhere else
        with pytest.raises(ApiException) as caught:
            await call(
                co.replace_namespaced_custom_object_status, *QS, NS, "scalingpolicies", "adhoc", written
            )
        assert caught.value.status == 409
        # custom resources need a resourceVersion on PUT
        unconditional = {
            **patched,
            "metadata": {k: v for k, v in patched["metadata"].items() if k != "resourceVersion"},
        }
        with pytest.raises(ApiException) as caught:
            await call(
                co.replace_namespaced_custom_object, *QS, NS, "scalingpolicies", "adhoc", unconditional
            )
        assert caught.value.status == 422
        assert "must be specified for an update" in json.loads(caught.value.body)["message"]
        everywhere = await call(co.list_cluster_custom_object, *QS, "scalingpolicies")
        assert [i["metadata"]["name"] for i in everywhere["items"]] == ["adhoc"]


async def test_scaling_policy_schema_is_enforced_and_unknown_fields_pruned() -> None:
    async with running_kube() as kube:
        co = kubernetes.client.CustomObjectsApi(kube.api)
        with pytest.raises(ApiException) as caught:
            await call(
                co.create_namespaced_custom_object, *QS, NS, "scalingpolicies", policy("bad", max_replicas=0)
            )
        status = json.loads(caught.value.body)
        assert status["code"] == 422
        assert status["message"] == (
            'ScalingPolicy.queuescale.io "bad" is invalid: spec.maxReplicas: Invalid value: 0: '
            "spec.maxReplicas in body should be greater than or equal to 1"
        )
        assert status["details"]["causes"][0]["field"] == "spec.maxReplicas"
        body = policy("loose", surprise="x")
        body["spec"]["target"]["extra"] = 1
        created = await call(co.create_namespaced_custom_object, *QS, NS, "scalingpolicies", body)
        assert "surprise" not in created["spec"]
        assert "extra" not in created["spec"]["target"]
        status_patch = {"status": {"desiredReplicas": 2, "notInTheSchema": True}}
        patched = await call(
            co.patch_namespaced_custom_object_status, *QS, NS, "scalingpolicies", "loose", status_patch
        )
        assert patched["status"] == {"desiredReplicas": 2}
        # strategic merge patches are for built-in types only
        code, doc = await raw(
            kube,
            "PATCH",
            f"/apis/queuescale.io/v1alpha1/namespaces/{NS}/scalingpolicies/loose",
            {"spec": {"maxReplicas": 3}},
            "application/strategic-merge-patch+json",
        )
        assert (code, doc["reason"]) == (415, "UnsupportedMediaType")


async def test_spark_operator_kinds_have_status_too() -> None:
    async with running_kube() as kube:
        co = kubernetes.client.CustomObjectsApi(kube.api)
        g, v, p = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
        body = {
            "apiVersion": f"{g}/{v}",
            "kind": "SparkApplication",
            "metadata": {"name": "etl"},
            "spec": {"executor": {"instances": 2}},
        }
        created = await call(co.create_namespaced_custom_object, g, v, NS, p, body)
        await call(
            co.patch_namespaced_custom_object_status,
            g,
            v,
            NS,
            p,
            "etl",
            {"status": {"applicationState": {"state": "RUNNING"}}},
        )
        patched = await call(
            co.patch_namespaced_custom_object, g, v, NS, p, "etl", {"spec": {"executor": {"instances": 6}}}
        )
        assert patched["spec"]["executor"] == {"instances": 6}
        assert patched["status"]["applicationState"]["state"] == "RUNNING"
        assert patched["metadata"]["generation"] == created["metadata"]["generation"] + 1


async def test_core_and_events_api_share_events() -> None:
    async with running_kube() as kube:
        core = kubernetes.client.CoreV1Api(kube.api)
        events = kubernetes.client.EventsV1Api(kube.api)
        at = datetime(2026, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
        body = kubernetes.client.EventsV1Event(
            metadata=kubernetes.client.V1ObjectMeta(name="qs.1"),
            event_time=at,
            reporting_controller="queuescale.io/controller",
            reporting_instance="controller-0",
            action="Scale",
            reason="ScaledUp",
            note="3 -> 5 workers: queue wait 40s over 30s",
            type="Normal",
            regarding=kubernetes.client.V1ObjectReference(kind="ScalingPolicy", name="adhoc", namespace=NS),
        )
        await call(events.create_namespaced_event, NS, body)
        legacy = await call(core.read_namespaced_event, "qs.1", NS)
        assert legacy.message == "3 -> 5 workers: queue wait 40s over 30s"
        assert legacy.involved_object.name == "adhoc"
        assert legacy.reporting_component == "queuescale.io/controller"
        back = await call(events.read_namespaced_event, "qs.1", NS)
        assert (back.note, back.regarding.kind, back.event_time) == (body.note, "ScalingPolicy", at)
        # events.k8s.io/v1 wants the full story
        incomplete = kubernetes.client.EventsV1Event(
            metadata=kubernetes.client.V1ObjectMeta(name="qs.2"), event_time=at, reason="X", type="Sometimes"
        )
        with pytest.raises(ApiException) as caught:
            await call(events.create_namespaced_event, NS, incomplete)
        message = json.loads(caught.value.body)["message"]
        assert "reportingController: Required value" in message
        assert 'type: Unsupported value: "Sometimes"' in message
        listed = await call(core.list_namespaced_event, NS)
        assert [e.metadata.name for e in listed.items] == ["qs.1"]


async def test_hpa_v2_and_v1_are_one_object() -> None:
    async with running_kube() as kube:
        v2 = kubernetes.client.AutoscalingV2Api(kube.api)
        v1 = kubernetes.client.AutoscalingV1Api(kube.api)
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "trino"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "trino-worker"},
                "maxReplicas": 10,
                "metrics": [
                    {
                        "type": "External",
                        "external": {
                            "metric": {"name": "trino_queued_queries"},
                            "target": {"type": "AverageValue", "averageValue": "2"},
                        },
                    }
                ],
            },
        }
        created = await call(v2.create_namespaced_horizontal_pod_autoscaler, NS, hpa)
        assert created.spec.min_replicas == 1
        listed = await call(v2.list_horizontal_pod_autoscaler_for_all_namespaces)
        assert [(h.spec.scale_target_ref.kind, h.spec.scale_target_ref.name) for h in listed.items] == [
            ("Deployment", "trino-worker")
        ]
        old = await call(v1.read_namespaced_horizontal_pod_autoscaler, "trino", NS)
        assert old.spec.target_cpu_utilization_percentage is None
        assert (
            json.loads(old.metadata.annotations["autoscaling.alpha.kubernetes.io/metrics"])[0]["type"]
            == "External"
        )
        cpu = kubernetes.client.V1HorizontalPodAutoscaler(
            metadata=kubernetes.client.V1ObjectMeta(name="cpu"),
            spec=kubernetes.client.V1HorizontalPodAutoscalerSpec(
                scale_target_ref=kubernetes.client.V1CrossVersionObjectReference(
                    kind="StatefulSet", name="spark", api_version="apps/v1"
                ),
                max_replicas=4,
                target_cpu_utilization_percentage=70,
            ),
        )
        await call(v1.create_namespaced_horizontal_pod_autoscaler, NS, cpu)
        seen = await call(v2.read_namespaced_horizontal_pod_autoscaler, "cpu", NS)
        assert seen.spec.metrics[0].resource.name == "cpu"
        assert seen.spec.metrics[0].resource.target.average_utilization == 70
        bad = {
            **hpa,
            "metadata": {"name": "bad"},
            "spec": {**hpa["spec"], "minReplicas": 5, "maxReplicas": 2},
        }
        with pytest.raises(ApiException) as caught:
            await call(v2.create_namespaced_horizontal_pod_autoscaler, NS, bad)
        assert "must be greater than or equal to `minReplicas`" in json.loads(caught.value.body)["message"]


async def test_finalizers_and_delete_preconditions() -> None:
    async with running_kube() as kube:
        core = kubernetes.client.CoreV1Api(kube.api)
        body = kubernetes.client.V1ConfigMap(
            metadata=kubernetes.client.V1ObjectMeta(name="c", finalizers=["queuescale.io/cleanup"]),
            data={"a": "1"},
        )
        created = await call(core.create_namespaced_config_map, NS, body)
        wrong = kubernetes.client.V1DeleteOptions(preconditions=kubernetes.client.V1Preconditions(uid="nope"))
        with pytest.raises(ApiException) as caught:
            await call(core.delete_namespaced_config_map, "c", NS, body=wrong)
        assert caught.value.status == 409
        assert "Precondition failed: UID in precondition: nope" in json.loads(caught.value.body)["message"]
        code, doc = await raw(kube, "DELETE", f"/api/v1/namespaces/{NS}/configmaps/c")
        # a finalizer holds the object: 202 and a deletionTimestamp
        assert code == 202
        assert doc["metadata"]["deletionTimestamp"]
        still = await call(core.read_namespaced_config_map, "c", NS)
        assert still.metadata.uid == created.metadata.uid
        await call(
            core.patch_namespaced_config_map, "c", NS, [{"op": "remove", "path": "/metadata/finalizers"}]
        )
        with pytest.raises(ApiException) as caught:
            await call(core.read_namespaced_config_map, "c", NS)
        assert caught.value.status == 404


async def test_pods_accept_metadata_patches_only() -> None:
    async with running_kube(KubeSandbox(clock=ManualClock(), tick_interval=None)) as kube:
        kube.sandbox.create(
            kube.sandbox.store.types[("apps", "v1", "deployments")],
            NS,
            workload_manifest("Deployment", "d", 1),
        )
        core = kubernetes.client.CoreV1Api(kube.api)
        pod = (await call(core.list_namespaced_pod, NS)).items[0]
        name = pod.metadata.name
        patched = await call(
            core.patch_namespaced_pod,
            name,
            NS,
            {"metadata": {"labels": {"drain": "yes"}, "annotations": {"x": "1"}}},
        )
        assert patched.metadata.labels["drain"] == "yes"
        assert patched.metadata.labels["app"] == "d"
        with pytest.raises(ApiException) as caught:
            await call(core.patch_namespaced_pod, name, NS, {"spec": {"nodeName": "elsewhere"}})
        assert caught.value.status == 422
        assert "pod updates may not change fields" in json.loads(caught.value.body)["message"]
        code, _doc = await raw(kube, "POST", f"/api/v1/namespaces/{NS}/pods", {"metadata": {"name": "bare"}})
        assert code == 405


async def test_crd_created_through_the_api_is_served() -> None:
    async with running_kube() as kube:
        ext = kubernetes.client.ApiextensionsV1Api(kube.api)
        crd = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {
                    "plural": "widgets",
                    "singular": "widget",
                    "kind": "Widget",
                    "listKind": "WidgetList",
                },
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                                },
                            }
                        },
                    }
                ],
            },
        }
        await call(ext.create_custom_resource_definition, crd)
        names = [c.metadata.name for c in (await call(ext.list_custom_resource_definition)).items]
        assert names == [
            "scalingpolicies.queuescale.io",
            "scheduledsparkapplications.sparkoperator.k8s.io",
            "sparkapplications.sparkoperator.k8s.io",
            "widgets.example.com",
        ]
        co = kubernetes.client.CustomObjectsApi(kube.api)
        made = await call(
            co.create_namespaced_custom_object,
            "example.com",
            "v1",
            NS,
            "widgets",
            {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "metadata": {"name": "w"},
                "spec": {"size": 3},
            },
        )
        assert made["spec"] == {"size": 3}
        with pytest.raises(ApiException) as caught:
            await call(
                co.create_namespaced_custom_object,
                "example.com",
                "v1",
                NS,
                "widgets",
                {
                    "apiVersion": "example.com/v1",
                    "kind": "Widget",
                    "metadata": {"name": "x"},
                    "spec": {"size": "big"},
                },
            )
        assert "spec.size in body must be of type integer" in json.loads(caught.value.body)["message"]


async def test_discovery_names_every_group_and_subresource() -> None:
    async with running_kube() as kube:
        _, groups = await raw(kube, "GET", "/apis")
        by_name = {g["name"]: g for g in groups["groups"]}
        assert set(by_name) >= {
            "apps",
            "autoscaling",
            "coordination.k8s.io",
            "events.k8s.io",
            "queuescale.io",
            "sparkoperator.k8s.io",
            "authorization.k8s.io",
            "apiextensions.k8s.io",
        }
        assert by_name["autoscaling"]["preferredVersion"]["version"] == "v2"
        _, apps = await raw(kube, "GET", "/apis/apps/v1")
        resources = {r["name"]: r for r in apps["resources"]}
        assert resources["deployments/scale"]["group"] == "autoscaling"
        assert resources["deployments/scale"]["kind"] == "Scale"
        assert resources["statefulsets"]["shortNames"] == ["sts"]
        assert "statefulsets/status" in resources
        _code, qs = await raw(kube, "GET", "/apis/queuescale.io/v1alpha1")
        (sp,) = [r for r in qs["resources"] if r["name"] == "scalingpolicies"]
        assert (sp["kind"], sp["shortNames"], sp["namespaced"]) == ("ScalingPolicy", ["qsp"], True)
        version = await call(kubernetes.client.VersionApi(kube.api).get_code)
        assert version.major == "1"


async def test_list_pages_and_tables() -> None:
    async with running_kube(KubeSandbox(clock=ManualClock(), tick_interval=None)) as kube:
        core = kubernetes.client.CoreV1Api(kube.api)
        for name in ("a", "b", "c"):
            kube.sandbox.set_configmap(NS, name, {"k": name})
        first = await call(core.list_namespaced_config_map, NS, limit=2)
        assert [c.metadata.name for c in first.items] == ["a", "b"]
        assert first.metadata.remaining_item_count == 1
        rest = await call(core.list_namespaced_config_map, NS, limit=2, _continue=first.metadata._continue)
        assert [c.metadata.name for c in rest.items] == ["c"]
        assert rest.metadata._continue is None

        co = kubernetes.client.CustomObjectsApi(kube.api)
        await call(co.create_namespaced_custom_object, *QS, NS, "scalingpolicies", policy("adhoc"))
        accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        _code, doc = await raw(
            kube, "GET", f"/apis/queuescale.io/v1alpha1/namespaces/{NS}/scalingpolicies", Accept=accept
        )
        assert doc["kind"] == "Table"
        crd = yaml.safe_load(CRD_PATH.read_text())
        printer = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        assert [c["name"] for c in doc["columnDefinitions"]] == ["Name", *[c["name"] for c in printer]]
        assert doc["rows"][0]["cells"][:4] == ["adhoc", "TrinoWorkers", 1, 10]
        assert doc["rows"][0]["object"]["metadata"]["namespace"] == NS


async def test_dry_run_writes_nothing() -> None:
    async with running_kube() as kube:
        code, doc = await raw(
            kube, "POST", f"/api/v1/namespaces/{NS}/configmaps?dryRun=All", {"metadata": {"name": "x"}}
        )
        assert (code, doc["metadata"]["name"]) == (201, "x")
        code, doc = await raw(kube, "GET", f"/api/v1/namespaces/{NS}/configmaps/x")
        assert code == 404
