"""The pure parts of the Kubernetes API sandbox: the ReplicaSet controller's deletion order, patches,
CRD schema pruning and validation, selectors in text form, Tables' ages, conversions."""

from __future__ import annotations

from typing import Any

import pytest

from lab.sandbox.kube_convert import hpa_from_v1, hpa_to_v1
from lab.sandbox.kube_errors import StatusError
from lab.sandbox.kube_patch import json_patch, merge_patch, strategic_merge_patch
from lab.sandbox.kube_pods import DELETION_COST, deletion_order, ordinal, template_hash
from lab.sandbox.kube_schema import prune_object, validate_object
from lab.sandbox.kube_selectors import selector_string
from lab.sandbox.kube_tables import human_duration
from lab.sandbox.kube_types import rfc3339

NOW = 1_750_000_000.0


def pod(
    name: str,
    *,
    node: str = "n1",
    phase: str = "Running",
    ready_at: float | None = NOW - 600,
    cost: int | str | None = None,
    created: float = NOW - 900,
    restarts: int = 0,
) -> dict[str, Any]:
    annotations = {} if cost is None else {DELETION_COST: str(cost)}
    conditions = []
    if ready_at is not None:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(ready_at)})
    else:
        conditions.append({"type": "Ready", "status": "False"})
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "annotations": annotations,
            "creationTimestamp": rfc3339(created),
        },
        "spec": {"nodeName": node},
        "status": {
            "phase": phase,
            "conditions": conditions,
            "containerStatuses": [{"restartCount": restarts}],
        },
    }


@pytest.mark.parametrize(
    ("pods", "first"),
    [
        # an unscheduled pod goes before a scheduled one
        ([pod("a"), pod("b", node="", phase="Pending", ready_at=None)], "b"),
        # Pending before Running
        ([pod("a"), pod("b", phase="Pending", ready_at=None)], "b"),
        # not ready before ready, whatever the cost
        ([pod("a", cost=-100), pod("b", ready_at=None, cost=100)], "b"),
        # the lower deletion cost first
        ([pod("a", cost=10), pod("b", cost=-3), pod("c")], "b"),
        # a cost that is not an int32 counts as 0
        ([pod("a", cost="many"), pod("b", cost=1)], "a"),
        # a pod on a node crowded with its siblings first
        ([pod("a", node="n1"), pod("b", node="n2"), pod("c", node="n2", created=NOW - 7200)], "b"),
        # ready for less time first (log scale: 1 minute vs 1 hour)
        ([pod("a", ready_at=NOW - 3600), pod("b", ready_at=NOW - 60)], "b"),
        # more restarts first
        ([pod("a"), pod("b", restarts=3)], "b"),
        # the newer first
        ([pod("a", created=NOW - 7200), pod("b", created=NOW - 100)], "b"),
    ],
)
def test_deletion_order(pods: list[dict[str, Any]], first: str) -> None:
    assert deletion_order(pods, now=NOW)[0]["metadata"]["name"] == first
    assert deletion_order(list(reversed(pods)), now=NOW)[0]["metadata"]["name"] == first


def test_deletion_order_ties_within_a_power_of_two_go_by_uid() -> None:
    # 100 s and 120 s ago fall in the same log2 bucket of nanoseconds: the UID decides, not the age
    older, newer = pod("b", created=NOW - 120), pod("a", created=NOW - 100)
    assert [p["metadata"]["name"] for p in deletion_order([older, newer], now=NOW)] == ["a", "b"]
    assert [p["metadata"]["name"] for p in deletion_order([newer, older], now=NOW)] == ["a", "b"]
    # without a reference time, plainly the newest first
    older, newer = pod("a", created=NOW - 120), pod("b", created=NOW - 100)
    assert [p["metadata"]["name"] for p in deletion_order([older, newer])] == ["b", "a"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("web-0", 0), ("web-12", 12), ("web-01", None), ("web-x", None), ("other-1", None), ("web-", None)],
)
def test_ordinal(name: str, expected: int | None) -> None:
    assert ordinal(name, "web") == expected


def test_template_hash_is_stable_and_alphabet_safe() -> None:
    a = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
    b = {"spec": {"containers": [{"image": "i:1", "name": "c"}]}, "metadata": {"labels": {"app": "x"}}}
    assert template_hash(a) == template_hash(b)
    assert template_hash(a) != template_hash(a, collision_count=1)
    assert set(template_hash(a)) <= set("bcdfghjklmnpqrstvwxz2456789")


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        # empty selects everything
        ({}, ""),
        # matchLabels sorted by key
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        # expressions with sorted values
        ({"matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["z", "y"]}]}, "t notin (y,z)"),
        (
            {
                "matchExpressions": [
                    {"key": "t", "operator": "Exists"},
                    {"key": "s", "operator": "DoesNotExist"},
                ]
            },
            "!s,t",
        ),
    ],
)
def test_selector_string(doc: dict[str, Any], expected: str) -> None:
    assert selector_string(doc) == expected


