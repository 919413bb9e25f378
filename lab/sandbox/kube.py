"""The subset of the Kubernetes API that queuescale uses, served over real HTTP for the official client
and kubectl.

One object store (``kube_store``) keyed by resource type behind one path parser shaped like
kube-apiserver's request-info parser. Served: pods, ConfigMaps, Events (core and events.k8s.io),
Leases, Deployments/StatefulSets/ReplicaSets with ``/status`` and ``/scale`` (autoscaling/v1 Scale),
HorizontalPodAutoscalers (v2, and v1 by conversion), SubjectAccessReviews, CRDs and their custom
resources (the ScalingPolicy CRD generated from the policy models, the spark-operator kinds), with
GET/LIST/WATCH/CREATE/UPDATE/PATCH/DELETE as each type allows. The API server's contracts kept:
one resourceVersion counter, optimistic concurrency (409 Conflict on a stale resourceVersion,
409 AlreadyExists), ``metadata.generation``, status-subresource separation, merge/strategic/JSON
patches, watches with resume and 410 Expired, CRD schema pruning and validation, defaulting,
finalizers and garbage collection, ``metav1.Status`` errors and Table output for kubectl.
Simulated controllers (``kube_workloads``) turn workloads into pods that start after a delay and
are deleted in the ReplicaSet controller's order or highest StatefulSet ordinal first.
Not served: server-side apply (415), OpenAPI documents (kubectl create/apply need --validate=false),
Namespace objects (any namespace name is accepted), CEL validation rules of CRDs.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client
from aiohttp import web

from lab.sandbox.kube_convert import CONVERSIONS
from lab.sandbox.kube_crds import CRDS, CustomResource, scaling_policy, spark_operator_crds, types_of
from lab.sandbox.kube_discovery import SERVER_VERSION, api_versions, group, group_list, resource_list
from lab.sandbox.kube_errors import (
    StatusError,
    already_exists,
    bad_request,
    conflict,
    invalid,
    method_not_allowed,
    not_found,
    not_found_resource,
)
from lab.sandbox.kube_hooks import PodHook, PodHooks
from lab.sandbox.kube_http import (
    continue_token,
    dry_run,
    json_response,
    read_continue,
    read_json,
    status_middleware,
    truthy,
)
from lab.sandbox.kube_patch import apply_patch
from lab.sandbox.kube_rules import (
    apply_defaults,
    normalize_times,
    validate,
    validate_scale_replicas,
    zero_status,
)
from lab.sandbox.kube_schema import prune_object, validate_object
from lab.sandbox.kube_selectors import Filter, request_filter, selector_string
from lab.sandbox.kube_store import ObjectStore
from lab.sandbox.kube_tables import table, wants_table
from lab.sandbox.kube_types import (
    ALL_VERBS,
    BUILT_IN,
    CONFIGMAPS,
    PODS,
    SCHEDULED_SPARK_APPLICATIONS,
    SPARK_APPLICATIONS,
    SUBJECT_ACCESS_REVIEWS,
    TOKEN_REVIEWS,
    ResourceType,
    Target,
    TypeKey,
    parse_path,
    rfc3339,
)
from lab.sandbox.kube_watch import WatchStream, parse_watch
from lab.sandbox.kube_workloads import Workloads

__all__ = [
    "CONFIGMAPS",
    "PODS",
    "SCHEDULED_SPARK_APPLICATIONS",
    "SPARK_APPLICATIONS",
    "SUBJECT_ACCESS_REVIEWS",
    "AccessRule",
    "KubeSandbox",
    "ResourceType",
    "StatusError",
    "Target",
    "client_for",
    "parse_path",
]

log = logging.getLogger(__name__)

Obj = dict[str, Any]


@dataclass
class AccessRule:
    """One allow rule for SubjectAccessReviews; a None field matches anything.

    A rule with ``path`` set is about non-resource URLs (``nonResourceAttributes``) and matches no
    resource request; a rule without it matches no non-resource request."""

    user: str | None = None
    group: str | None = None
    verb: str | None = None
    api_group: str | None = None
    resource: str | None = None
    namespace: str | None = None
    path: str | None = None

    def matches(self, spec: Mapping[str, Any]) -> bool:
        non_resource: Mapping[str, Any] | None = spec.get("nonResourceAttributes")
        if (self.path is None) != (non_resource is None):
            return False
        attrs: Mapping[str, Any] = non_resource or spec.get("resourceAttributes") or {}
        checks = (
            (self.user, [spec.get("user") or ""]),
            (self.group, list(spec.get("groups") or [])),
            (self.verb, [attrs.get("verb") or ""]),
            (self.api_group, [attrs.get("group") or ""]),
            (self.resource, [attrs.get("resource") or ""]),
            (self.namespace, [attrs.get("namespace") or ""]),
            (self.path, [attrs.get("path") or ""]),
        )
        return all(want is None or want in have for want, have in checks)


Handler = Callable[[web.Request, ResourceType, Target], Awaitable[web.Response]]


def _strip(obj: Mapping[str, Any]) -> Obj:
    """What counts for ``metadata.generation``: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


