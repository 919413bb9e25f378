"""The SparkApplication actuator's guarded write against the real kube-apiserver (issue 13): a merge patch
carrying the resourceVersion observe() read meets a real 409 when the object moved in between.

The actuator is built as ``queuescale controller`` builds it (``ActuatorFactoryImpl(api, cache=True)``),
with a client holding a token of ``queuescale/queuescale-controller``, which only ``deploy/base/controller``'s
rendered RBAC binds. The spark-operator CRDs are the sandbox's stand-ins (the operator's names, open schemas).
That the server really answered 409 is read from kube-apiserver's own ``apiserver_request_total``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from adapter.kube import KubeSettings, api_client
from autoscaler.controller.factory import ActuatorFactoryImpl
from autoscaler.controller.targets.spark_application.actuator import OPERATOR_GROUP, OPERATOR_VERSION
from autoscaler.policy.models import ScalingPolicy
from lab.sandbox.kube_crds import spark_operator_crds
from tests.peers.kube_adapter import (
    apply_objects,
    render_base,
    service_account_token,
    token_kubeconfig,
    wait_for,
)
from tests.peers.kube_cluster import KubeCluster
from tests.peers.kube_controller import CONTROLLER_NAMESPACE, SERVICE_ACCOUNT, controller_objects

pytestmark = pytest.mark.real_kube

NAMESPACE = "qs-spark"
PLURAL = "sparkapplications"


@dataclass
class SparkWorld:
    cluster: KubeCluster
    admin: kubernetes.client.ApiClient
    controller_kubeconfig: Path

    @property
    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.admin)

    def read(self, name: str) -> dict[str, Any]:
        got: Any = self.custom.get_namespaced_custom_object(
            OPERATOR_GROUP, OPERATOR_VERSION, NAMESPACE, PLURAL, name
        )
        return dict(got)

    def conflicts(self) -> float:
        """How many 409s kube-apiserver has answered on sparkapplications since it started."""
        status, body = self.cluster.get(
            "/metrics", client=self.cluster.client_cert("metrics-reader", ["system:masters"])
        )
        assert status == 200, body[:500]
        total = 0.0
        for line in body.decode().splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
            if labels.get("code") == "409" and labels.get("resource") == PLURAL:
                total += float(line.rsplit(" ", 1)[1])
        return total


@pytest.fixture(scope="module")
def world(real_kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkWorld]:
    workdir = tmp_path_factory.mktemp("spark-app")
    apply_objects(real_kube, workdir, "controller-rbac", controller_objects(render_base(real_kube)))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    apply_objects(real_kube, workdir, "spark-operator", [namespace, *spark_operator_crds()])
    for crd in spark_operator_crds():
        real_kube.kubectl("wait", "--for=condition=Established", f"crd/{crd['metadata']['name']}")
    token = service_account_token(real_kube, CONTROLLER_NAMESPACE, SERVICE_ACCOUNT)
    kubeconfig = token_kubeconfig(real_kube, workdir / "controller.kubeconfig", token)
    admin = real_kube.api_client()
    try:
        yield SparkWorld(real_kube, admin, kubeconfig)
    finally:
        admin.close()


def _application(name: str) -> dict[str, Any]:
    """A not yet submitted application, as a user writes one (kubeflow/spark-operator's pi example)."""
    return {
        "apiVersion": f"{OPERATOR_GROUP}/{OPERATOR_VERSION}",
        "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "type": "Python",
            "mode": "cluster",
            "sparkVersion": "4.0.0",
            "image": "spark:4.0.0",
            "mainApplicationFile": "local:///opt/spark/examples/src/main/python/pi.py",
            "driver": {"cores": 1, "memory": "512m", "serviceAccount": "spark-operator-spark"},
            "executor": {"cores": 2, "memory": "1g", "instances": 2},
        },
    }


def _policy(name: str) -> ScalingPolicy:
    return ScalingPolicy.model_validate(
        {
            "apiVersion": "queuescale.io/v1alpha1",
            "kind": "ScalingPolicy",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "target": {
                    "kind": "SparkApplication",
                    "application": {"name": name},
                    "spark": {"pool": "p", "executorCores": 2},
                },
                "minReplicas": 1,
                "maxReplicas": 40,
                "metrics": [{"type": "SparkExecutors", "sparkExecutors": {}}],
            },
        }
    )


@pytest.fixture
def controller_api(world: SparkWorld) -> Iterator[kubernetes.client.ApiClient]:
    api = api_client(KubeSettings(kubeconfig=world.controller_kubeconfig))
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


