"""The resource types the Kubernetes API sandbox serves, request paths, and API time formats."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lab.sandbox.kube_errors import not_found_resource

Obj = dict[str, Any]
TypeKey = tuple[str, str, str]
"""(group, version, plural)."""

ALL_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One kind of object the sandbox serves; ``group`` is "" for the core API."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    verbs: tuple[str, ...] = READ_VERBS
    singular: str = ""
    custom: bool = False
    """A custom resource (served from a CRD) rather than a built-in type."""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    """"status" (writes there change only status, writes elsewhere never do) and "scale"."""
    generation: bool = False
    """``metadata.generation`` starts at 1 and counts changes outside metadata and status."""
    create_on_update: bool = False
    """PUT of a missing object creates it (Events)."""
    unconditional_update: bool = True
    """PUT without ``metadata.resourceVersion`` is allowed (built-ins yes, custom resources no)."""
    return_deleted: bool = False
    """DELETE answers the object (pods) rather than a Status."""
    storage: TypeKey | None = None
    """Objects live in this other type's store and are converted on the way in and out."""

    @property
    def key(self) -> TypeKey:
        return (self.group, self.version, self.plural)

    @property
    def storage_key(self) -> TypeKey:
        return self.storage if self.storage is not None else self.key

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """The name in API server messages: ``pods``, ``sparkapplications.sparkoperator.k8s.io``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def allows(self, verb: str) -> bool:
        return verb in self.verbs


def _workload(plural: str, kind: str, short: str) -> ResourceType:
    return ResourceType(
        "apps",
        "v1",
        plural,
        kind,
        verbs=ALL_VERBS,
        singular=kind.lower(),
        short_names=(short,),
        categories=("all",),
        subresources=("status", "scale"),
        generation=True,
    )


def _custom(group: str, version: str, plural: str, kind: str, short: str) -> ResourceType:
    return ResourceType(
        group,
        version,
        plural,
        kind,
        verbs=ALL_VERBS,
        singular=kind.lower(),
        custom=True,
        short_names=(short,),
        subresources=("status",),
        generation=True,
        unconditional_update=False,
    )


PODS = ResourceType(
    "",
    "v1",
    "pods",
    "Pod",
    # Pods come from workloads (or the sandbox API), never from clients, so no "create".
    verbs=("delete", "get", "list", "patch", "update", "watch"),
    singular="pod",
    short_names=("po",),
    categories=("all",),
    subresources=("status",),
    return_deleted=True,
)
CONFIGMAPS = ResourceType("", "v1", "configmaps", "ConfigMap", verbs=ALL_VERBS, singular="configmap")
EVENTS = ResourceType(
    "", "v1", "events", "Event", verbs=ALL_VERBS, singular="event", short_names=("ev",), create_on_update=True
)
EVENTS_V1 = ResourceType(
    "events.k8s.io",
    "v1",
    "events",
    "Event",
    verbs=ALL_VERBS,
    singular="event",
    short_names=("ev",),
    create_on_update=True,
    storage=EVENTS.key,
)
# A Lease takes no update without a resourceVersion (the real strategy's AllowUnconditionalUpdate is false).
LEASES = ResourceType(
    "coordination.k8s.io",
    "v1",
    "leases",
    "Lease",
    verbs=ALL_VERBS,
    singular="lease",
    unconditional_update=False,
)
DEPLOYMENTS = _workload("deployments", "Deployment", "deploy")
STATEFULSETS = _workload("statefulsets", "StatefulSet", "sts")
REPLICASETS = _workload("replicasets", "ReplicaSet", "rs")
HPAS = ResourceType(
    "autoscaling",
    "v2",
    "horizontalpodautoscalers",
    "HorizontalPodAutoscaler",
    verbs=ALL_VERBS,
    singular="horizontalpodautoscaler",
    short_names=("hpa",),
    categories=("all",),
    subresources=("status",),
)
HPAS_V1 = ResourceType(
    "autoscaling",
    "v1",
    "horizontalpodautoscalers",
    "HorizontalPodAutoscaler",
    verbs=ALL_VERBS,
    singular="horizontalpodautoscaler",
    short_names=("hpa",),
    categories=("all",),
    subresources=("status",),
    storage=HPAS.key,
)
SUBJECT_ACCESS_REVIEWS = ResourceType(
    "authorization.k8s.io",
    "v1",
    "subjectaccessreviews",
    "SubjectAccessReview",
    namespaced=False,
    verbs=("create",),
    singular="subjectaccessreview",
)
TOKEN_REVIEWS = ResourceType(
    "authentication.k8s.io",
    "v1",
    "tokenreviews",
    "TokenReview",
    namespaced=False,
    verbs=("create",),
    singular="tokenreview",
)
SCALING_POLICIES = _custom("queuescale.io", "v1alpha1", "scalingpolicies", "ScalingPolicy", "qsp")
SPARK_APPLICATIONS = _custom(
    "sparkoperator.k8s.io", "v1beta2", "sparkapplications", "SparkApplication", "sparkapp"
)
SCHEDULED_SPARK_APPLICATIONS = _custom(
    "sparkoperator.k8s.io",
    "v1beta2",
    "scheduledsparkapplications",
    "ScheduledSparkApplication",
    "scheduledsparkapp",
)

BUILT_IN = (
    PODS,
    CONFIGMAPS,
    EVENTS,
    EVENTS_V1,
    LEASES,
    DEPLOYMENTS,
    STATEFULSETS,
    REPLICASETS,
    HPAS,
    HPAS_V1,
    SUBJECT_ACCESS_REVIEWS,
    TOKEN_REVIEWS,
    SCALING_POLICIES,
)
SPARK_OPERATOR = (SPARK_APPLICATIONS, SCHEDULED_SPARK_APPLICATIONS)


@dataclass(frozen=True)
class Target:
    """What a request path addresses (kube-apiserver's RequestInfo, for resource requests)."""

    group: str
    version: str
    namespace: str | None = None
    plural: str | None = None
    name: str | None = None
    subresource: str | None = None


def parse_path(path: str) -> Target | None:
    """``/api/v1/...`` or ``/apis/{group}/{version}/...``; None for discovery paths handled elsewhere."""
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        raise not_found_resource()
    if parts[0] == "api":
        if len(parts) < 3:
            return None
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            return None
        group, version, rest = parts[1], parts[2], parts[3:]
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        raise not_found_resource()
    return Target(
        group=group,
        version=version,
        namespace=namespace,
        plural=rest[0],
        name=rest[1] if len(rest) > 1 else None,
        subresource=rest[2] if len(rest) > 2 else None,
    )


def rfc3339(ts: float) -> str:
    """``metav1.Time``: whole seconds, UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def micro_time(ts: float) -> str:
    """``metav1.MicroTime``: six fractional digits, UTC."""
    whole = int(ts // 1)
    micros = min(999999, round((ts - whole) * 1e6))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


def parse_time(text: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (any fraction and offset); None when not one."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()
