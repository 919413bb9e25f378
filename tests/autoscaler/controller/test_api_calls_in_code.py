"""The API-call tables (``autoscaler/controller/api_calls.py``) against the code: every official-client
call the controller and the adapter make must be in their table (and so granted by the RBAC in ``deploy/``,
which ``tests/deploy/test_deploy_rbac.py`` checks against the same tables).

The code is scanned for official-client method names; each name maps to the request it makes. A method
this map does not know fails the test, so a new kind of call cannot slip past RBAC unnoticed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autoscaler.controller.api_calls import ADAPTER_CALLS, CONTROLLER_CALLS, ApiCall

ROOT = Path(__file__).resolve().parents[3]
SPARK_KINDS = (
    ("sparkoperator.k8s.io", "sparkapplications"),
    ("sparkoperator.k8s.io", "scheduledsparkapplications"),
)
POLICIES = (("queuescale.io", "scalingpolicies"),)

# method → (group, resource, subresource, verb); custom-object methods name their resource by argument,
# so they map per file below.
METHODS: dict[str, tuple[str, str, str, str]] = {
    "read_namespaced_deployment_scale": ("apps", "deployments", "scale", "get"),
    "replace_namespaced_deployment_scale": ("apps", "deployments", "scale", "update"),
    "read_namespaced_stateful_set_scale": ("apps", "statefulsets", "scale", "get"),
    "replace_namespaced_stateful_set_scale": ("apps", "statefulsets", "scale", "update"),
    "list_namespaced_pod": ("", "pods", "", "list"),
    "list_namespaced_deployment": ("apps", "deployments", "", "list"),
    "list_namespaced_stateful_set": ("apps", "statefulsets", "", "list"),
    "list_pod_for_all_namespaces": ("", "pods", "", "list"),
    "patch_namespaced_pod": ("", "pods", "", "patch"),
    "delete_namespaced_pod": ("", "pods", "", "delete"),
    "read_namespaced_secret": ("", "secrets", "", "get"),
    "read_namespaced_lease": ("coordination.k8s.io", "leases", "", "get"),
    "create_namespaced_lease": ("coordination.k8s.io", "leases", "", "create"),
    "replace_namespaced_lease": ("coordination.k8s.io", "leases", "", "update"),
    "create_namespaced_event": ("", "events", "", "create"),
    "list_horizontal_pod_autoscaler_for_all_namespaces": (
        "autoscaling",
        "horizontalpodautoscalers",
        "",
        "list",
    ),
    "create_subject_access_review": ("authorization.k8s.io", "subjectaccessreviews", "", "create"),
    "read_namespaced_config_map": ("", "configmaps", "", "get"),
}
CUSTOM = {
    "list_namespaced_custom_object": ("", "list"),
    "list_cluster_custom_object": ("", "list"),
    "get_namespaced_custom_object": ("", "get"),
    "patch_namespaced_custom_object": ("", "patch"),
    "patch_namespaced_custom_object_status": ("status", "patch"),
}
# Which custom resources each file's custom-object calls reach.
CUSTOM_TARGETS = {
    "autoscaler/controller/policies.py": POLICIES,
    "autoscaler/controller/status.py": POLICIES,
    "autoscaler/controller/kube_ops.py": SPARK_KINDS,
    "adapter/sources/spark.py": SPARK_KINDS[:1],
}
# Official-client methods: a verb, then a name that says where (namespaced, all namespaces, cluster).
CALL = re.compile(
    r"\.((?:read|list|create|replace|patch|delete|get)_[a-z_]*?"
    r"(?:namespaced|for_all_namespaces|cluster_custom_object|access_review)[a-z_]*)\b"
)


def calls_in(files: list[Path]) -> set[tuple[str, str, str, str]]:
    found: set[tuple[str, str, str, str]] = set()
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        for method in set(CALL.findall(text)):
            if method in METHODS:
                found.add(METHODS[method])
            elif method in CUSTOM:
                sub, verb = CUSTOM[method]
                assert rel in CUSTOM_TARGETS, f"{rel} calls {method}: say which custom resources it reaches"
                found.update((g, r, sub, verb) for g, r in CUSTOM_TARGETS[rel])
            else:
                pytest.fail(
                    f"{rel} calls {method}: add it to METHODS (and to the API-call table if it is new)"
                )
        if "w.stream(" in text and rel in CUSTOM_TARGETS:
            found.update((g, r, "", "watch") for g, r in CUSTOM_TARGETS[rel])
        if "external.metrics.k8s.io" in text and "param_serialize" in text:
            found.add(("external.metrics.k8s.io", "*", "", "list"))
    return found


def covered(call: tuple[str, str, str, str], table: tuple[ApiCall, ...]) -> bool:
    group, resource, sub, verb = call
    return any(
        c.group == group and c.resource == resource and c.subresource == sub and verb in c.verbs
        for c in table
    )


def py_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_every_controller_call_is_in_its_table() -> None:
    found = calls_in(py_files("autoscaler/controller"))
    assert ("apps", "deployments", "scale", "update") in found  # the scan sees the code at all
    missing = sorted(c for c in found if not covered(c, CONTROLLER_CALLS))
    assert missing == []


def test_every_adapter_call_is_in_its_table() -> None:
    found = calls_in(py_files("adapter"))
    assert ("authorization.k8s.io", "subjectaccessreviews", "", "create") in found
    missing = sorted(c for c in found if not covered(c, ADAPTER_CALLS))
    assert missing == []


def test_an_unknown_call_fails_the_scan(tmp_path: Path) -> None:
    rogue = ROOT / "autoscaler" / "controller" / "_rogue_for_test.py"
    rogue.write_text("def f(api):\n    api.delete_collection_namespaced_pod('ns')\n")
    try:
        with pytest.raises(pytest.fail.Exception, match="delete_collection_namespaced_pod"):
            calls_in([rogue])
    finally:
        rogue.unlink()
