"""The subset of the Kubernetes API that queuescale uses, served over real HTTP for the official client.

One generic object store keyed by resource type (group, version, plural) behind one path parser shaped
like kube-apiserver's request-info parser, so later resources (Deployments, StatefulSets, the scale
subresource, watches, Leases, Events, CRDs) are a registration plus, where needed, a handler.
Every object carries ``metadata.resourceVersion`` (one counter for the whole store), ``uid`` and
``creationTimestamp``. Errors are ``metav1.Status`` documents shaped like the real API server's.
"""

from __future__ import annotations

import copy
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client
from aiohttp import web

from adapter.selectors import LabelSelectorError, parse_selector

log = logging.getLogger(__name__)

JSON = "application/json"
Obj = dict[str, Any]


@dataclass(frozen=True)
class ResourceType:
    """One kind of object the sandbox serves; ``group`` is "" for the core API."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    verbs: tuple[str, ...] = ("get", "list")
    singular: str = ""
    custom: bool = False
    """A custom resource (served from a CRD) rather than a built-in type."""

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


PODS = ResourceType("", "v1", "pods", "Pod", singular="pod")
CONFIGMAPS = ResourceType("", "v1", "configmaps", "ConfigMap", singular="configmap")
SUBJECT_ACCESS_REVIEWS = ResourceType(
    "authorization.k8s.io",
    "v1",
    "subjectaccessreviews",
    "SubjectAccessReview",
    namespaced=False,
    verbs=("create",),
    singular="subjectaccessreview",
)
SPARK_APPLICATIONS = ResourceType(
    "sparkoperator.k8s.io",
    "v1beta2",
    "sparkapplications",
    "SparkApplication",
    singular="sparkapplication",
    custom=True,
)
SCHEDULED_SPARK_APPLICATIONS = ResourceType(
    "sparkoperator.k8s.io",
    "v1beta2",
    "scheduledsparkapplications",
    "ScheduledSparkApplication",
    singular="scheduledsparkapplication",
    custom=True,
)


class StatusError(Exception):
    """Answered as a ``metav1.Status`` with this code and reason."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})

    def body(self) -> Obj:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def _not_found_resource() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource")


def _method_not_allowed() -> StatusError:
    return StatusError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


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
        raise _not_found_resource()
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
        raise _not_found_resource()
    return Target(
        group=group,
        version=version,
        namespace=namespace,
        plural=rest[0],
        name=rest[1] if len(rest) > 1 else None,
        subresource=rest[2] if len(rest) > 2 else None,
    )


@dataclass
class AccessRule:
    """One allow rule for SubjectAccessReviews; a None field matches anything."""

    user: str | None = None
    group: str | None = None
    verb: str | None = None
    api_group: str | None = None
    resource: str | None = None
    namespace: str | None = None

    def matches(self, spec: Mapping[str, Any]) -> bool:
        attrs: Mapping[str, Any] = spec.get("resourceAttributes") or {}
        checks = (
            (self.user, [spec.get("user") or ""]),
            (self.group, list(spec.get("groups") or [])),
            (self.verb, [attrs.get("verb") or ""]),
            (self.api_group, [attrs.get("group") or ""]),
            (self.resource, [attrs.get("resource") or ""]),
            (self.namespace, [attrs.get("namespace") or ""]),
        )
        return all(want is None or want in have for want, have in checks)


Handler = Callable[[web.Request, ResourceType, Target], Awaitable[web.Response]]


