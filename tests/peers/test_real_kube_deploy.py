"""``kubectl apply -k`` of our deploy overlay against a real kube-apiserver v1.37 (issue 13, §1).

The self-signed overlay, rendered in a scratch copy of ``deploy/`` that has its serving certificates
(tests/helpers/deploy.py), is applied server-side with the cluster's own kubectl: every object must be accepted,
the ScalingPolicy CRD with its structural schema and CEL rules included. Then the example policies are accepted,
and broken copies of one are refused by the server with a message that names the field.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.deploy import ROOT, render, scratch_deploy
from tests.peers.kube_cluster import KubeCluster

pytestmark = pytest.mark.real_kube

CRD = "scalingpolicies.queuescale.io"
EXAMPLE_POLICY = ROOT / "deploy" / "examples" / "policies" / "trino-workers.yaml"


def _apply(cluster: KubeCluster, *args: str) -> tuple[int, str]:
    done = cluster.kubectl("apply", "--server-side", "--field-manager=queuescale-tests", *args, check=False)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def applied_overlay(real_kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The self-signed overlay applied (once per module); returns the scratch ``deploy/`` copy."""
    deploy = scratch_deploy(tmp_path_factory.mktemp("deploy"))
    code, out = _apply(real_kube, "-k", str(deploy / "overlays" / "self-signed"))
    assert code == 0, f"kubectl apply -k deploy/overlays/self-signed was refused:\n{out}"
    waited = real_kube.kubectl(
        "wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=60s", check=False
    )
    assert waited.returncode == 0, waited.stderr
    return deploy


@pytest.mark.timeout(180)
def test_every_object_of_the_self_signed_overlay_is_accepted(
    real_kube: KubeCluster, applied_overlay: Path
) -> None:
    rendered = render(applied_overlay / "overlays" / "self-signed")
    got = real_kube.kubectl("get", "-k", str(applied_overlay / "overlays" / "self-signed"), "-o", "json")
    items = json.loads(got.stdout)["items"]
    want = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in rendered}
    have = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in items}
    assert have == want
    kinds = {kind for kind, _, _ in have}
    assert {"CustomResourceDefinition", "APIService", "ClusterRole", "Role", "Deployment"} <= kinds
    crd = next(o for o in items if o["kind"] == "CustomResourceDefinition")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    # The API server accepted the schema as structural (NonStructuralSchema would be set otherwise) and
    # established the API.
    assert conditions.get("Established") == "True"
    assert conditions.get("NamesAccepted") == "True"
    assert "NonStructuralSchema" not in conditions
    # A second apply changes nothing: what we ship is what the server keeps (no defaulting fights).
    code, out = _apply(real_kube, "-k", str(applied_overlay / "overlays" / "self-signed"))
    assert code == 0, out
    assert "serverside-applied" in out


@pytest.mark.timeout(120)
def test_example_policies_are_accepted(real_kube: KubeCluster, applied_overlay: Path) -> None:
    for namespace in ("trino", "spark"):
        real_kube.kubectl("create", "namespace", namespace, check=False)
    code, out = _apply(real_kube, "-k", str(applied_overlay / "examples" / "policies"))
    assert code == 0, f"kubectl apply -k deploy/examples/policies was refused:\n{out}"
    got = json.loads(real_kube.kubectl("get", "scalingpolicies", "-A", "-o", "json").stdout)
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in got["items"]} >= {
        ("trino", "trino-worker"),
        ("spark", "spark-worker"),
    }


def _broken(field: str, value: Any) -> dict[str, Any]:
    policy: dict[str, Any] = copy.deepcopy(yaml.safe_load(EXAMPLE_POLICY.read_text()))
    policy["metadata"]["name"] = "broken"
    node = policy
    *parents, last = field.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value
    return policy


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        # The CRD's CEL rule on spec (x-kubernetes-validations).
        (
            "spec.minReplicas",
            25,
            ['The ScalingPolicy "broken" is invalid', "spec: Invalid value", "minReplicas must not exceed"],
        ),
        # The structural schema: a type (server-side apply refuses it while building the typed patch).
        ("spec.maxReplicas", "twenty", [".spec.maxReplicas: expected numeric (int or float), got string"]),
        # The structural schema: an enum.
        (
            "spec.target.kind",
            "Presto",
            ['The ScalingPolicy "broken" is invalid', 'spec.target.kind: Unsupported value: "Presto"'],
        ),
    ],
)
def test_invalid_policy_is_refused_naming_the_field(
    real_kube: KubeCluster,
    applied_overlay: Path,
    tmp_path: Path,
    field: str,
    value: Any,
    expected: list[str],
) -> None:
    real_kube.kubectl("create", "namespace", "trino", check=False)
    manifest = tmp_path / "broken.yaml"
    manifest.write_text(yaml.safe_dump(_broken(field, value)))
    code, out = _apply(real_kube, "-f", str(manifest))
    assert code != 0, f"the server accepted a ScalingPolicy with {field}={value!r}:\n{out}"
    for needle in expected:
        assert needle in out, out
    missing = real_kube.kubectl("get", "scalingpolicy", "broken", "-n", "trino", check=False)
    assert missing.returncode != 0
