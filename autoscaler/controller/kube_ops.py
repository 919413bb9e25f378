"""The Kubernetes calls the actuators share, through the official client, off the event loop.

The official client is synchronous; every call runs in a worker thread so one slow API server answer
never stalls the other policies' passes. Writes of the scale subresource retry a 409 Conflict with a
fresh read, as client-go's ``RetryOnConflict`` does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from autoscaler.controller.actuator import ActuatorError

__all__ = ["KubeOps", "Scale", "WorkloadKind"]

WorkloadKind = Literal["Deployment", "StatefulSet"]
_CONFLICT_RETRIES = 5


@dataclass(frozen=True, slots=True)
class Scale:
    """A workload's scale subresource: ``spec.replicas``, ``status.replicas`` and its pod selector."""

    replicas: int
    status_replicas: int
    selector: str
    resource_version: str


def _scale_of(obj: Any) -> Scale:
    spec = obj.spec
    status = obj.status
    return Scale(
        replicas=int(spec.replicas or 0) if spec is not None else 0,
        status_replicas=int(status.replicas or 0) if status is not None else 0,
        selector=(status.selector or "") if status is not None else "",
        resource_version=obj.metadata.resource_version or "",
    )


class KubeOps:
    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self.api = api
        self.apps = kubernetes.client.AppsV1Api(api)
        self.core = kubernetes.client.CoreV1Api(api)

    async def get_scale(self, kind: WorkloadKind, namespace: str, name: str) -> Scale | None:
        """The scale subresource, None when the workload does not exist."""
        try:
            obj = await asyncio.to_thread(self._read_scale, kind, namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ActuatorError(
                "get_scale", f"reading {kind} {namespace}/{name} scale: {exc.status} {exc.reason}"
            ) from exc
        return _scale_of(obj)

    async def set_replicas(self, kind: WorkloadKind, namespace: str, name: str, replicas: int) -> Scale:
        """Write ``spec.replicas`` on the scale subresource; a 409 is retried on a fresh read."""
        for _ in range(_CONFLICT_RETRIES):
            try:
                obj = await asyncio.to_thread(self._read_scale, kind, namespace, name)
                obj.spec.replicas = replicas
                written = await asyncio.to_thread(self._replace_scale, kind, namespace, name, obj)
                return _scale_of(written)
            except ApiException as exc:
                if exc.status == 409:
                    continue
                raise ActuatorError(
                    "set_replicas",
                    f"scaling {kind} {namespace}/{name} to {replicas}: {exc.status} {exc.reason}",
                ) from exc
        raise ActuatorError(
            "set_replicas",
            f"scaling {kind} {namespace}/{name}: still conflicting after {_CONFLICT_RETRIES} tries",
        )

    async def list_pods(self, namespace: str, selector: str) -> list[Any]:
        try:
            result = await asyncio.to_thread(
                self.core.list_namespaced_pod, namespace, label_selector=selector
            )
        except ApiException as exc:
            raise ActuatorError(
                "list_pods", f"listing pods {selector!r} in {namespace}: {exc.status} {exc.reason}"
            ) from exc
        return list(result.items)

    async def annotate_pod(
        self, namespace: str, name: str, annotations: dict[str, str | None]
    ) -> dict[str, Any]:
        """Merge-patch annotations onto a pod (``None`` removes one); returns the patch written."""
        patch: dict[str, Any] = {"metadata": {"annotations": annotations}}
        try:
            await asyncio.to_thread(self.core.patch_namespaced_pod, name, namespace, patch)
        except ApiException as exc:
            raise ActuatorError(
                "patch_pod", f"annotating pod {namespace}/{name}: {exc.status} {exc.reason}"
            ) from exc
        return patch

    def _read_scale(self, kind: WorkloadKind, namespace: str, name: str) -> Any:
        if kind == "Deployment":
            return self.apps.read_namespaced_deployment_scale(name, namespace)
        return self.apps.read_namespaced_stateful_set_scale(name, namespace)

    def _replace_scale(self, kind: WorkloadKind, namespace: str, name: str, body: Any) -> Any:
        if kind == "Deployment":
            return self.apps.replace_namespaced_deployment_scale(name, namespace, body)
        return self.apps.replace_namespaced_stateful_set_scale(name, namespace, body)
