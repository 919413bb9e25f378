"""Structural-schema handling of custom resources, as kube-apiserver applies a CRD's openAPIV3Schema:
unknown fields are pruned (silently dropped) and the rest is validated, with error texts shaped like
the API server's ("spec.x in body should be greater than or equal to 1"). CEL rules
(``x-kubernetes-validations``) and formats are not evaluated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]
Cause = tuple[str, str, str]
"""(field, reason, message) as in a Status's details.causes."""

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
}
_JSON_NAMES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
}
_METADATA_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
        "selfLink",
    }
)


def _preserves(schema: Mapping[str, Any]) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


def prune(value: Any, schema: Mapping[str, Any] | None) -> Any:
    """Drop what the schema does not declare (fields under preserve-unknown-fields stay)."""
    if schema is None:
        return value
    if isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            if key in props:
                out[key] = prune(item, props[key])
            elif isinstance(extra, dict):
                out[key] = prune(item, extra)
            elif extra is True or _preserves(schema):
                out[key] = item
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"]) for item in value]
    return value


def prune_object(obj: Obj, root: Mapping[str, Any]) -> Obj:
    """Prune a whole custom resource: metadata keeps only ObjectMeta fields, the rest follows ``root``."""
    out: Obj = {}
    props: Mapping[str, Any] = root.get("properties") or {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            out[key] = value
        elif key == "metadata" and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if k in _METADATA_FIELDS}
        elif key in props:
            out[key] = prune(value, props[key])
        elif _preserves(root):
            out[key] = value
    return out


def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _type_ok(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(kind, (object,)))


def validate(value: Any, schema: Mapping[str, Any], path: str = "") -> list[Cause]:
    """Field errors of ``value`` against an OpenAPI v3 structural schema."""
    if value is None:
        if schema.get("nullable"):
            return []
        kind = schema.get("type")
        return (
            [
                (
                    path,
                    "FieldValueTypeInvalid",
                    f'Invalid value: "null": {path} in body must be of type {kind}: "null"',
                )
            ]
            if kind
            else []
        )
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            return [
                (
                    path,
                    "FieldValueTypeInvalid",
                    f"Invalid value: {_shown(value)}: {path} in body must be of type integer or string",
                )
            ]
    elif schema.get("type") and not _type_ok(value, str(schema["type"])):
        kind = schema["type"]
        got = _JSON_NAMES.get(type(value), type(value).__name__)
        return [
            (
                path,
                "FieldValueTypeInvalid",
                f'Invalid value: "{got}": {path} in body must be of type {kind}: "{got}"',
            )
        ]
    causes: list[Cause] = []
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        allowed = ", ".join(_shown(v) for v in enum)
        causes.append(
            (
                path,
                "FieldValueNotSupported",
                f"Unsupported value: {_shown(value)}: supported values: {allowed}",
            )
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        causes.extend(_bounds(value, schema, path))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append(
                (
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {_shown(value)}: {path} in body should be at least {schema['minLength']} chars long",
                )
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append(
                (path, "FieldValueTooLong", f"Too long: may not be more than {schema['maxLength']} bytes")
            )
        if "pattern" in schema and not re.search(schema["pattern"], value):
            causes.append(
                (
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {_shown(value)}: {path} in body should match '{schema['pattern']}'",
                )
            )
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append(
                (
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {len(value)}: {path} in body should have at least {schema['minItems']} items",
                )
            )
        if isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                causes.extend(validate(item, schema["items"], f"{path}[{index}]"))
    if isinstance(value, dict):
        for key in schema.get("required") or []:
            if key not in value:
                causes.append((_join(path, key), "FieldValueRequired", "Required value"))
        props: Mapping[str, Any] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                causes.extend(validate(item, sub, _join(path, key)))
    return causes


def _bounds(value: float, schema: Mapping[str, Any], path: str) -> list[Cause]:
    out: list[Cause] = []
    if "minimum" in schema:
        low = schema["minimum"]
        if schema.get("exclusiveMinimum") and value <= low:
            out.append(
                (
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {_shown(value)}: {path} in body should be greater than {low}",
                )
            )
        elif value < low:
            out.append(
                (
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {_shown(value)}: {path} in body should be greater than or equal to {low}",
                )
            )
    if "maximum" in schema:
        high = schema["maximum"]
        if schema.get("exclusiveMaximum") and value >= high:
            out.append(
                (
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {_shown(value)}: {path} in body should be less than {high}",
                )
            )
        elif value > high:
            out.append(
                (
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {_shown(value)}: {path} in body should be less than or equal to {high}",
                )
            )
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def validate_object(obj: Obj, root: Mapping[str, Any]) -> list[Cause]:
    """Validate everything but metadata, apiVersion and kind (the API server checks those itself)."""
    props: Mapping[str, Any] = root.get("properties") or {}
    causes: list[Cause] = []
    for key in root.get("required") or []:
        if key not in obj and key not in ("apiVersion", "kind", "metadata"):
            causes.append((key, "FieldValueRequired", "Required value"))
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "metadata") or key not in props:
            continue
        causes.extend(validate(value, props[key], key))
    return causes
