"""What kube-apiserver does to built-in objects on the way in: defaulting (the fields clients read back,
such as a Deployment's strategy or a pod template's restartPolicy), validation of the fields a
controller could get wrong, and normalization of time fields (``metav1.Time`` to whole seconds,
``MicroTime`` to microseconds)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

from core.selectors import LabelSelectorError, validate_label_key, validate_label_value
from lab.sandbox.kube_schema import Cause
from lab.sandbox.kube_selectors import from_label_selector
from lab.sandbox.kube_types import (
    DEPLOYMENTS,
    EVENTS,
    EVENTS_V1,
    HPAS,
    LEASES,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    TypeKey,
    micro_time,
    parse_time,
    rfc3339,
)

Obj = dict[str, Any]

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_WORKLOADS = (DEPLOYMENTS.key, STATEFULSETS.key, REPLICASETS.key)


# ----- defaults -----


def _template_defaults(template: Obj) -> None:
    spec = template.setdefault("spec", {})
    template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for container in spec.get("containers") or []:
        image = str(container.get("image") or "")
        tag = image.rsplit("/", 1)[-1]
        latest = ":" not in tag or tag.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest and "@" not in image else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})


def apply_defaults(key: TypeKey, obj: Obj) -> None:
    """Fill what the API server defaults, in place."""
    spec = obj.get("spec")
    if key in _WORKLOADS and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        if isinstance(spec.get("template"), dict):
            _template_defaults(spec["template"])
    if key == DEPLOYMENTS.key and isinstance(spec, dict):
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})
    if key == STATEFULSETS.key and isinstance(spec, dict):
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("revisionHistoryLimit", 10)
        update = spec.setdefault("updateStrategy", {})
        update.setdefault("type", "RollingUpdate")
        if update["type"] == "RollingUpdate":
            update.setdefault("rollingUpdate", {"partition": 0})
        spec.setdefault(
            "persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"}
        )
    if key == HPAS.key and isinstance(spec, dict):
        _hpa_defaults(spec)


def _hpa_defaults(spec: Obj) -> None:
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        up = behavior.setdefault("scaleUp", {})
        up.setdefault("stabilizationWindowSeconds", 0)
        up.setdefault("selectPolicy", "Max")
        up.setdefault(
            "policies",
            [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15},
            ],
        )
        down = behavior.setdefault("scaleDown", {})
        down.setdefault("selectPolicy", "Max")
        down.setdefault("policies", [{"type": "Percent", "value": 100, "periodSeconds": 15}])


_ZERO_STATUS: dict[TypeKey, Obj] = {
    STATEFULSETS.key: {"replicas": 0, "availableReplicas": 0},
    REPLICASETS.key: {"replicas": 0},
    HPAS.key: {"desiredReplicas": 0},
    PODS.key: {"phase": "Pending", "qosClass": "BestEffort"},
}


def zero_status(key: TypeKey) -> Obj:
    """The status a new built-in object starts with: its non-omitempty fields at zero."""
    return copy.deepcopy(_ZERO_STATUS.get(key, {}))


# ----- time fields -----

_TIME_FIELDS: dict[TypeKey, tuple[tuple[tuple[str, ...], Callable[[float], str]], ...]] = {
    LEASES.key: ((("spec", "acquireTime"), micro_time), (("spec", "renewTime"), micro_time)),
    EVENTS.key: (
        (("eventTime",), micro_time),
        (("firstTimestamp",), rfc3339),
        (("lastTimestamp",), rfc3339),
        (("series", "lastObservedTime"), micro_time),
    ),
    HPAS.key: ((("status", "lastScaleTime"), rfc3339),),
}


def normalize_times(key: TypeKey, obj: Obj) -> None:
    """Re-render time fields the way the API server serializes them (it parses and prints them again)."""
    for path, render in _TIME_FIELDS.get(key, ()):
        parent: Any = obj
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and isinstance(parent.get(path[-1]), str):
            when = parse_time(parent[path[-1]])
            if when is not None:
                parent[path[-1]] = render(when)


# ----- validation -----


def _invalid(field: str, value: Any, detail: str) -> Cause:
    return (field, "FieldValueInvalid", f"Invalid value: {value!r}: {detail}".replace("'", '"'))


def _required(field: str) -> Cause:
    return (field, "FieldValueRequired", "Required value")


def validate_meta(meta: Mapping[str, Any], creating: bool) -> list[Cause]:
    causes: list[Cause] = []
    name = meta.get("name")
    if creating and isinstance(name, str) and (len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name)):
        causes.append(
            _invalid(
                "metadata.name",
                name,
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character",
            )
        )
    for key, value in (meta.get("labels") or {}).items():
        problems = validate_label_key(str(key)) + validate_label_value(str(value))
        causes.extend(_invalid("metadata.labels", key, p) for p in problems)
    return causes


def _nonnegative(field: str, value: Any) -> list[Cause]:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [_invalid(field, value, "must be greater than or equal to 0")]
    return []


def validate_scale_replicas(replicas: Any) -> list[Cause]:
    return _nonnegative("spec.replicas", replicas)


def _workload(obj: Mapping[str, Any], old: Mapping[str, Any] | None, key: TypeKey) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = _nonnegative("spec.replicas", spec.get("replicas"))
    selector = spec.get("selector")
    if not selector:
        causes.append(_required("spec.selector"))
    else:
        try:
            parsed = from_label_selector(selector)
        except LabelSelectorError as exc:
            return [*causes, _invalid("spec.selector", selector, str(exc))]
        if parsed.is_empty():
            causes.append(_invalid("spec.selector", selector, f"empty selector is invalid for {key[2][:-1]}"))
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not parsed.matches(labels):
            causes.append(
                _invalid(
                    "spec.template.metadata.labels", labels, "`selector` does not match template `labels`"
                )
            )
    if not ((spec.get("template") or {}).get("spec") or {}).get("containers"):
        causes.append(_required("spec.template.spec.containers"))
    if old is not None and selector != (old.get("spec") or {}).get("selector"):
        causes.append(_invalid("spec.selector", selector, "field is immutable"))
    if old is not None and key == STATEFULSETS.key:
        mutable = {
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
            "revisionHistoryLimit",
        }
        before = {k: v for k, v in (old.get("spec") or {}).items() if k not in mutable}
        after = {k: v for k, v in spec.items() if k not in mutable}
        if before != after:
            causes.append(
                (
                    "spec",
                    "FieldValueForbidden",
                    "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                )
            )
    return causes


def _pod_update(obj: Mapping[str, Any], old: Mapping[str, Any]) -> list[Cause]:
    def fixed(spec: Mapping[str, Any]) -> Obj:
        out = copy.deepcopy(dict(spec))
        for name in ("activeDeadlineSeconds", "tolerations"):
            out.pop(name, None)
        for group in ("containers", "initContainers"):
            for container in out.get(group) or []:
                container.pop("image", None)
        return out

    if fixed(obj.get("spec") or {}) != fixed(old.get("spec") or {}):
        return [
            (
                "spec",
                "FieldValueForbidden",
                "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                "(only additions to existing tolerations)",
            )
        ]
    return []


def _hpa(obj: Mapping[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    ref = spec.get("scaleTargetRef") or {}
    if not ref.get("kind"):
        causes.append(_required("spec.scaleTargetRef.kind"))
    if not ref.get("name"):
        causes.append(_required("spec.scaleTargetRef.name"))
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
    if isinstance(low, int) and low < 1:
        causes.append(_invalid("spec.minReplicas", low, "must be greater than or equal to 1"))
    if not isinstance(high, int):
        causes.append(_required("spec.maxReplicas"))
    elif isinstance(low, int) and high < low:
        causes.append(_invalid("spec.maxReplicas", high, "must be greater than or equal to `minReplicas`"))
    return causes


def _lease(obj: Mapping[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        causes.append(_invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        causes.append(_invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    return causes


def _event(obj: Mapping[str, Any], as_events_v1: bool) -> list[Cause]:
    """Events created through events.k8s.io/v1 must be complete; legacy core ones need less."""
    causes: list[Cause] = []
    kind = obj.get("type")
    if (kind or as_events_v1) and kind not in ("Normal", "Warning"):
        causes.append(
            (
                "type",
                "FieldValueNotSupported",
                f'Unsupported value: "{kind or ""}": supported values: "Normal", "Warning"',
            )
        )
    namespace = (obj.get("metadata") or {}).get("namespace")
    involved = obj.get("involvedObject") or {}
    if involved.get("namespace") and namespace and involved["namespace"] != namespace:
        causes.append(
            _invalid("involvedObject.namespace", involved["namespace"], "does not match event.namespace")
        )
    if as_events_v1:
        for name, label in (
            ("eventTime", "eventTime"),
            ("reportingComponent", "reportingController"),
            ("reportingInstance", "reportingInstance"),
            ("action", "action"),
            ("reason", "reason"),
        ):
            if not obj.get(name):
                causes.append(_required(label))
        if len(str(obj.get("message") or "").encode()) > 1024:
            causes.append(("note", "FieldValueTooLong", "Too long: may not be more than 1024 bytes"))
    return causes


def validate(view_key: TypeKey, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[Cause]:
    """Field errors of a built-in object (stored form) about to be written through ``view_key``."""
    causes = validate_meta(obj.get("metadata") or {}, creating=old is None)
    if view_key in _WORKLOADS:
        causes += _workload(obj, old, view_key)
    elif view_key == PODS.key and old is not None:
        causes += _pod_update(obj, old)
    elif view_key[2] == "horizontalpodautoscalers":
        causes += _hpa(obj)
    elif view_key == LEASES.key:
        causes += _lease(obj)
    elif view_key in (EVENTS.key, EVENTS_V1.key):
        causes += _event(obj, view_key == EVENTS_V1.key and old is None)
    return causes
