"""The three PATCH formats kube-apiserver accepts from JSON clients: JSON merge patch (RFC 7386),
strategic merge patch (built-in types only) and JSON patch (RFC 6902).

The strategic merge covers what clients of the served types send: lists merged by their
``patchMergeKey`` (containers by name, conditions by type, ...), ``finalizers`` merged as a set,
and the ``$patch: replace|delete``, ``$deleteFromPrimitiveList/...`` and ``$setElementOrder/...``
directives. The merge keys are looked up by field name, which is exact for the served types.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from lab.sandbox.kube_errors import StatusError, bad_request, unsupported_media_type

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}
SET_LISTS = frozenset({"finalizers"})


def accepted_types(strategic: bool) -> list[str]:
    kinds = [JSON_PATCH, MERGE_PATCH]
    if strategic:
        kinds.append(STRATEGIC_MERGE_PATCH)
    return kinds


def apply_patch(content_type: str, current: Mapping[str, Any], body: bytes, *, strategic: bool) -> Any:
    """The document after applying a PATCH request body of ``content_type`` to ``current``."""
    media = content_type.split(";")[0].strip().lower()
    if media not in accepted_types(strategic):
        raise unsupported_media_type(media, accepted_types(strategic))
    try:
        patch = json.loads(body or b"null")
    except ValueError as exc:
        raise bad_request(f"the request body is not JSON: {exc}") from exc
    if media == JSON_PATCH:
        return json_patch(current, patch)
    if not isinstance(patch, dict):
        raise bad_request("a merge patch must be a JSON object")
    if media == MERGE_PATCH:
        return merge_patch(current, patch)
    return strategic_merge_patch(current, patch)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Mapping[str, Any]) -> Any:
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return {}
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [item for item in result[field] if item not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = strategic_merge_patch(result.get(key), value)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merge_list(field: str, current: list[Any], patch: list[Any]) -> list[Any]:
    if field in SET_LISTS:
        merged = list(current)
        merged.extend(item for item in patch if item not in merged)
        return merged
    merge_key = MERGE_KEYS.get(field)
    if merge_key is None:
        if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
            return [item for item in patch if not (isinstance(item, dict) and "$patch" in item)]
        return copy.deepcopy(patch)
    merged = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict):
            raise bad_request(f"strategic merge patch: {field} items must be objects")
        if item.get("$patch") == "replace":
            return [i for i in patch if not (isinstance(i, dict) and "$patch" in i)]
        key_value = item.get(merge_key)
        index = next(
            (i for i, old in enumerate(merged) if isinstance(old, dict) and old.get(merge_key) == key_value),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            merged.append(strategic_merge_patch({}, item))
        else:
            merged[index] = strategic_merge_patch(merged[index], item)
    return merged


# ----- JSON patch -----


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902; a failed ``test`` or a missing path is a 422 like kube-apiserver's."""
    if not isinstance(operations, list):
        raise bad_request("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if (
            not isinstance(op, dict)
            or not isinstance(op.get("op"), str)
            or not isinstance(op.get("path"), str)
        ):
            raise bad_request(f"invalid JSON patch operation: {json.dumps(op)}")
        doc = _apply_op(doc, op)
    return doc


def _unprocessable(message: str) -> StatusError:
    return StatusError(
        422, "Invalid", f"the server rejected our request due to an error in our request: {message}"
    )


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _unprocessable(f'JSON pointer "{path}" does not start with "/"')
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str], path: str) -> Any:
    current = doc
    for part in parts:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise _unprocessable(f'path "{path}" does not exist')
    return current


def _apply_op(doc: Any, op: Mapping[str, Any]) -> Any:
    kind, path = op["op"], op["path"]
    parts = _pointer(path)
    if kind == "test":
        if _resolve(doc, parts, path) != op.get("value"):
            raise _unprocessable(f"testing value {path} failed: test failed")
        return doc
    if kind in ("move", "copy"):
        source = op.get("from")
        if not isinstance(source, str):
            raise bad_request(f"JSON patch {kind} needs a from")
        value = copy.deepcopy(_resolve(doc, _pointer(source), source))
        if kind == "move":
            doc = _remove(doc, _pointer(source), source)
        return _add(doc, parts, value, path)
    if kind == "remove":
        return _remove(doc, parts, path)
    if "value" not in op:
        raise bad_request(f"JSON patch {kind} needs a value")
    if kind == "add":
        return _add(doc, parts, copy.deepcopy(op["value"]), path)
    if kind == "replace":
        _resolve(doc, parts, path)
        if not parts:
            return copy.deepcopy(op["value"])
        doc = _remove(doc, parts, path)
        return _add(doc, parts, copy.deepcopy(op["value"]), path)
    raise bad_request(f"unknown JSON patch operation {kind!r}")


def _add(doc: Any, parts: list[str], value: Any, path: str) -> Any:
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise _unprocessable(f'path "{path}" is out of range')
    else:
        raise _unprocessable(f'path "{path}" does not exist')
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> Any:
    if not parts:
        return None
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise _unprocessable(f'path "{path}" does not exist')
    return doc
