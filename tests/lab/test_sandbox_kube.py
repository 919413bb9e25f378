"""The official ``kubernetes`` client against the Kubernetes API sandbox, over real HTTP.

The client is synchronous, so every call runs in a thread while the sandbox serves on the loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import kubernetes.client
import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from adapter.kube import KubeSettings, api_client
from core.errors import ConfigError
from lab.sandbox.kube import KubeSandbox
from tests.helpers.kube import RunningKube, running_kube

T = TypeVar("T")


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


def seed(sb: KubeSandbox) -> None:
    sb.add_pod("spark", "driver-a", {"app": "etl", "role": "driver", "tier": "1"}, "10.0.0.1")
    sb.add_pod("spark", "exec-a1", {"app": "etl", "role": "executor", "tier": "2"}, "10.0.0.2")
    sb.add_pod("spark", "exec-a2", {"app": "etl", "role": "executor"}, "10.0.0.3", phase="Pending")
    sb.add_pod("trino", "coordinator", {"app": "trino", "role": "coordinator"}, "10.0.1.1")


@pytest.mark.parametrize(
    ("namespace", "selector", "expected"),
    [
        # no selector: every pod of the namespace
        ("spark", None, ["driver-a", "exec-a1", "exec-a2"]),
        # equality
        ("spark", "role=executor", ["exec-a1", "exec-a2"]),
        # inequality also matches pods without the label
        ("spark", "tier!=1", ["exec-a1", "exec-a2"]),
        # set-based
        ("spark", "role in (driver,coordinator)", ["driver-a"]),
        # existence and absence
        ("spark", "!tier", ["exec-a2"]),
        # numeric comparison
        ("spark", "tier>1", ["exec-a1"]),
        # several requirements are ANDed
        ("spark", "app=etl,role=executor,tier", ["exec-a1"]),
        # all namespaces
        (None, "role in (driver,coordinator)", ["coordinator", "driver-a"]),
        # no match is an empty list, not an error
        ("trino", "role=worker", []),
    ],
)
async def test_list_pods_with_label_selectors(
    namespace: str | None, selector: str | None, expected: list[str]
) -> None:
    async with running_kube() as kube:
        seed(kube.sandbox)
        core = kubernetes.client.CoreV1Api(kube.api)
        kwargs = {"label_selector": selector} if selector is not None else {}
        if namespace is None:
            pods = await call(core.list_pod_for_all_namespaces, **kwargs)
        else:
            pods = await call(core.list_namespaced_pod, namespace, **kwargs)
        assert sorted(p.metadata.name for p in pods.items) == expected


async def test_pod_fields_the_client_reads() -> None:
    async with running_kube() as kube:
        seed(kube.sandbox)
        kube.sandbox.add_pod("spark", "exec-b", {"app": "etl"}, "10.0.0.9", annotations={"x/cost": "5"})
        core = kubernetes.client.CoreV1Api(kube.api)
        pods = await call(core.list_namespaced_pod, "spark", field_selector="status.phase=Pending")
        assert [p.metadata.name for p in pods.items] == ["exec-a2"]
        pods = await call(core.list_namespaced_pod, "spark", label_selector="app=etl")
        by_name = {p.metadata.name: p for p in pods.items}
        pod = by_name["exec-b"]
        assert pod.status.pod_ip == "10.0.0.9"
        assert pod.status.phase == "Running"
        assert pod.metadata.annotations == {"x/cost": "5"}
        assert pod.metadata.namespace == "spark"
        assert pod.metadata.uid
        assert pod.metadata.creation_timestamp is not None
        ready = {
            p.metadata.name: [c.status for c in p.status.conditions if c.type == "Ready"] for p in pods.items
        }
        assert ready["exec-a2"] == ["False"]
        assert ready["exec-b"] == ["True"]
        # One counter for the whole store: later writes have higher resource versions.
        versions = [int(p.metadata.resource_version) for p in pods.items]
        assert len(set(versions)) == len(versions)
        assert int(pods.metadata.resource_version) >= max(versions)


async def test_delete_pod_and_replace_keeps_uid() -> None:
    async with running_kube() as kube:
        first = kube.sandbox.add_pod("ns", "p", {"v": "1"}, "10.0.0.1")
        second = kube.sandbox.add_pod("ns", "p", {"v": "2"}, "10.0.0.1")
        assert second["metadata"]["uid"] == first["metadata"]["uid"]
        assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
        core = kubernetes.client.CoreV1Api(kube.api)
        pods = await call(core.list_namespaced_pod, "ns")
        assert [p.metadata.labels for p in pods.items] == [{"v": "2"}]
        assert kube.sandbox.delete_pod("ns", "p")
        assert not kube.sandbox.delete_pod("ns", "p")
        pods = await call(core.list_namespaced_pod, "ns")
        assert pods.items == []


async def test_configmap_read_and_not_found_status() -> None:
    async with running_kube() as kube:
        data = {"requestheader-allowed-names": '["front-proxy-client"]', "client-ca-file": "PEM"}
        kube.sandbox.set_configmap("kube-system", "extension-apiserver-authentication", data)
        core = kubernetes.client.CoreV1Api(kube.api)
        cm = await call(core.read_namespaced_config_map, "extension-apiserver-authentication", "kube-system")
        assert cm.data == data
        assert cm.metadata.resource_version
        with pytest.raises(ApiException) as caught:
            await call(core.read_namespaced_config_map, "missing", "kube-system")
        assert caught.value.status == 404
        status = json.loads(caught.value.body)
        assert status == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'configmaps "missing" not found',
            "reason": "NotFound",
            "details": {"name": "missing", "kind": "configmaps"},
            "code": 404,
        }


def review(
    user: str, groups: list[str], resource: str, namespace: str
) -> kubernetes.client.V1SubjectAccessReview:
    return kubernetes.client.V1SubjectAccessReview(
        spec=kubernetes.client.V1SubjectAccessReviewSpec(
            user=user,
            groups=groups,
            resource_attributes=kubernetes.client.V1ResourceAttributes(
                verb="list", group="external.metrics.k8s.io", resource=resource, namespace=namespace
            ),
        )
    )


async def test_subject_access_reviews_follow_rules_and_are_recorded() -> None:
    async with running_kube() as kube:
        kube.sandbox.allow(user="system:serviceaccount:kube-system:hpa", resource="trino_queued_queries")
        kube.sandbox.allow(group="admins", namespace="prod")
        authz = kubernetes.client.AuthorizationV1Api(kube.api)
        cases = [
            # user rule, right resource
            (review("system:serviceaccount:kube-system:hpa", [], "trino_queued_queries", "a"), True),
            # user rule, other resource
            (review("system:serviceaccount:kube-system:hpa", [], "spark_pending_tasks", "a"), False),
            # group rule, right namespace
            (review("bob", ["admins"], "spark_pending_tasks", "prod"), True),
            # group rule, other namespace
            (review("bob", ["admins"], "spark_pending_tasks", "dev"), False),
            # nobody: default deny
            (review("eve", ["system:authenticated"], "trino_queued_queries", "a"), False),
        ]
        for body, allowed in cases:
            answer = await call(authz.create_subject_access_review, body)
            assert answer.status.allowed is allowed, body.spec.user
        assert len(kube.sandbox.reviews) == len(cases)
        assert kube.sandbox.reviews[0]["spec"]["resourceAttributes"]["resource"] == "trino_queued_queries"


async def test_subject_access_review_failure_and_validation() -> None:
    async with running_kube() as kube:
        authz = kubernetes.client.AuthorizationV1Api(kube.api)
        kube.sandbox.review_error = 500
        with pytest.raises(ApiException) as caught:
            await call(authz.create_subject_access_review, review("a", [], "m", "n"))
        assert caught.value.status == 500
        kube.sandbox.review_error = None
        with pytest.raises(ApiException) as caught:
            await call(authz.create_subject_access_review, review("", [], "m", "n"))
        assert caught.value.status == 422
        assert json.loads(caught.value.body)["reason"] == "Invalid"


def spark_app(name: str, instances: int) -> dict[str, Any]:
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": name, "labels": {"team": "data"}},
        "spec": {"type": "Scala", "executor": {"instances": instances, "cores": 2}},
        "status": {"applicationState": {"state": "RUNNING"}},
    }


async def test_custom_objects() -> None:
    async with running_kube() as kube:
        co = kubernetes.client.CustomObjectsApi(kube.api)
        g, v, p = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
        # An installed CRD with no objects lists empty.
        empty = await call(co.list_namespaced_custom_object, g, v, "spark", p)
        assert empty["items"] == []
        assert empty["kind"] == "SparkApplicationList"
        kube.sandbox.put_object(g, v, p, "spark", spark_app("etl", 4))
        kube.sandbox.put_object(g, v, p, "other", spark_app("ml", 2))
        listed = await call(co.list_namespaced_custom_object, g, v, "spark", p)
        assert [i["metadata"]["name"] for i in listed["items"]] == ["etl"]
        assert listed["items"][0]["kind"] == "SparkApplication"
        everywhere = await call(co.list_cluster_custom_object, g, v, p, label_selector="team=data")
        assert sorted(i["metadata"]["name"] for i in everywhere["items"]) == ["etl", "ml"]
        one = await call(co.get_namespaced_custom_object, g, v, "spark", p, "etl")
        assert one["spec"]["executor"]["instances"] == 4
        assert one["metadata"]["namespace"] == "spark"
        assert one["metadata"]["resourceVersion"]
        assert one["metadata"]["uid"]
        with pytest.raises(ApiException) as caught:
            await call(co.get_namespaced_custom_object, g, v, "spark", p, "nope")
        assert caught.value.status == 404
        assert json.loads(caught.value.body)["details"] == {"name": "nope", "kind": p, "group": g}


async def test_custom_object_of_a_new_type_registers_it() -> None:
    async with running_kube() as kube:
        body = {"kind": "ScalingPolicy", "metadata": {"name": "p1"}, "spec": {"min": 1}}
        kube.sandbox.put_object("queuescale.io", "v1alpha1", "scalingpolicies", "default", body)
        co = kubernetes.client.CustomObjectsApi(kube.api)
        listed = await call(
            co.list_namespaced_custom_object, "queuescale.io", "v1alpha1", "default", "scalingpolicies"
        )
        assert [i["spec"] for i in listed["items"]] == [{"min": 1}]
        with pytest.raises(ValueError, match="kind"):
            kube.sandbox.put_object("x.io", "v1", "things", "default", {"metadata": {"name": "a"}})


async def raw(kube: RunningKube, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(method, kube.url + path, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None)


@pytest.mark.parametrize(
    ("method", "path", "code", "reason"),
    [
        # unknown resource type
        ("GET", "/api/v1/namespaces/a/widgets", 404, "NotFound"),
        # unknown group
        ("GET", "/apis/nope.io/v1/namespaces/a/things", 404, "NotFound"),
        # unknown path outside the API
        ("GET", "/nothing", 404, "NotFound"),
        # pods cannot be created here (yet)
        ("POST", "/api/v1/namespaces/a/pods", 405, "MethodNotAllowed"),
        # SubjectAccessReviews are create-only
        ("GET", "/apis/authorization.k8s.io/v1/subjectaccessreviews", 405, "MethodNotAllowed"),
        # a bad label selector
        ("GET", "/api/v1/pods?labelSelector=x%3D%3Da%3D%3Db", 400, "BadRequest"),
        # a subresource that is not served
        ("GET", "/api/v1/namespaces/a/pods/p/log", 404, "NotFound"),
    ],
)
async def test_errors_are_status(method: str, path: str, code: int, reason: str) -> None:
    async with running_kube() as kube:
        status, body = await raw(kube, method, path)
        assert status == code
        assert body["kind"] == "Status"
        assert body["status"] == "Failure"
        assert (body["code"], body["reason"]) == (code, reason)
        assert body["message"]


async def test_discovery() -> None:
    async with running_kube() as kube:
        status, api = await raw(kube, "GET", "/api")
        assert status == 200
        assert api["versions"] == ["v1"]
        status, groups = await raw(kube, "GET", "/apis")
        names = [g["name"] for g in groups["groups"]]
        assert "authorization.k8s.io" in names
        assert "sparkoperator.k8s.io" in names
        status, resources = await raw(kube, "GET", "/api/v1")
        assert {r["name"] for r in resources["resources"]} >= {"pods", "configmaps"}
        status, group = await raw(kube, "GET", "/apis/sparkoperator.k8s.io")
        assert group["preferredVersion"]["groupVersion"] == "sparkoperator.k8s.io/v1beta2"
        core = kubernetes.client.CoreApi(kube.api)
        versions = await call(core.get_api_versions)
        assert versions.versions == ["v1"]


async def test_without_spark_operator_the_crd_is_absent() -> None:
    async with running_kube(KubeSandbox(spark_operator=False)) as kube:
        co = kubernetes.client.CustomObjectsApi(kube.api)
        with pytest.raises(ApiException) as caught:
            await call(
                co.list_namespaced_custom_object, "sparkoperator.k8s.io", "v1beta2", "a", "sparkapplications"
            )
        assert caught.value.status == 404


# ----- adapter.kube: settings and the client they build, against the sandbox -----


async def test_api_client_with_host_and_rotating_token_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    async with running_kube() as kube:
        kube.sandbox.set_configmap("a", "c", {"k": "v"})
        client = api_client(KubeSettings(host=kube.url, token_file=token))
        try:
            core = kubernetes.client.CoreV1Api(client)
            await call(core.read_namespaced_config_map, "c", "a")
            token.write_text("second\n")
            await call(core.read_namespaced_config_map, "c", "a")
        finally:
            client.close()
        assert kube.sandbox.authorizations[-2:] == ["Bearer first", "Bearer second"]


async def test_api_client_from_kubeconfig(tmp_path: Path) -> None:
    async with running_kube() as kube:
        kube.sandbox.add_pod("a", "p", {}, "10.0.0.1")
        path = tmp_path / "kubeconfig"
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "sb", "cluster": {"server": kube.url}}],
                    "users": [{"name": "u", "user": {"token": "kc-token"}}],
                    "contexts": [{"name": "sb", "context": {"cluster": "sb", "user": "u"}}],
                    "current-context": "sb",
                }
            )
        )
        client = api_client(KubeSettings(kubeconfig=path))
        try:
            pods = await call(kubernetes.client.CoreV1Api(client).list_namespaced_pod, "a")
        finally:
            client.close()
        assert [p.metadata.name for p in pods.items] == ["p"]
        assert kube.sandbox.authorizations[-1] == "Bearer kc-token"


@pytest.mark.parametrize(
    "fields",
    [
        # two ways to the API at once
        {"kubeconfig": "/k", "host": "http://127.0.0.1:1"},
        {"in_cluster": True, "kubeconfig": "/k"},
        # host-only options without host
        {"token_file": "/t"},
        {"insecure_skip_tls_verify": True},
        # not a URL
        {"host": "127.0.0.1:8080"},
        # unknown field
        {"server": "http://127.0.0.1:1"},
    ],
)
def test_kube_settings_refuse_contradictions(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        KubeSettings(**fields)


def test_api_client_missing_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kube"):
        api_client(KubeSettings(kubeconfig=tmp_path / "absent"))