def _same_but_version(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    ma = {k: v for k, v in (a.get("metadata") or {}).items() if k != "resourceVersion"}
    mb = {k: v for k, v in (b.get("metadata") or {}).items() if k != "resourceVersion"}
    return ma == mb and _strip(a) == _strip(b) and a.get("status") == b.get("status")


@dataclass
class KubeSandbox:
    """An in-memory API server. Use :meth:`app` with ``lab.sandbox.serve.serve``."""

    clock: Callable[[], float] = time.time
    """Time of the simulated cluster (pod start-up, timestamps); tests pass a fake one."""
    spark_operator: bool = True
    """Serve the spark-operator CRDs (v1beta2 SparkApplication, ScheduledSparkApplication)."""
    reviews: list[Obj] = field(default_factory=list)
    """Every SubjectAccessReview received, as sent."""
    rules: list[AccessRule] = field(default_factory=list)
    review_error: int | None = None
    """When set, SubjectAccessReviews answer this HTTP code (a Status) instead of a decision."""
    tokens: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    """Bearer tokens TokenReviews accept: token -> (user name, groups)."""
    authorizations: list[str | None] = field(default_factory=list)
    """The ``Authorization`` header of every request, in order (None when absent)."""
    seed: int = 0
    """Seeds uids and generated names, so a run is repeatable."""
    startup_seconds: float = 0.0
    """Default delay from creating a workload pod to Running and Ready (override per workload by annotation)."""
    termination_seconds: float = 0.0
    """Default time a deleted pod stays Terminating (at most its grace period)."""
    pod_ip: str | None = None
    """Every workload pod's IP, e.g. "127.0.0.1" to reach sandbox processes; None: 10.244.x.y each."""
    pod_capacity: int | None = None
    """Most pods scheduled at once; the rest stay Pending and unscheduled."""
    record_events: bool = True
    """The simulated controllers write Events (ScalingReplicaSet, SuccessfulCreate, ...)."""
    event_ttl_seconds: float = 3600.0
    """Events not written for this long are dropped, like kube-apiserver's --event-ttl."""
    watch_history: int = 1000
    """Changes kept per type for watches to resume from; older resourceVersions get 410."""
    bookmark_interval: float = 60.0
    """Seconds between BOOKMARKs on watches that allow them."""
    tick_interval: float | None = 0.05
    """Seconds between background checks for due pod transitions while served (None: only on requests)."""
    on_pod_added: list[PodHook] = field(default_factory=list)
    on_pod_ready: list[PodHook] = field(default_factory=list)
    on_pod_terminating: list[PodHook] = field(default_factory=list)
    on_pod_removed: list[PodHook] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.store = ObjectStore(lambda: self.clock(), seed=self.seed, history=self.watch_history)
        self._crds: dict[TypeKey, CustomResource] = {}
        self._create_handlers: dict[TypeKey, Handler] = {
            SUBJECT_ACCESS_REVIEWS.key: self._create_review,
            TOKEN_REVIEWS.key: self._create_token_review,
        }
        self.workloads = Workloads(
            self.store,
            startup_seconds=self.startup_seconds,
            termination_seconds=self.termination_seconds,
            pod_ip=self.pod_ip,
            pod_capacity=self.pod_capacity,
            record_events=self.record_events,
            event_ttl_seconds=self.event_ttl_seconds,
        )
        self.hooks = PodHooks(
            self.on_pod_added, self.on_pod_ready, self.on_pod_terminating, self.on_pod_removed
        )
        self.store.listeners.append(self.hooks.on_change)
        for rt in (*BUILT_IN, CRDS):
            if not rt.custom:
                self.register(rt)
        self.install_crd(scaling_policy())
        if self.spark_operator:
            for doc in spark_operator_crds():
                self.install_crd(doc)

    # ----- test and sandbox API -----

    @property
    def resource_version(self) -> int:
        return self.store.resource_version

    def register(self, rt: ResourceType) -> None:
        """Serve a resource type (a built-in or an installed CRD); listing it works with no objects."""
        self.store.register(rt)

    def install_crd(self, doc: Mapping[str, Any]) -> Obj:
        """Serve the custom resource a CRD describes (schema, status subresource, printer columns)."""
        served, crd = types_of(doc)
        for rt, extra in served:
            self.register(rt)
            self._crds[rt.key] = extra
        return self.put(CRDS, None, crd)

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
        """Create or replace a bare pod; ``ready`` defaults to ``phase == "Running"``."""
        is_ready_now = phase == "Running" if ready is None else ready
        body: Obj = {
            "metadata": {"name": name, "labels": dict(labels), "annotations": dict(annotations or {})},
            "spec": {"containers": [{"name": "main", "image": "sandbox:latest"}], "nodeName": "sandbox-node"},
            "status": {
                "phase": phase,
                "podIP": pod_ip,
                "podIPs": [{"ip": pod_ip}],
                "conditions": [{"type": "Ready", "status": "True" if is_ready_now else "False"}],
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
        rt = self.store.types.get((group, version, plural))
        if rt is None:
            kind = body.get("kind")
            if not isinstance(kind, str) or not kind:
                raise ValueError(f"{plural}.{group}/{version} is not registered and the body has no kind")
            rt = ResourceType(group, version, plural, kind, verbs=ALL_VERBS, custom=True)
            self.register(rt)
        return self.put(rt, namespace, body)

    def get_object(self, group: str, version: str, plural: str, namespace: str, name: str) -> Obj | None:
        obj = self.store.get((group, version, plural), namespace, name)
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
        path: str | None = None,
    ) -> None:
        """Let SubjectAccessReviews matching every given field be allowed (default: deny)."""
        self.rules.append(AccessRule(user, group, verb, api_group, resource, namespace, path))

    def put(self, rt: ResourceType, namespace: str | None, body: Mapping[str, Any]) -> Obj:
        """Create or replace as given (no API strategy); a replacement keeps uid and creationTimestamp."""
        obj: Obj = copy.deepcopy(dict(body))
        meta: Obj = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("metadata.name is required")
        ns = namespace if rt.namespaced else None
        if ns is not None:
            meta["namespace"] = ns
        obj["kind"] = rt.kind
        obj["apiVersion"] = rt.api_version
        old = self.store.get(rt.key, ns, name)
        if old is not None:
            meta["uid"] = old["metadata"]["uid"]
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            stored = self.store.update(rt.key, obj)
        else:
            stored = self.store.create(rt.key, obj)
        self.tick()
        return copy.deepcopy(stored)

    def delete(self, rt: ResourceType, namespace: str | None, name: str) -> bool:
        """Remove at once (no grace period, no finalizers); dependents are garbage-collected."""
        removed = self.store.remove(rt.key, namespace, name)
        self.tick()
        return removed is not None

    def create(self, rt: ResourceType, namespace: str | None, body: Mapping[str, Any]) -> Obj:
        """Create through the API's rules (defaults, validation, status reset); raises StatusError."""
        created = self._create(rt, namespace, dict(body))
        self.tick()
        return self._wire(rt, created)

    def scale(self, rt: ResourceType, namespace: str, name: str, replicas: int) -> Obj:
        """Set a workload's ``spec.replicas`` as a PATCH of its scale subresource would."""
        scaled = self._update_scale(
            rt,
            Target(rt.group, rt.version, namespace, rt.plural, name, "scale"),
            {"spec": {"replicas": replicas}},
        )
        self.tick()
        return scaled

    def pods_of(self, rt: ResourceType, namespace: str, name: str) -> list[Obj]:
        """Pods a workload owns (through its ReplicaSets for a Deployment), by name."""
        owner = self.store.get(rt.key, namespace, name)
        if owner is None:
            return []
        uids = {owner["metadata"]["uid"]}
        for obj in self.store.items(("apps", "v1", "replicasets"), namespace):
            if any(r.get("uid") in uids for r in obj["metadata"].get("ownerReferences") or []):
                uids.add(obj["metadata"]["uid"])
        return [
            copy.deepcopy(p)
            for p in self.store.items(PODS.key, namespace)
            if any(r.get("uid") in uids for r in p["metadata"].get("ownerReferences") or [])
        ]

    def set_pod_ready(self, namespace: str, name: str, ready: bool) -> Obj:
        """Set a running pod's Ready condition (for workloads annotated ``readiness: external``)."""
        updated = self.workloads.set_ready(namespace, name, ready)
        self.tick()
        return copy.deepcopy(updated)

    def set_pod_annotations(self, namespace: str, name: str, annotations: Mapping[str, str | None]) -> Obj:
        """Merge annotations into a pod (None removes one), e.g. the port of the process standing for it."""
        pod = self.store.get(PODS.key, namespace, name)
        if pod is None:
            raise KeyError(f"pod {namespace}/{name} does not exist")
        changed = copy.deepcopy(pod)
        current = changed["metadata"].setdefault("annotations", {})
        for key, value in annotations.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        stored = self.store.update(PODS.key, changed)
        self.tick()
        return copy.deepcopy(stored)

    def compact(self) -> None:
        """Forget the watch history so far (like etcd compaction): resuming from before now gets 410."""
        self.store.hub.compact(self.store.resource_version)

    def tick(self) -> None:
        """Carry out what is due by the clock (pods starting or going) and let the controllers settle."""
        self.workloads.advance(self.clock())

    async def settle_hooks(self) -> None:
        """Wait for the pod hooks started so far (and those they lead to)."""
        await self.hooks.settle()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record, status_middleware])
        app.router.add_route("*", "/api", self._core_versions)
        app.router.add_route("*", "/apis", self._group_list)
        app.router.add_route("*", "/version", self._version)
        app.router.add_route("*", "/version/", self._version)
        app.router.add_route("*", "/api/{tail:.*}", self._dispatch)
        app.router.add_route("*", "/apis/{tail:.*}", self._dispatch)
        app.cleanup_ctx.append(self._background)
        app.on_shutdown.append(self._close_watches)
        return app

    # ----- background -----

    async def _background(self, app: web.Application) -> AsyncIterator[None]:
        self.store.hub.closed = False
        ticker = asyncio.create_task(self._tick_loop()) if self.tick_interval else None
        yield
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        await self.settle_hooks()

    async def _tick_loop(self) -> None:
        assert self.tick_interval is not None
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self.tick()
            except Exception:
                log.exception("sandbox tick failed")

    async def _close_watches(self, app: web.Application) -> None:
        self.store.hub.close()

    # ----- HTTP -----

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.authorizations.append(request.headers.get("Authorization"))
        return await handler(request)

    async def _version(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            raise method_not_allowed()
        return json_response(dict(SERVER_VERSION))

    async def _core_versions(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            raise method_not_allowed()
        return json_response(api_versions(request.host))

    async def _group_list(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            raise method_not_allowed()
        return json_response(group_list(self.store.types.values()))

    def _discovery(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            raise method_not_allowed()
        parts = [p for p in request.path.split("/") if p]
        doc: Obj | None
        if len(parts) == 1:
            # The official client asks for "/api/" with a trailing slash.
            doc = api_versions(request.host) if parts[0] == "api" else group_list(self.store.types.values())
        elif parts[0] == "apis" and len(parts) == 2:
            doc = group(self.store.types.values(), parts[1])
        else:
            g, v = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            doc = resource_list(self.store.types.values(), g, v)
        if doc is None:
            raise not_found_resource()
        return json_response(doc)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.tick()
        try:
            return await self._route(request)
        finally:
            self.tick()

    async def _route(self, request: web.Request) -> web.StreamResponse:
        target = parse_path(request.path)
        if target is None:
            return self._discovery(request)
        assert target.plural is not None
        rt = self.store.types.get((target.group, target.version, target.plural))
        if rt is None or (target.namespace is not None and not rt.namespaced):
            raise not_found_resource()
        if rt.namespaced and target.name is not None and target.namespace is None:
            raise not_found_resource()
        if target.subresource is not None and target.subresource not in rt.subresources:
            raise not_found_resource()
        method = request.method
        if method == "GET":
            if target.name is None:
                if truthy(request.query.get("watch")) and rt.allows("watch"):
                    return await self._watch(request, rt, target)
                if rt.allows("list"):
                    return self._list(request, rt, target)
            elif rt.allows("get"):
                return self._get(request, rt, target)
        elif method == "POST" and target.name is None and rt.allows("create"):
            handler = self._create_handlers.get(rt.key)
            if handler is not None:
                return await handler(request, rt, target)
            body = await read_json(request)
            created = self._create(rt, target.namespace, body, dry_run=dry_run(request))
            return json_response(self._wire(rt, created), status=201)
        elif method == "PUT" and target.name is not None and rt.allows("update"):
            body = await read_json(request)
            if target.subresource == "scale":
                return json_response(self._update_scale(rt, target, body))
            updated, was_created = self._update(rt, target, body, dry_run=dry_run(request))
            return json_response(self._wire(rt, updated), status=201 if was_created else 200)
        elif method == "PATCH" and target.name is not None and rt.allows("patch"):
            return await self._patch(request, rt, target)
        elif (
            method == "DELETE"
            and target.name is not None
            and rt.allows("delete")
            and target.subresource is None
        ):
            return await self._delete(request, rt, target)
        raise method_not_allowed()

    # ----- reading -----

    def _stored(self, rt: ResourceType, target: Target) -> Obj:
        assert target.name is not None
        obj = self.store.get(rt.storage_key, target.namespace, target.name)
        if obj is None:
            raise not_found(rt.group, rt.plural, target.name)
        return obj

    def _wire(self, rt: ResourceType, obj: Obj) -> Obj:
        """A stored object as ``rt`` shows it (converted for a second version of a type)."""
        if rt.storage is None:
            return obj
        convert = CONVERSIONS.get(rt.key)
        shown = convert[0](obj) if convert is not None else copy.deepcopy(obj)
        return {
            "kind": rt.kind,
            "apiVersion": rt.api_version,
            **{k: v for k, v in shown.items() if k not in ("kind", "apiVersion")},
        }

    def _from_wire(self, rt: ResourceType, body: Obj) -> Obj:
        if rt.storage is None:
            return body
        convert = CONVERSIONS.get(rt.key)
        stored_type = self.store.types[rt.storage]
        inner = convert[1](body) if convert is not None else copy.deepcopy(body)
        return {**inner, "kind": stored_type.kind, "apiVersion": stored_type.api_version}

    def _get(self, request: web.Request, rt: ResourceType, target: Target) -> web.Response:
        obj = self._stored(rt, target)
        if target.subresource == "scale":
            return json_response(self._scale_of(rt, obj))
        shown = self._wire(rt, obj)
        if wants_table(request.headers.get("Accept", "")):
            return json_response(self._table(request, rt, [shown]))
        return json_response(shown)

    def _select(self, rt: ResourceType, selected: Filter) -> list[Obj]:
        return [
            o
            for o in self.store.items(rt.storage_key, selected.namespace)
            if selected.matches(self._wire(rt, o))
        ]

    def _list(self, request: web.Request, rt: ResourceType, target: Target) -> web.Response:
        selected = request_filter(target.namespace, request.query)
        items = [self._wire(rt, o) for o in self._select(rt, selected)]
        meta: Obj = {"resourceVersion": str(self.store.resource_version)}
        start = request.query.get("continue")
        if start:
            after = read_continue(start)
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after]
        limit = int(request.query.get("limit") or 0)
        if limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            meta["continue"] = continue_token(
                self.store.resource_version, (last.get("namespace", ""), last["name"])
            )
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        if wants_table(request.headers.get("Accept", "")):
            doc = self._table(request, rt, items)
            doc["metadata"].update({k: v for k, v in meta.items() if k != "resourceVersion"})
            return json_response(doc)
        return json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": meta,
                "items": [_list_item(rt, o) for o in items],
            }
        )

    def _table(self, request: web.Request, rt: ResourceType, objects: list[Obj]) -> Obj:
        extra = self._crds.get(rt.key)
        return table(
            rt.storage_key if not rt.custom else rt.key,
            objects,
            self.clock(),
            str(self.store.resource_version),
            printer_columns=list(extra.printer_columns) if extra is not None else None,
            include_object=request.query.get("includeObject", "Metadata"),
        )

    async def _watch(self, request: web.Request, rt: ResourceType, target: Target) -> web.StreamResponse:
        watch = parse_watch(request.query, request_filter(target.namespace, request.query))
        if rt.storage is not None:
            # The filter applies to what this version shows; watching converts every object first.
            inner = watch.selected
            watch.selected = _ViewFilter(
                inner.namespace, inner.labels, inner.fields, lambda o: self._wire(rt, o)
            )
        stream = WatchStream(
            hub=self.store.hub,
            key=rt.storage_key,
            kind=rt.kind,
            api_version=rt.api_version,
            wire=lambda o: (
                self._wire(rt, o)
                if rt.storage is not None
                else {**o, "kind": rt.kind, "apiVersion": rt.api_version}
            ),
            current=lambda: (self.store.resource_version, self.store.items(rt.storage_key)),
            bookmark_interval=self.bookmark_interval,
        )
        return await stream.serve(request, watch)

    # ----- writing -----

    def _prepare_custom(self, rt: ResourceType, obj: Obj) -> list[tuple[str, str, str]]:
        extra = self._crds.get(rt.key)
        if extra is None or extra.schema is None:
            return []
        pruned = prune_object(obj, extra.schema)
        obj.clear()
        obj.update(pruned)
        return validate_object(obj, extra.schema)

    def _check_kind(self, rt: ResourceType, body: Obj) -> None:
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if rt.custom and (not api_version or not kind):
            raise bad_request(f"Object 'Kind' is missing in '{json.dumps(body)[:200]}'")
        if api_version and api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
            )
        if kind and kind != rt.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")

    def _create(self, rt: ResourceType, namespace: str | None, body: Obj, *, dry_run: bool = False) -> Obj:
        self._check_kind(rt, body)
        obj = self._from_wire(rt, copy.deepcopy(body))
        stored_type = self.store.types[rt.storage_key]
        meta: Obj = obj.setdefault("metadata", {})
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = meta["generateName"] + "".join(
                self.store.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5)
            )
            meta["name"] = name
        if not name:
            raise invalid(
                rt.group,
                rt.kind,
                "",
                [("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")],
            )
        if self.store.get(rt.storage_key, namespace if rt.namespaced else None, name) is not None:
            raise already_exists(rt.group, rt.plural, name)
        for server_owned in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "selfLink",
        ):
            meta.pop(server_owned, None)
        obj["kind"], obj["apiVersion"] = stored_type.kind, stored_type.api_version
        if "status" in rt.subresources:
            if rt.custom:
                obj.pop("status", None)
            else:
                obj["status"] = zero_status(rt.storage_key)
        if rt.generation:
            meta["generation"] = 1
        causes = self._prepare_custom(rt, obj) if rt.custom else self._prepare_built_in(rt, obj, None)
        if causes:
            raise invalid(rt.group, rt.kind, name, causes)
        if dry_run:
            return {
                **obj,
                "metadata": {**meta, "uid": self.store.new_uid(), "creationTimestamp": rfc3339(self.clock())},
            }
        created = self.store.create(rt.storage_key, obj)
        if rt.key == CRDS.key:
            self.install_crd(created)
        return created

    def _prepare_built_in(self, rt: ResourceType, obj: Obj, old: Obj | None) -> list[tuple[str, str, str]]:
        apply_defaults(rt.storage_key, obj)
        normalize_times(rt.storage_key, obj)
        return validate(rt.key, obj, old)

    def _update(
        self, rt: ResourceType, target: Target, body: Obj, *, dry_run: bool = False
    ) -> tuple[Obj, bool]:
        """PUT of an object or its status; returns the stored object and whether it was created."""
        assert target.name is not None
        if rt.custom or body.get("kind"):
            self._check_kind(rt, body)
        incoming = self._from_wire(rt, copy.deepcopy(body))
        meta: Obj = incoming.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != target.name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({target.name})"
            )
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != target.namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        old = self.store.get(rt.storage_key, target.namespace, target.name)
        if old is None:
            if rt.create_on_update and target.subresource is None:
                meta.pop("resourceVersion", None)
                meta["name"] = target.name
                return self._create(
                    rt,
                    target.namespace,
                    self._wire(rt, incoming) if rt.storage else incoming,
                    dry_run=dry_run,
                ), True
            raise not_found(rt.group, rt.plural, target.name)
        rv = meta.get("resourceVersion")
        if not rv and not rt.unconditional_update:
            # The generic registry names the resource here (leases.coordination.k8s.io), not the kind.
            raise invalid(
                rt.group,
                rt.plural,
                target.name,
                [
                    (
                        "metadata.resourceVersion",
                        "FieldValueInvalid",
                        "Invalid value: 0: must be specified for an update",
                    )
                ],
            )
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.group, rt.plural, target.name)
        if target.subresource == "status":
            new = copy.deepcopy(old)
            if "status" in incoming:
                new["status"] = incoming["status"]
            else:
                new.pop("status", None)
        else:
            new = incoming
            if "status" in rt.subresources:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
        new_meta = new.setdefault("metadata", {})
        for kept in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
            "name",
        ):
            if kept in old["metadata"]:
                new_meta[kept] = old["metadata"][kept]
            else:
                new_meta.pop(kept, None)
        new_meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        stored_type = self.store.types[rt.storage_key]
        new["kind"], new["apiVersion"] = stored_type.kind, stored_type.api_version
        causes = self._prepare_custom(rt, new) if rt.custom else self._prepare_built_in(rt, new, old)
        if causes:
            raise invalid(rt.group, rt.kind, target.name, causes)
        new_meta = new["metadata"]  # pruning may have replaced it
        if rt.generation and _strip(new) != _strip(old):
            new_meta["generation"] = int(old["metadata"].get("generation") or 1) + 1
        if new_meta.get("deletionTimestamp") and not new_meta.get("finalizers"):
            if dry_run:
                return new, False
            gone = self.store.remove(rt.storage_key, target.namespace, target.name)
            return gone or new, False
        if _same_but_version(new, old) or dry_run:
            return (new if dry_run else old), False
        return self.store.update(rt.storage_key, new), False

    async def _patch(self, request: web.Request, rt: ResourceType, target: Target) -> web.Response:
        old = self._stored(rt, target)
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        if target.subresource == "scale":
            patched = apply_patch(content_type, self._scale_of(rt, old), body, strategic=True)
            if not isinstance(patched, dict):
                raise bad_request("the patched Scale is not an object")
            return json_response(self._update_scale(rt, target, patched))
        patched = apply_patch(content_type, self._wire(rt, old), body, strategic=not rt.custom)
        if not isinstance(patched, dict):
            raise bad_request("the patched object is not a JSON object")
        updated, _ = self._update(rt, target, patched, dry_run=dry_run(request))
        return json_response(self._wire(rt, updated))

    def _scale_of(self, rt: ResourceType, obj: Obj) -> Obj:
        meta = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
                "creationTimestamp": meta["creationTimestamp"],
            },
            "spec": {"replicas": int((obj.get("spec") or {}).get("replicas", 0))},
            "status": {
                "replicas": int((obj.get("status") or {}).get("replicas", 0)),
                "selector": selector_string((obj.get("spec") or {}).get("selector")),
            },
        }

    def _update_scale(self, rt: ResourceType, target: Target, body: Mapping[str, Any]) -> Obj:
        assert target.name is not None
        old = self._stored(rt, target)
        if body.get("kind") not in (None, "Scale"):
            raise bad_request(f"expected input object type to be Scale, but got {body.get('kind')}")
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != target.name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({target.name})"
            )
        replicas = (body.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise bad_request(f"spec.replicas must be an integer, not {replicas!r}")
        causes = validate_scale_replicas(replicas)
        if causes:
            raise invalid("autoscaling", "Scale", target.name, causes)
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.group, rt.plural, target.name)
        if int((old.get("spec") or {}).get("replicas", 0)) == replicas:
            return self._scale_of(rt, old)
        new = copy.deepcopy(old)
        new.setdefault("spec", {})["replicas"] = replicas
        if rt.generation:
            new["metadata"]["generation"] = int(old["metadata"].get("generation") or 1) + 1
        return self._scale_of(rt, self.store.update(rt.storage_key, new))

    async def _delete(self, request: web.Request, rt: ResourceType, target: Target) -> web.Response:
        assert target.name is not None
        old = self._stored(rt, target)
        options: Obj = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                try:
                    parsed = json.loads(raw)
                except ValueError as exc:
                    raise bad_request(f"the request body is not JSON: {exc}") from exc
                options = parsed if isinstance(parsed, dict) else {}
        for key in ("gracePeriodSeconds", "propagationPolicy"):
            if key in request.query:
                options[key] = request.query[key]
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
            raise conflict(
                rt.group,
                rt.plural,
                target.name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {old['metadata']['uid']}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise conflict(
                rt.group,
                rt.plural,
                target.name,
                f"the ResourceVersion in the precondition ({pre['resourceVersion']}) does not match the "
                f"ResourceVersion in record ({old['metadata']['resourceVersion']}). The object might have been modified",
            )
        if dry_run(request):
            return json_response(self._deleted_answer(rt, old), status=200)
        policy = options.get("propagationPolicy")
        if policy == "Orphan":
            self.workloads.orphan(old)
        if rt.key == PODS.key:
            grace = options.get("gracePeriodSeconds")
            result, gone = self.workloads.delete_pod(
                target.namespace or "", target.name, None if grace is None else float(grace)
            )
        elif old["metadata"].get("deletionTimestamp"):
            result, gone = old, False
        elif old["metadata"].get("finalizers"):
            marked = copy.deepcopy(old)
            marked["metadata"]["deletionTimestamp"] = rfc3339(self.clock())
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            result, gone = self.store.update(rt.storage_key, marked), False
        else:
            removed = self.store.remove(rt.storage_key, target.namespace, target.name)
            result, gone = removed or old, True
        if gone and not rt.return_deleted:
            return json_response(self._deleted_answer(rt, result))
        return json_response(self._wire(rt, result), status=200 if gone else 202)

    def _deleted_answer(self, rt: ResourceType, obj: Obj) -> Obj:
        details: Obj = {"name": obj["metadata"]["name"]}
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.plural
        details["uid"] = obj["metadata"]["uid"]
        if rt.return_deleted:
            return self._wire(rt, obj)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    async def _create_review(self, request: web.Request, rt: ResourceType, target: Target) -> web.Response:
        body = await read_json(request)
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
        return _review_answer(rt, spec, status)

    async def _create_token_review(
        self, request: web.Request, rt: ResourceType, target: Target
    ) -> web.Response:
        body = await read_json(request)
        spec = body.get("spec")
        if not isinstance(spec, dict):
            raise StatusError(400, "BadRequest", "TokenReview has no spec")
        known = self.tokens.get(str(spec.get("token") or ""))
        status: Obj = {"authenticated": known is not None}
        if known is not None:
            status["user"] = {"username": known[0], "uid": f"uid-{known[0]}", "groups": list(known[1])}
        else:
            status["error"] = "sandbox: unknown token"
        return _review_answer(rt, spec, status)

    # ----- discovery -----


def _review_answer(rt: ResourceType, spec: Obj, status: Obj) -> web.Response:
    """A review created: as kube-apiserver, the spec comes back as sent (a token included) with a status."""
    answer = {
        "kind": rt.kind,
        "apiVersion": rt.api_version,
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": status,
    }
    return json_response(answer, status=201)


@dataclass(frozen=True)
class _ViewFilter(Filter):
    """A filter judged on an object as another version of its type shows it."""

    view: Callable[[Obj], Obj] = lambda o: o

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return super().matches(self.view(dict(obj)))


def client_for(url: str) -> kubernetes.client.ApiClient:
    """An official-client ``ApiClient`` for a sandbox served at ``url`` (no credentials)."""
    cfg = kubernetes.client.Configuration(host=url.rstrip("/"))
    return kubernetes.client.ApiClient(configuration=cfg)


def _list_item(rt: ResourceType, obj: Obj) -> Obj:
    # Built-in lists carry kind/apiVersion only at the top; custom resources keep them on every item.
    if rt.custom:
        return obj
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