def test_merge_patches() -> None:
    current = {"a": {"b": 1, "c": 2}, "l": [1, 2], "x": 1}
    assert merge_patch(current, {"a": {"b": None, "d": 3}, "l": [3], "x": None}) == {
        "a": {"c": 2, "d": 3},
        "l": [3],
    }
    containers = {
        "containers": [
            {"name": "a", "image": "1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "1"},
        ]
    }
    patched = strategic_merge_patch(containers, {"containers": [{"name": "a", "image": "2"}]})
    # merged by name: the other container and the untouched fields stay
    assert patched == {
        "containers": [
            {"name": "a", "image": "2", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "1"},
        ]
    }
    deleted = strategic_merge_patch(containers, {"containers": [{"name": "b", "$patch": "delete"}]})
    assert [c["name"] for c in deleted["containers"]] == ["a"]
    replaced = strategic_merge_patch({"spec": {"a": 1, "b": 2}}, {"spec": {"$patch": "replace", "c": 3}})
    assert replaced == {"spec": {"c": 3}}
    finalizers = strategic_merge_patch({"finalizers": ["a"]}, {"finalizers": ["b", "a"]})
    assert finalizers == {"finalizers": ["a", "b"]}
    removed = strategic_merge_patch(
        {"finalizers": ["a", "b"]}, {"$deleteFromPrimitiveList/finalizers": ["a"]}
    )
    assert removed == {"finalizers": ["b"]}


def test_json_patch() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}, "d~e/f": 0}
    ops = [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "add", "path": "/a/0", "value": 0},
        {"op": "move", "from": "/b/c", "path": "/moved"},
        {"op": "copy", "from": "/moved", "path": "/copied"},
        {"op": "replace", "path": "/d~0e~1f", "value": 9},
        {"op": "test", "path": "/a/3", "value": 3},
        {"op": "remove", "path": "/a/1"},
    ]
    assert json_patch(doc, ops) == {"a": [0, 2, 3], "b": {}, "d~e/f": 9, "moved": 1, "copied": 1}
    assert doc == {"a": [1, 2], "b": {"c": 1}, "d~e/f": 0}
    with pytest.raises(StatusError) as caught:
        json_patch(doc, [{"op": "remove", "path": "/missing"}])
    assert caught.value.code == 422
    with pytest.raises(StatusError) as caught:
        json_patch(doc, {"op": "add"})
    assert caught.value.code == 400


SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "items": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "object", "properties": {"k": {"type": "string"}}},
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "value": {
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                    "x-kubernetes-int-or-string": True,
                },
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        }
    },
}


def test_schema_prunes_unknown_fields() -> None:
    obj = {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "n", "bogus": 1},
        "spec": {
            "size": 1,
            "extra": 2,
            "items": [{"k": "v", "z": 1}],
            "labels": {"a": "b"},
            "free": {"any": {"thing": 1}},
        },
        "other": 1,
    }
    assert prune_object(obj, SCHEMA) == {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "n"},
        "spec": {"size": 1, "items": [{"k": "v"}], "labels": {"a": "b"}, "free": {"any": {"thing": 1}}},
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "spec.size: Required value"),
        ({"size": 0}, "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"),
        ({"size": 11}, "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10"),
        (
            {"size": "1"},
            'spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"',
        ),
        ({"size": True}, 'spec.size: Invalid value: "boolean"'),
        (
            {"size": 1, "ratio": 0},
            "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0",
        ),
        ({"size": 1, "mode": "c"}, 'spec.mode: Unsupported value: "c": supported values: "a", "b"'),
        ({"size": 1, "name": "ABC"}, "spec.name in body should match '^[a-z]+$'"),
        ({"size": 1, "name": "abcdef"}, "spec.name: Too long: may not be more than 5 bytes"),
        ({"size": 1, "items": []}, "spec.items in body should have at least 1 items"),
        ({"size": 1, "labels": {"a": 1}}, "spec.labels.a in body must be of type string"),
        ({"size": 1, "value": 1.5}, "spec.value in body must be of type integer or string"),
    ],
)
def test_schema_validation_messages(spec: dict[str, Any], message: str) -> None:
    causes = validate_object({"spec": spec}, SCHEMA)
    assert any(message in f"{field}: {text}" for field, _, text in causes), causes


def test_schema_accepts_a_valid_object() -> None:
    spec = {"size": 3, "ratio": 0.5, "mode": "a", "name": "ok", "items": [{"k": "v"}], "value": "50%"}
    assert validate_object({"spec": spec}, SCHEMA) == []


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (59, "59s"),
        (119, "119s"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (40 * 86400, "40d"),
        (3 * 365 * 86400, "3y"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_hpa_conversion_round_trip_keeps_v2_only_fields() -> None:
    v2 = {
        "metadata": {"name": "h"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "d"},
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
                },
                {
                    "type": "External",
                    "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "10"}},
                },
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
        },
        "status": {"desiredReplicas": 2, "conditions": [{"type": "AbleToScale", "status": "True"}]},
    }
    v1 = hpa_to_v1(v2)
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 60
    assert v1["status"] == {"currentReplicas": 0, "desiredReplicas": 2}
    back = hpa_from_v1(v1)
    assert back["spec"] == v2["spec"]
    assert back["status"]["conditions"] == v2["status"]["conditions"]
    assert "annotations" not in back["metadata"]
