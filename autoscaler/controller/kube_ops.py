"""The Kubernetes calls the actuators share, through the official client, off the event loop.

The official client is synchronous; every call runs in a worker thread so one slow API server answer
never stalls the other policies' passes. Writes of the scale subresource retry a 409 Conflict with a
fresh read, as client-go's ``RetryOnConflict`` does.

With ``cache=True`` (the controller's wiring) pods, Deployments and StatefulSets are read from informers
(:mod:`autoscaler.controller.informer`): listed once per namespace, then kept current by watches, so a pass
reads them from memory. The controller's own writes are put in the cache at once (client-go's mutation
cache), so a pass reads what it wrote. A namespace whose watch is down is read by one LIST per pass, as
without the cache.

Answers the actuators read as JSON are taken as JSON (``_preload_content=False``): building the
client's model objects and turning them back into JSON cost about twice the request itself, and a
thousand policies make thousands of these calls per pass.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import kubernetes.client

from autoscaler.controller.actuator import ActuatorError
from autoscaler.controller.informer import Informer
from autoscaler.controller.kube_api import Conflict, KubeError, NotFound
from autoscaler.controller.kube_api import call as kube_call
from core.selectors import Selector, parse_selector

__all__ = ["KubeOps", "Scale", "WorkloadKind"]

WorkloadKind = Literal["Deployment", "StatefulSet"]
K = TypeVar("K")
V = TypeVar("V")
_CONFLICT_RETRIES = 5
_WATCH_CONNECTIONS = 1024


@dataclass(frozen=True, slots=True)
class Scale:
    """A workload's scale subresource: ``spec.replicas``, ``status.replicas`` and its pod selector;
    ``obj`` is the object as the API server answered it (JSON form)."""

    replicas: int
    status_replicas: int
    selector: str
    resource_version: str
    obj: dict[str, Any] = field(default_factory=dict, compare=False)


def _scale_of(obj: dict[str, Any]) -> Scale:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return Scale(
        replicas=int(spec.get("replicas") or 0),
        status_replicas=int(status.get("replicas") or 0),
        selector=str(status.get("selector") or ""),
        resource_version=str((obj.get("metadata") or {}).get("resourceVersion") or ""),
        obj=obj,
    )


@functools.lru_cache(maxsize=4096)
def _selector(text: str) -> Selector:
    # Workload selectors: few, short and the controller's own; every pass asks for the same ones.
    return parse_selector(text)


def format_selector(selector: dict[str, Any] | None) -> str:
    """A metav1.LabelSelector as the scale subresource's ``status.selector`` string (apimachinery's
    ``FormatLabelSelector``: requirements sorted by key, values sorted)."""
    parts: list[tuple[str, str]] = []
    for key, value in ((selector or {}).get("matchLabels") or {}).items():
        parts.append((str(key), f"{key}={value}"))
    for expr in (selector or {}).get("matchExpressions") or []:
        key, op = str(expr.get("key")), str(expr.get("operator"))
        values = ",".join(sorted(str(v) for v in expr.get("values") or []))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(
            op, f"!{key}"
        )
        parts.append((key, text))
    return ",".join(text for _, text in sorted(parts))


def _scale_of_workload(obj: dict[str, Any]) -> Scale:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    replicas = spec.get("replicas")
    return Scale(
        replicas=1 if replicas is None else int(replicas),
        status_replicas=int(status.get("replicas") or 0),
        selector=format_selector(spec.get("selector")),
        resource_version=str((obj.get("metadata") or {}).get("resourceVersion") or ""),
    )


def _json(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Make an official-client call and return its answer as parsed JSON, not as model objects."""
    response = call(*args, _preload_content=False, **kwargs)
    return json.loads(response.data or b"null")


def _watch_client(api: kubernetes.client.ApiClient) -> kubernetes.client.ApiClient:
    """A client like ``api`` with a connection pool of its own: every watch holds a connection for
    minutes, and a pool smaller than the number of watches would discard and reopen connections."""
    config = copy.deepcopy(api.configuration)
    config.connection_pool_maxsize = _WATCH_CONNECTIONS
    return kubernetes.client.ApiClient(config)


