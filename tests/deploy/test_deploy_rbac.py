"""RBAC in ``deploy/`` grants exactly the API calls listed in ``autoscaler/controller/api_calls.py``.

Both directions: every call the controller and the adapter make is granted where the code makes it, and
every granted (verb, resource, name) is one of those calls. Grants are read from the rendered manifests,
bindings resolved to their roles, so an unbound role grants nothing and a binding to a role that does not
ship (a built-in one such as ``system:auth-delegator``) is reported rather than trusted.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import pytest

from autoscaler.controller.api_calls import ADAPTER_CALLS, CONTROLLER_CALLS, ApiCall
from autoscaler.policy.loading import from_resource
from tests.helpers.deploy import DEPLOY, KUBECTL, Obj, of_kind, render

pytestmark = pytest.mark.skipif(KUBECTL is None and not os.environ.get("CI"), reason="kubectl not installed")

NAMESPACE = "queuescale"
ACCOUNTS = {"queuescale-controller": CONTROLLER_CALLS, "queuescale-adapter": ADAPTER_CALLS}
RBAC_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}

# The built-in roles the issue names, as kubernetes/kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy
# defines them: the adapter's grants are the part of them it uses.
AUTH_DELEGATOR = {
    ("authentication.k8s.io", "tokenreviews", "create"),
    ("authorization.k8s.io", "subjectaccessreviews", "create"),
}
AUTHENTICATION_READER = {("", "configmaps", v) for v in ("get", "list", "watch")}


class Grant(NamedTuple):
    account: str
    namespace: str  # "" for cluster-wide
    group: str
    resource: str  # "pods", "deployments/scale", "*"
    verb: str
    name: str  # "" for any name


@pytest.fixture(scope="module")
def objs() -> list[Obj]:
    # The base, and the example Role that grants the Secret a policy names in its namespace.
    return render(DEPLOY / "base") + render(DEPLOY / "examples" / "policies")


def _rule_grants(account: str, namespace: str, rule: Obj) -> set[Grant]:
    return {
        Grant(account, namespace, group, resource, verb, name)
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
        for name in rule.get("resourceNames") or [""]
    }


def granted(objs: list[Obj]) -> set[Grant]:
    roles = {("ClusterRole", "", o["metadata"]["name"]): o for o in of_kind(objs, "ClusterRole")}
    roles |= {("Role", o["metadata"]["namespace"], o["metadata"]["name"]): o for o in of_kind(objs, "Role")}
    grants: set[Grant] = set()
    for binding in [*of_kind(objs, "ClusterRoleBinding"), *of_kind(objs, "RoleBinding")]:
        namespace = binding["metadata"].get("namespace", "") if binding["kind"] == "RoleBinding" else ""
        ref = binding["roleRef"]
        key = (ref["kind"], namespace if ref["kind"] == "Role" else "", ref["name"])
        assert key in roles, (
            f"{binding['kind']} {binding['metadata']['name']} binds {ref['name']}, which does not ship"
        )
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount", subject
            assert subject["namespace"] == NAMESPACE, subject
            for rule in roles[key]["rules"]:
                grants |= _rule_grants(subject["name"], namespace, rule)
    return grants


def _policy_secrets(objs: list[Obj]) -> set[tuple[str, str]]:
    found = set()
    for obj in of_kind(objs, "ScalingPolicy"):
        policy = from_resource(obj)
        trino = policy.spec.target.trino
        if trino is not None and trino.credentials_secret is not None:
            found.add((policy.metadata.namespace or "default", trino.credentials_secret.name))
    return found


def expected(objs: list[Obj]) -> dict[Grant, ApiCall]:
    want: dict[Grant, ApiCall] = {}
    for account, calls in ACCOUNTS.items():
        for call in calls:
            resource = f"{call.resource}/{call.subresource}" if call.subresource else call.resource
            if call.scope == "policy-namespace":
                places = sorted(_policy_secrets(objs))
                assert places, f"no example policy exercises {call}"
            else:
                ns = {"cluster": "", "own-namespace": NAMESPACE, "kube-system": "kube-system"}[call.scope]
                places = [(ns, n) for n in call.names or ("",)]
            for namespace, name in places:
                for verb in call.verbs:
                    want[Grant(account, namespace, call.group, resource, verb, name)] = call
    return want


def test_every_api_call_is_granted(objs: list[Obj]) -> None:
    missing = [f"{g} ({call.why})" for g, call in expected(objs).items() if g not in granted(objs)]
    assert not missing, "not granted:\n" + "\n".join(missing)


def test_nothing_is_granted_beyond_the_api_calls(objs: list[Obj]) -> None:
    extra = sorted(granted(objs) - expected(objs).keys())
    assert not extra, "granted but never called:\n" + "\n".join(map(str, extra))


def test_every_role_is_bound_and_every_account_runs_a_workload(objs: list[Obj]) -> None:
    bound = {
        b["roleRef"]["name"] for b in [*of_kind(objs, "ClusterRoleBinding"), *of_kind(objs, "RoleBinding")]
    }
    roles = {o["metadata"]["name"] for o in [*of_kind(objs, "ClusterRole"), *of_kind(objs, "Role")]}
    assert roles == bound
    accounts = {o["metadata"]["name"] for o in of_kind(objs, "ServiceAccount")}
    running = {d["spec"]["template"]["spec"]["serviceAccountName"] for d in of_kind(objs, "Deployment")}
    assert accounts == running == set(ACCOUNTS)


def test_no_wildcards_but_the_metric_names(objs: list[Obj]) -> None:
    for role in [*of_kind(objs, "ClusterRole"), *of_kind(objs, "Role")]:
        assert "aggregationRule" not in role
        for rule in role["rules"]:
            assert "*" not in rule["verbs"], role["metadata"]["name"]
            assert "*" not in rule.get("apiGroups", []), role["metadata"]["name"]
            assert not rule.get("nonResourceURLs"), role["metadata"]["name"]
            if "*" in rule.get("resources", []):
                assert rule["apiGroups"] == ["external.metrics.k8s.io"]
                assert rule["verbs"] == ["list"]


def test_the_call_tables_are_well_formed() -> None:
    for calls in ACCOUNTS.values():
        keys = [(c.group, c.resource, c.subresource, c.scope, c.names) for c in calls]
        assert len(keys) == len(set(keys)), "merge lines that differ only in verbs"
        for call in calls:
            assert set(call.verbs) <= RBAC_VERBS, call
            assert len(set(call.verbs)) == len(call.verbs), call
            assert call.why.strip(), call
            assert not call.names or "create" not in call.verbs, f"RBAC cannot limit create by name: {call}"


def test_the_adapter_needs_only_part_of_the_built_in_roles() -> None:
    cluster = {
        (c.group, c.resource, v)
        for c in ADAPTER_CALLS
        if c.group.endswith("authorization.k8s.io")
        for v in c.verbs
    }
    assert cluster
    assert cluster < AUTH_DELEGATOR
    reader = {(c.group, c.resource, v) for c in ADAPTER_CALLS if c.scope == "kube-system" for v in c.verbs}
    assert reader
    assert reader < AUTHENTICATION_READER
