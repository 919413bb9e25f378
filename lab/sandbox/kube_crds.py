"""CustomResourceDefinitions the sandbox serves: its own ScalingPolicy CRD (generated from the policy
models), stand-ins for spark-operator's, and the resource types any CRD describes."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autoscaler.policy.schema import crd as scaling_policy_crd
from lab.sandbox.kube_errors import bad_request
from lab.sandbox.kube_types import ALL_VERBS, ResourceType

Obj = dict[str, Any]

CRDS = ResourceType(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "CustomResourceDefinition",
    namespaced=False,
    verbs=("create", "get", "list", "watch"),
    singular="customresourcedefinition",
    short_names=("crd", "crds"),
)


@dataclass(frozen=True)
class CustomResource:
    """What a CRD adds to a served custom resource type."""

    schema: Mapping[str, Any] | None
    printer_columns: tuple[Mapping[str, Any], ...]


@functools.cache
def _scaling_policy_json() -> str:
    return json.dumps(scaling_policy_crd())


def scaling_policy() -> Obj:
    """The ScalingPolicy CRD, as deploy/crds holds it."""
    loaded: Obj = json.loads(_scaling_policy_json())
    return loaded


OPERATOR_API_APPROVAL = "https://github.com/kubeflow/spark-operator/pull/1298"


def spark_operator_crds() -> list[Obj]:
    """CRDs standing for spark-operator's: open schemas (the operator's are huge), its printer columns."""

    def one(kind: str, plural: str, short: str, columns: list[Obj]) -> Obj:
        open_node = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            # A group under k8s.io is protected: the real server refuses the CRD without this annotation,
            # which the operator's own CRDs carry with this value.
            "metadata": {
                "name": f"{plural}.sparkoperator.k8s.io",
                "annotations": {"api-approved.kubernetes.io": OPERATOR_API_APPROVAL},
            },
            "spec": {
                "group": "sparkoperator.k8s.io",
                "scope": "Namespaced",
                "names": {
                    "kind": kind,
                    "listKind": f"{kind}List",
                    "plural": plural,
                    "singular": kind.lower(),
                    "shortNames": [short],
                },
                "versions": [
                    {
                        "name": "v1beta2",
                        "served": True,
                        "storage": True,
                        "subresources": {"status": {}},
                        "additionalPrinterColumns": columns,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {"spec": open_node, "status": open_node},
                            }
                        },
                    }
                ],
            },
        }

    age = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    return [
        one(
            "SparkApplication",
            "sparkapplications",
            "sparkapp",
            [
                {"name": "Status", "type": "string", "jsonPath": ".status.applicationState.state"},
                {"name": "Attempts", "type": "string", "jsonPath": ".status.submissionAttempts"},
                {"name": "Start", "type": "string", "jsonPath": ".status.lastSubmissionAttemptTime"},
                {"name": "Finish", "type": "string", "jsonPath": ".status.terminationTime"},
                age,
            ],
        ),
        one(
            "ScheduledSparkApplication",
            "scheduledsparkapplications",
            "scheduledsparkapp",
            [
                {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
                {"name": "Suspend", "type": "string", "jsonPath": ".spec.suspend"},
                {"name": "Last Run", "type": "date", "jsonPath": ".status.lastRun"},
                {"name": "Last Run Name", "type": "string", "jsonPath": ".status.lastRunName"},
                age,
            ],
        ),
    ]


def types_of(doc: Mapping[str, Any]) -> tuple[list[tuple[ResourceType, CustomResource]], Obj]:
    """The served types of a CRD (each served version; the others convert to the storage version) and the
    CRD as the API shows it once established."""
    crd = copy.deepcopy(dict(doc))
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    if not spec.get("group") or not names.get("plural") or not names.get("kind") or not versions:
        raise bad_request("a CustomResourceDefinition needs spec.group, spec.names.plural/kind and versions")
    storage = next((v for v in versions if v.get("storage")), versions[0])
    storage_key = (spec["group"], storage["name"], names["plural"])
    served = []
    for version in versions:
        rt = ResourceType(
            spec["group"],
            version["name"],
            names["plural"],
            names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            verbs=ALL_VERBS,
            singular=names.get("singular") or names["kind"].lower(),
            custom=True,
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=("status",) if "status" in (version.get("subresources") or {}) else (),
            generation=True,
            unconditional_update=False,
            storage=None if version is storage else storage_key,
        )
        schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or None
        columns = tuple(version.get("additionalPrinterColumns") or ())
        served.append((rt, CustomResource(schema, columns)))
    crd.setdefault("metadata", {})["name"] = f"{names['plural']}.{spec['group']}"
    crd["status"] = {
        "conditions": [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}],
        "acceptedNames": names,
        "storedVersions": [storage["name"]],
    }
    return served, crd