@dataclass
class KubeSandbox:
    """An in-memory API server. Use :meth:`app` with ``autoscaler.sandbox.serve.serve``."""

    clock: Callable[[], float] = time.time
    spark_operator: bool = True
    """Serve the spark-operator CRDs (v1beta2 SparkApplication, ScheduledSparkApplication)."""
    reviews: list[Obj] = field(default_factory=list)
    """Every SubjectAccessReview received, as sent."""
    rules: list[AccessRule] = field(default_factory=list)
    review_error: int | None = None
    """When set, SubjectAccessReviews answer this HTTP code (a Status) instead of a decision."""
    authorizations: list[str | None] = field(default_factory=list)
    """The ``Authorization`` header of every request, in order (None when absent)."""

    def __post_init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._objects: dict[tuple[str, str, str], dict[tuple[str, str], Obj]] = {}
        self._create_handlers: dict[tuple[str, str, str], Handler] = {}
        self._resource_version = 0
        for rt in (PODS, CONFIGMAPS, SUBJECT_ACCESS_REVIEWS):
            self.register(rt)
        if self.spark_operator:
            self.register(SPARK_APPLICATIONS)
            self.register(SCHEDULED_SPARK_APPLICATIONS)
        self._create_handlers[self._key(SUBJECT_ACCESS_REVIEWS)] = self._create_review

    # ----- test and sandbox API -----

    def register(self, rt: ResourceType) -> None:
        """Serve a resource type (a built-in or an installed CRD); listing it works with no objects."""
        key = self._key(rt)
        self._types[key] = rt
        self._objects.setdefault(key, {})

    def add_pod(
        self,
        namespace: str,
        name: str,
        labels: Mapping[str, str],
        pod_ip: str,
        phase: str = "Running",
        annotations: Mapping[str, str] | None = None,
        *,
        ready: bool | None = None,
    ) -> Obj:
        """Create or replace a pod; ``ready`` defaults to ``phase == "Running"``."""
        is_ready = phase == "Running" if ready is None else ready
        body: Obj = {
            "metadata": {"name": name, "labels": dict(labels), "annotations": dict(annotations or {})},
            "spec": {"containers": [{"name": "main", "image": "sandbox:latest"}]},
            "status": {
                "phase": phase,
                "podIP": pod_ip,
                "podIPs": [{"ip": pod_ip}],
                "conditions": [{"type": "Ready", "status": "True" if is_ready else "False"}],
            },
        }
        return self.put(PODS, namespace, body)

    def delete_pod(self, namespace: str, name: str) -> bool:
        return self.delete(PODS, namespace, name)

    def set_configmap(self, namespace: str, name: str, data: Mapping[str, str]) -> Obj:
        return self.put(CONFIGMAPS, namespace, {"metadata": {"name": name}, "data": dict(data)})

    def put_object(
        self, group: str, version: str, plural: str, namespace: str, body: Mapping[str, Any]
    ) -> Obj:
        """Create or replace a namespaced object; an unknown type is registered from ``body["kind"]``."""
        rt = self._types.get((group, version, plural))
        if rt is None:
            kind = body.get("kind")
            if not isinstance(kind, str) or not kind:
                raise ValueError(f"{plural}.{group}/{version} is not registered and the body has no kind")
            rt = ResourceType(group, version, plural, kind, custom=True)
            self.register(rt)
        return self.put(rt, namespace, body)

    def get_object(self, group: str, version: str, plural: str, namespace: str, name: str) -> Obj | None:
        obj = self._objects.get((group, version, plural), {}).get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def allow(
        self,
        *,
        user: str | None = None,
        group: str | None = None,
        verb: str | None = None,
        api_group: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
    ) -> None:
        """Let SubjectAccessReviews matching every given field be allowed (default: deny)."""
        self.rules.append(AccessRule(user, group, verb, api_group, resource, namespace))

    def put(self, rt: ResourceType, namespace: str | None, body: Mapping[str, Any]) -> Obj:
        """Create or replace; a replacement keeps uid and creationTimestamp, like an update."""
        obj: Obj = copy.deepcopy(dict(body))
        meta: Obj = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("metadata.name is required")
        ns = namespace if rt.namespaced else None
        if ns is not None:
            meta["namespace"] = ns
        store = self._objects[self._key(rt)]
        old = store.get((ns or "", name))
        obj["kind"] = rt.kind
        obj["apiVersion"] = rt.api_version
        if old is not None:
            meta["uid"] = old["metadata"]["uid"]
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
        else:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", _rfc3339(self.clock()))
        meta["resourceVersion"] = self._next_version()
        store[(ns or "", name)] = obj
        return copy.deepcopy(obj)

    def delete(self, rt: ResourceType, namespace: str | None, name: str) -> bool:
        removed = self._objects[self._key(rt)].pop((namespace or "", name), None)
        if removed is not None:
            self._next_version()
        return removed is not None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record, _status_middleware])
        app.router.add_route("*", "/api", self._core_versions)
        app.router.add_route("*", "/apis", self._group_list)
        app.router.add_route("*", "/api/{tail:.*}", self._dispatch)
        app.router.add_route("*", "/apis/{tail:.*}", self._dispatch)
        return app

    # ----- HTTP -----

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.authorizations.append(request.headers.get("Authorization"))
        return await handler(request)

    async def _dispatch(self, request: web.Request) -> web.Response:
        target = parse_path(request.path)
        if target is None:
            return self._discovery(request)
        assert target.plural is not None
        rt = self._types.get((target.group, target.version, target.plural))
        if rt is None or (target.namespace is not None and not rt.namespaced):
            raise _not_found_resource()
        if target.subresource is not None:
            raise _not_found_resource()
        if request.method == "GET":
            if _truthy(request.query.get("watch")):
                raise StatusError(400, "BadRequest", "watch is not served by this sandbox yet")
            if target.name is not None and "get" in rt.verbs:
                return _json(self._get(rt, target))
            if target.name is None and "list" in rt.verbs:
                return _json(self._list(rt, target.namespace, request))
        if request.method == "POST" and target.name is None and "create" in rt.verbs:
            handler = self._create_handlers.get(self._key(rt))
            if handler is not None:
                return await handler(request, rt, target)
        raise _method_not_allowed()

    def _get(self, rt: ResourceType, target: Target) -> Obj:
        assert target.name is not None
        obj = self._objects[self._key(rt)].get((target.namespace or "", target.name))
        if obj is None:
            details: Obj = {"name": target.name, "kind": rt.plural}
            if rt.group:
                details["group"] = rt.group
            raise StatusError(404, "NotFound", f'{rt.qualified} "{target.name}" not found', details)
        return obj

    def _list(self, rt: ResourceType, namespace: str | None, request: web.Request) -> Obj:
        try:
            selector = parse_selector(request.query.get("labelSelector", ""))
        except LabelSelectorError as exc:
            raise StatusError(400, "BadRequest", f"unable to parse requirement: {exc}") from exc
        fields = _field_selector(request.query.get("fieldSelector", ""))
        items = []
        for (ns, _), obj in sorted(self._objects[self._key(rt)].items()):
            if namespace is not None and ns != namespace:
                continue
            if not selector.matches(obj["metadata"].get("labels") or {}):
                continue
            if not all(_field_matches(obj, path, op, value) for path, op, value in fields):
                continue
            items.append(_list_item(rt, obj))
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self._resource_version)},
            "items": items,
        }

    async def _create_review(self, request: web.Request, rt: ResourceType, target: Target) -> web.Response:
        body = await _read_json(request)
        self.reviews.append(copy.deepcopy(body))
        if self.review_error is not None:
            raise StatusError(
                self.review_error, "InternalError", "sandbox: SubjectAccessReview failure injected"
            )
        spec = body.get("spec")
        if not isinstance(spec, dict):
            raise StatusError(400, "BadRequest", "SubjectAccessReview has no spec")
        if not spec.get("user") and not spec.get("groups"):
            raise StatusError(
                422,
                "Invalid",
                'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: '
                'Invalid value: "": at least one of user or group must be specified',
            )
        allowed = any(rule.matches(spec) for rule in self.rules)
        status: Obj = {"allowed": allowed}
        if allowed:
            status["reason"] = "allowed by a sandbox rule"
        answer = {
            "kind": rt.kind,
            "apiVersion": rt.api_version,
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }
        return _json(answer, status=201)

    async def _core_versions(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            raise _method_not_allowed()
        return _json(self._versions_doc(request))

    async def _group_list(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            raise _method_not_allowed()
        return _json(self._group_list_doc())

    def _versions_doc(self, request: web.Request) -> Obj:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}],
        }

    def _group_list_doc(self) -> Obj:
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()}

    def _groups(self) -> list[Obj]:
        versions: dict[str, list[str]] = {}
        for group, version, _ in self._types:
            if group and version not in versions.setdefault(group, []):
                versions[group].append(version)
        out = []
        for group, vs in sorted(versions.items()):
            entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in vs]
            out.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
        return out

    def _discovery(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            raise _method_not_allowed()
        parts = [p for p in request.path.split("/") if p]
        if len(parts) == 1:
            # The official client asks for "/api/" with a trailing slash.
            return _json(self._versions_doc(request) if parts[0] == "api" else self._group_list_doc())
        if parts[0] == "apis" and len(parts) == 2:
            for entry in self._groups():
                if entry["name"] == parts[1]:
                    return _json({"kind": "APIGroup", "apiVersion": "v1", **entry})
            raise _not_found_resource()
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        resources = [
            {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": list(rt.verbs),
            }
            for (g, v, _), rt in sorted(self._types.items())
            if (g, v) == (group, version)
        ]
        if not resources:
            raise _not_found_resource()
        gv = f"{group}/{version}" if group else version
        return _json(
            {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
        )

    def _next_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    @staticmethod
    def _key(rt: ResourceType) -> tuple[str, str, str]:
        return (rt.group, rt.version, rt.plural)


def client_for(url: str) -> kubernetes.client.ApiClient:
    """An official-client ``ApiClient`` for a sandbox served at ``url`` (no credentials)."""
    cfg = kubernetes.client.Configuration(host=url.rstrip("/"))
    return kubernetes.client.ApiClient(configuration=cfg)


def _list_item(rt: ResourceType, obj: Obj) -> Obj:
    # Built-in lists carry kind/apiVersion only at the top; custom resources keep them on every item.
    if rt.custom:
        return obj
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def _field_selector(text: str) -> list[tuple[str, str, str]]:
    out = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        for op in ("!=", "==", "="):
            path, sep, value = term.partition(op)
            if sep:
                out.append((path.strip(), "!=" if op == "!=" else "=", value.strip()))
                break
        else:
            raise StatusError(400, "BadRequest", f'invalid field selector: "{term}": no operator')
    return out


def _field_matches(obj: Obj, path: str, op: str, value: str) -> bool:
    current: Any = obj
    for part in path.split("."):
        current = current.get(part) if isinstance(current, dict) else None
    actual = "" if current is None else str(current)
    return (actual == value) if op == "=" else (actual != value)


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() not in ("", "false", "0")


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _json(doc: Obj, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(doc), status=status, content_type=JSON)


async def _read_json(request: web.Request) -> Obj:
    try:
        body = await request.json()
    except ValueError as exc:
        raise StatusError(400, "BadRequest", f"the request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise StatusError(400, "BadRequest", "the request body is not a JSON object")
    return body


@web.middleware
async def _status_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except StatusError as exc:
        return _json(exc.body(), status=exc.code)
    except web.HTTPNotFound:
        return _json(_not_found_resource().body(), status=404)
    except web.HTTPMethodNotAllowed:
        return _json(_method_not_allowed().body(), status=405)
    except web.HTTPException:
        raise
    except Exception as exc:
        # A sandbox bug must still answer a Status, or the client reports an unreadable body.
        log.exception("sandbox failed serving %s %s", request.method, request.path)
        error = StatusError(500, "InternalError", f"sandbox error: {exc.__class__.__name__}: {exc}")
        return _json(error.body(), status=500)