class KubeOps:
    def __init__(
        self, api: kubernetes.client.ApiClient, *, cache: bool = False, sync_timeout_seconds: float = 10.0
    ) -> None:
        self.api = api
        self.apps = kubernetes.client.AppsV1Api(api)
        self.core = kubernetes.client.CoreV1Api(api)
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.sync_timeout = sync_timeout_seconds
        self._watch_api: kubernetes.client.ApiClient | None = None
        self._informers: dict[str, Informer] = {}
        if cache:
            self._watch_api = _watch_client(api)
            apps = kubernetes.client.AppsV1Api(self._watch_api)
            self._informers = {
                "pods": Informer(
                    kubernetes.client.CoreV1Api(self._watch_api).list_namespaced_pod, resource="pods"
                ),
                "Deployment": Informer(apps.list_namespaced_deployment, resource="deployments"),
                "StatefulSet": Informer(apps.list_namespaced_stateful_set, resource="statefulsets"),
            }
        # (informer, namespace) pairs already waited for once: a namespace whose first sync timed out is
        # not waited for again, its reads fall back to per-pass lists until the informer syncs.
        self._waited: set[tuple[str, str]] = set()
        # Per-pass pod lists, one LIST per namespace shared by every target there (see begin_pass).
        self._pass_pods: dict[str, asyncio.Future[list[dict[str, Any]]]] | None = None
        # Per-pass workload lists, one LIST per (kind, namespace): the scale subresource's figures.
        self._pass_workloads: dict[tuple[str, str], asyncio.Future[dict[str, dict[str, Any]]]] | None = None
        # Per-pass Secrets by (namespace, name).
        self._pass_secrets: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] | None = None

    async def get_scale(
        self, kind: WorkloadKind, namespace: str, name: str, *, fresh: bool = False
    ) -> Scale | None:
        """The scale subresource, None when the workload does not exist.

        From the watch cache when there is one and ``fresh`` is not asked for; else, within a pass
        (:meth:`begin_pass`), from one list of the namespace's workloads of that kind: ``spec.replicas``,
        ``status.replicas`` and the selector formatted as the scale subresource formats it."""
        cached = None if fresh else await self._cache(kind, namespace)
        if cached is not None:
            found = cached.get(namespace, name)
            return None if found is None else _scale_of_workload(found)
        if self._pass_workloads is not None:
            workloads = await self._shared(
                self._pass_workloads, (kind, namespace), lambda: self._list_workloads(kind, namespace)
            )
            found = workloads.get(name)
            return None if found is None else _scale_of_workload(found)
        try:
            obj = await kube_call(self._read_scale, kind, namespace, name)
        except NotFound:
            return None
        except KubeError as exc:
            raise ActuatorError("get_scale", f"reading {kind} {namespace}/{name} scale: {exc.brief}") from exc
        return _scale_of(obj)

    async def set_replicas(self, kind: WorkloadKind, namespace: str, name: str, replicas: int) -> Scale:
        """Write ``spec.replicas`` on the scale subresource; a 409 is retried on a fresh read."""
        self._forget_pods(namespace)
        for _ in range(_CONFLICT_RETRIES):
            try:
                obj = await kube_call(self._read_scale, kind, namespace, name)
                obj.setdefault("spec", {})["replicas"] = replicas
                written = await kube_call(self._replace_scale, kind, namespace, name, obj)
                scale = _scale_of(written)
                self._wrote_replicas(kind, namespace, name, scale)
                return scale
            except Conflict:
                continue
            except KubeError as exc:
                raise ActuatorError(
                    "set_replicas",
                    f"scaling {kind} {namespace}/{name} to {replicas}: {exc.brief}",
                ) from exc
        raise ActuatorError(
            "set_replicas",
            f"scaling {kind} {namespace}/{name}: still conflicting after {_CONFLICT_RETRIES} tries",
        )

    async def list_pods(self, namespace: str, selector: str) -> list[Any]:
        """The pods as official-client models."""
        try:
            result = await kube_call(self.core.list_namespaced_pod, namespace, label_selector=selector)
        except KubeError as exc:
            raise ActuatorError(
                "list_pods", f"listing pods {selector!r} in {namespace}: {exc.brief}"
            ) from exc
        return list(result.items)

    async def _cache(self, resource: str, namespace: str) -> Informer | None:
        """The informer to read ``resource`` in ``namespace`` from, None when there is none or it is not
        synced (the first read of a namespace waits for its first list, up to the sync timeout)."""
        informer = self._informers.get(resource)
        if informer is None:
            return None
        if (resource, namespace) not in self._waited:
            self._waited.add((resource, namespace))
            synced = await informer.wait_synced(namespace, self.sync_timeout)
        else:
            synced = informer.synced(namespace)
        return informer if synced else None

    @property
    def caches(self) -> Mapping[str, Informer]:
        """The watch caches by what they hold ("pods", "Deployment", "StatefulSet"); empty without."""
        return dict(self._informers)

    def _wrote_replicas(self, kind: WorkloadKind, namespace: str, name: str, scale: Scale) -> None:
        # The scale subresource answers with the workload's resourceVersion: the cached workload with the
        # replicas written is what the watch will bring (status aside), so the pass reads its own write.
        informer = self._informers.get(kind)
        cached = informer.get(namespace, name) if informer is not None else None
        if informer is None or cached is None:
            return
        meta = {**(cached.get("metadata") or {}), "resourceVersion": scale.resource_version}
        informer.written(
            {**cached, "metadata": meta, "spec": {**(cached.get("spec") or {}), "replicas": scale.replicas}}
        )

    def _wrote_pod(self, namespace: str, name: str, answer: object, *, deleting: bool = False) -> None:
        informer = self._informers.get("pods")
        if informer is None:
            return
        pod = answer if isinstance(answer, dict) and answer.get("kind") == "Pod" else None
        if pod is not None and (not deleting or (pod.get("metadata") or {}).get("deletionTimestamp")):
            informer.written(pod)
        else:
            # A delete answered with a Status, or with the pod's last state: it is gone already.
            informer.deleted(namespace, name)

    async def close(self) -> None:
        """Stop the informers' watches (their threads join within a few seconds)."""
        informers, self._informers = list(self._informers.values()), {}
        for informer in informers:
            await asyncio.to_thread(informer.close)  # not an API call
        if self._watch_api is not None:
            self._watch_api.close()  # type: ignore[no-untyped-call]
            self._watch_api = None

    def begin_pass(self) -> None:
        """Start a reconcile pass: from now until the next call, pods are listed once per namespace and
        filtered here, as an informer's cache would serve them; a write to a namespace's pods or replicas
        drops that namespace's list so the pass reads its own writes."""
        self._pass_pods = {}
        self._pass_workloads = {}
        self._pass_secrets = {}

    @staticmethod
    async def _shared(cache: dict[K, asyncio.Future[V]], key: K, load: Callable[[], Awaitable[V]]) -> V:
        """``load()`` once per key for every concurrent caller; a failure is not kept."""
        shared = cache.get(key)
        if shared is None:
            shared = asyncio.get_running_loop().create_future()
            cache[key] = shared
            try:
                shared.set_result(await load())
            except BaseException as exc:
                cache.pop(key, None)
                shared.set_exception(exc)
                shared.exception()  # retrieved here; the waiters re-raise it
                raise
        elif shared.done():
            return shared.result()
        return await asyncio.shield(shared)

    async def _list_workloads(self, kind: WorkloadKind, namespace: str) -> dict[str, dict[str, Any]]:
        lister = (
            self.apps.list_namespaced_deployment
            if kind == "Deployment"
            else self.apps.list_namespaced_stateful_set
        )
        try:
            result = await kube_call(_json, lister, namespace)
        except KubeError as exc:
            raise ActuatorError("get_scale", f"listing {kind}s in {namespace}: {exc.brief}") from exc
        items = result.get("items") if isinstance(result, dict) else None
        return {str((w.get("metadata") or {}).get("name")): w for w in items or [] if isinstance(w, dict)}

    def _forget_pods(self, namespace: str) -> None:
        if self._pass_pods is not None:
            self._pass_pods.pop(namespace, None)
        if self._pass_workloads is not None:
            for kind in ("Deployment", "StatefulSet"):
                self._pass_workloads.pop((kind, namespace), None)

    async def list_pods_json(
        self, namespace: str, selector: str, *, fresh: bool = False
    ) -> list[dict[str, Any]]:
        """The pods as the API server sent them (JSON form); ``fresh`` as for :meth:`get_scale`.

        A watch cache may trail the API server by seconds after a burst of changes: a pass that is about
        to act reads fresh, so a pod that just started serving is never taken for one still pending."""
        wanted = _selector(selector)
        cached = None if fresh else await self._cache("pods", namespace)
        if cached is not None:
            return cached.list(namespace, wanted)
        if self._pass_pods is None:
            return await self._list_pods_json(namespace, selector)
        pods = await self._shared(self._pass_pods, namespace, lambda: self._list_pods_json(namespace, ""))
        pinned = wanted.equality_labels()
        if len(pinned) == len(wanted.requirements):
            # Workload selectors are nearly always plain key=value pairs: compare them directly.
            items = tuple(pinned.items())
            return [
                p
                for p in pods
                if all(((p.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in items)
            ]
        return [p for p in pods if wanted.matches((p.get("metadata") or {}).get("labels") or {})]

    async def _list_pods_json(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        try:
            result = await kube_call(_json, self.core.list_namespaced_pod, namespace, label_selector=selector)
        except KubeError as exc:
            raise ActuatorError(
                "list_pods", f"listing pods {selector!r} in {namespace}: {exc.brief}"
            ) from exc
        items = result.get("items") if isinstance(result, dict) else None
        return [p for p in items or [] if isinstance(p, dict)]

    async def annotate_pod(
        self, namespace: str, name: str, annotations: dict[str, str | None]
    ) -> dict[str, Any]:
        """Merge-patch annotations onto a pod (``None`` removes one); returns the patch written."""
        self._forget_pods(namespace)
        patch: dict[str, Any] = {"metadata": {"annotations": annotations}}
        try:
            answer = await kube_call(_json, self.core.patch_namespaced_pod, name, namespace, patch)
        except KubeError as exc:
            raise ActuatorError("patch_pod", f"annotating pod {namespace}/{name}: {exc.brief}") from exc
        self._wrote_pod(namespace, name, answer)
        return patch

    async def patch_pod(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """JSON-merge-patch a pod (``None`` removes a key); returns the pod as answered (JSON form)."""
        self._forget_pods(namespace)
        try:
            pod = await kube_call(
                _json,
                self.core.patch_namespaced_pod,
                name,
                namespace,
                patch,
                _content_type="application/merge-patch+json",
            )
        except KubeError as exc:
            raise ActuatorError("patch_pod", f"patching pod {namespace}/{name}: {exc.brief}") from exc
        self._wrote_pod(namespace, name, pod)
        return _object(pod, "patch_pod")

    async def read_secret_value(self, namespace: str, name: str, key: str) -> str:
        """One key of a Secret, decoded (trailing newlines dropped, as file-mounted credentials are read)."""
        if self._pass_secrets is None:
            secret = await self._read_secret(namespace, name)
        else:
            # The policies of one Trino cluster share its Secret: one read per pass.
            secret = await self._shared(
                self._pass_secrets, (namespace, name), lambda: self._read_secret(namespace, name)
            )
        data = secret.get("data") or {}
        if key in data:
            try:
                return base64.b64decode(data[key], validate=True).decode("utf-8").rstrip("\r\n")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise ActuatorError(
                    "read_secret", f"secret {namespace}/{name} key {key!r}: not base64 text"
                ) from exc
        raise ActuatorError("read_secret", f"secret {namespace}/{name} has no key {key!r}")

    async def _read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            secret = await kube_call(_json, self.core.read_namespaced_secret, name, namespace)
        except KubeError as exc:
            raise ActuatorError("read_secret", f"reading secret {namespace}/{name}: {exc.brief}") from exc
        return _object(secret, "read_secret")

    async def delete_pod(self, namespace: str, name: str) -> bool:
        """Delete a pod (its controller recreates it); False when it was already gone."""
        self._forget_pods(namespace)
        try:
            answer = await kube_call(_json, self.core.delete_namespaced_pod, name, namespace)
        except NotFound:
            self._wrote_pod(namespace, name, None, deleting=True)
            return False
        except KubeError as exc:
            raise ActuatorError("delete_pod", f"deleting pod {namespace}/{name}: {exc.brief}") from exc
        # Deleted with a grace period, the answer is the pod, terminating.
        self._wrote_pod(namespace, name, answer, deleting=True)
        return True

    async def get_custom(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        """A namespaced custom object, None when it does not exist."""
        try:
            obj = await kube_call(
                self.custom.get_namespaced_custom_object, group, version, namespace, plural, name
            )
        except NotFound:
            return None
        except KubeError as exc:
            raise ActuatorError(
                "get_custom", f"reading {plural}.{group} {namespace}/{name}: {exc.brief}"
            ) from exc
        return _object(obj, "get_custom")

    async def patch_custom(
        self, group: str, version: str, plural: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch a namespaced custom object and return it as written; None on 409 Conflict (a
        ``metadata.resourceVersion`` in the patch no longer matches): re-read and decide again."""
        try:
            obj = await kube_call(
                self.custom.patch_namespaced_custom_object,
                group,
                version,
                namespace,
                plural,
                name,
                patch,
                _content_type="application/merge-patch+json",
            )
        except Conflict:
            return None
        except KubeError as exc:
            raise ActuatorError(
                "patch_custom", f"patching {plural}.{group} {namespace}/{name}: {exc.brief}"
            ) from exc
        return _object(obj, "patch_custom")

    def _read_scale(self, kind: WorkloadKind, namespace: str, name: str) -> dict[str, Any]:
        if kind == "Deployment":
            doc = _json(self.apps.read_namespaced_deployment_scale, name, namespace)
        else:
            doc = _json(self.apps.read_namespaced_stateful_set_scale, name, namespace)
        return _object(doc, "get_scale")

    def _replace_scale(
        self, kind: WorkloadKind, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        model = kubernetes.client.V1Scale.from_dict(body)
        if kind == "Deployment":
            doc = _json(self.apps.replace_namespaced_deployment_scale, name, namespace, model)
        else:
            doc = _json(self.apps.replace_namespaced_stateful_set_scale, name, namespace, model)
        return _object(doc, "set_replicas")


def _object(obj: object, operation: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ActuatorError(operation, f"the API server answered a {type(obj).__name__}, not an object")
    return obj