def _create(world: SparkWorld, name: str) -> dict[str, Any]:
    try:
        world.custom.delete_namespaced_custom_object(
            OPERATOR_GROUP, OPERATOR_VERSION, NAMESPACE, PLURAL, name
        )
    except ApiException as err:
        if err.status != 404:
            raise
    wait_for(f"{name} gone", lambda: not _exists(world, name), 20)
    created: Any = world.custom.create_namespaced_custom_object(
        OPERATOR_GROUP, OPERATOR_VERSION, NAMESPACE, PLURAL, _application(name)
    )
    return dict(created)


def _exists(world: SparkWorld, name: str) -> bool:
    try:
        world.read(name)
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


def _rose(world: SparkWorld, before: float) -> float:
    # The metric is updated as the request ends; a scrape right after may still miss it by a moment.
    return wait_for(
        "kube-apiserver counting a 409 on sparkapplications", lambda: world.conflicts() - before, 10
    )


async def test_an_out_of_band_change_between_observe_and_apply_is_a_real_409_then_a_fresh_write(
    world: SparkWorld, controller_api: kubernetes.client.ApiClient
) -> None:
    created = _create(world, "etl")
    factory = ActuatorFactoryImpl(controller_api, cache=True)
    actuator = factory(_policy("etl"))
    try:
        now = time.time()
        state = await actuator.observe(now)
        assert (state.replicas, state.ready) == (2, 2), state
        # Someone else (a user, kubectl label, the operator) writes in between: the resourceVersion moves.
        moved: Any = world.custom.patch_namespaced_custom_object(
            OPERATOR_GROUP,
            OPERATOR_VERSION,
            NAMESPACE,
            PLURAL,
            "etl",
            {"metadata": {"labels": {"team": "analytics"}, "annotations": {"owner": "alice"}}},
        )
        seen = created["metadata"]["resourceVersion"]
        assert moved["metadata"]["resourceVersion"] != seen
        before = world.conflicts()
        outcome = await actuator.apply(6, now)
        assert not outcome.errors, outcome
        assert outcome.replicas == 6, outcome
        conflicts = _rose(world, before)
    finally:
        await actuator.close()
        await factory.ops.close()
    assert conflicts >= 1
    got = world.read("etl")
    assert got["spec"]["executor"]["instances"] == 6
    # Nothing of the other writer's change was lost, and the rest of the spec is the user's.
    assert got["metadata"]["labels"] == {"team": "analytics"}
    assert got["metadata"]["annotations"] == {"owner": "alice"}
    assert got["spec"]["driver"] == _application("etl")["spec"]["driver"]
    assert {k: v for k, v in got["spec"]["executor"].items() if k != "instances"} == {
        "cores": 2,
        "memory": "1g",
    }
    # The write that landed carried the version read after the 409, not the one observe() saw.
    (patch,) = outcome.written.values()
    assert isinstance(patch, dict)
    assert patch["metadata"]["resourceVersion"] == moved["metadata"]["resourceVersion"]
    print(f"409s counted by kube-apiserver for this apply: {conflicts:g}")


async def test_an_application_submitted_between_observe_and_apply_is_left_alone(
    world: SparkWorld, controller_api: kubernetes.client.ApiClient
) -> None:
    """What the guard is for: the operator submits the application (a /status write) after observe();
    the stale patch is refused with 409, and the fresh read shows a run that an edit would kill."""
    _create(world, "nightly")
    factory = ActuatorFactoryImpl(controller_api, cache=True)
    actuator = factory(_policy("nightly"))
    try:
        now = time.time()
        await actuator.observe(now)
        world.custom.patch_namespaced_custom_object_status(
            OPERATOR_GROUP,
            OPERATOR_VERSION,
            NAMESPACE,
            PLURAL,
            "nightly",
            {"status": {"applicationState": {"state": "SUBMITTED"}, "submissionAttempts": 1}},
        )
        before = world.conflicts()
        outcome = await actuator.apply(6, now)
        conflicts = _rose(world, before)
    finally:
        await actuator.close()
        await factory.ops.close()
    assert conflicts >= 1
    assert not outcome.errors, outcome
    assert outcome.replicas is None, outcome
    assert "left unchanged" in outcome.detail, outcome.detail
    assert "SUBMITTED" in outcome.detail, outcome.detail
    got = world.read("nightly")
    assert got["spec"]["executor"]["instances"] == 2
    assert got["status"]["applicationState"]["state"] == "SUBMITTED"
