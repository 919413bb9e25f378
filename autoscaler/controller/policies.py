"""Where the controller's ScalingPolicies come from: the cluster's custom resources (watched) or files.

Both sources give a snapshot ``{(namespace, name): PolicyEntry}``; an entry that fails validation keeps
its error so the loop can report it in the policy's status and an Event instead of crashing. A change
takes effect on the next loop pass: the CRD source keeps its snapshot current with a watch (relisting
after a 410 Gone or a broken stream), the file source re-reads a file when its modification time changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import kubernetes.client
import kubernetes.watch
import urllib3
from pydantic import ValidationError

from autoscaler.controller.kube_api import KubeError, translated
from autoscaler.policy.loading import from_resource, load_policies
from autoscaler.policy.models import ScalingPolicy
from core.errors import ConfigError
from core.yamlfile import explain

__all__ = ["CrdPolicySource", "FilePolicySource", "PolicyEntry", "PolicyKey", "PolicySource"]

log = logging.getLogger(__name__)

GROUP = "queuescale.io"
VERSION = "v1alpha1"
PLURAL = "scalingpolicies"

PolicyKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """One policy as last read. ``policy`` None means it is invalid and ``error`` says why.

    ``generation`` is ``metadata.generation`` for custom resources (0 for files); ``from_cluster`` tells
    whether a status and Events can be written for it.
    """

    key: PolicyKey
    policy: ScalingPolicy | None
    error: str = ""
    generation: int = 0
    uid: str = ""
    from_cluster: bool = False
    source: str = ""


class PolicySource(Protocol):
    def snapshot(self) -> dict[PolicyKey, PolicyEntry]: ...

    def close(self) -> None: ...


def entry_from_resource(obj: dict[str, Any]) -> PolicyEntry:
    meta = obj.get("metadata") or {}
    key = (str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
    generation = int(meta.get("generation") or 0)
    uid = str(meta.get("uid") or "")
    where = f"scalingpolicy {key[0]}/{key[1]}"
    try:
        policy = from_resource(obj)
    except ValidationError as exc:
        return PolicyEntry(key, None, explain(exc, None), generation, uid, True, where)
    if policy.metadata.namespace != key[0]:
        policy = policy.model_copy(
            update={"metadata": policy.metadata.model_copy(update={"namespace": key[0]})}
        )
    return PolicyEntry(key, policy, "", generation, uid, True, where)


class CrdPolicySource:
    """ScalingPolicy custom resources in every namespace, or in the listed ones, kept current by a watch.

    The watch runs on a daemon thread (the official client's watch is blocking); :meth:`snapshot` hands out
    a copy, so the loop never sees a half-applied change.
    """

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        namespaces: Sequence[str] = (),
        *,
        watch_timeout_seconds: int = 300,
        retry_seconds: float = 2.0,
    ) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.namespaces = tuple(namespaces)
        self.watch_timeout = watch_timeout_seconds
        self.retry = retry_seconds
        self._lock = threading.Lock()
        self._entries: dict[str, dict[PolicyKey, PolicyEntry]] = {}
        self._synced: dict[str, bool] = {}
        self._stop = threading.Event()
        self._watches: list[kubernetes.watch.Watch] = []
        self._threads = [
            threading.Thread(target=self._run, args=(ns,), name=f"policy-watch-{ns or 'all'}", daemon=True)
            for ns in (self.namespaces or ("",))
        ]
        for thread in self._threads:
            thread.start()

    def synced(self) -> bool:
        """True once every namespace has been listed at least once."""
        with self._lock:
            return all(self._synced.get(ns or "", False) for ns in (self.namespaces or ("",)))

    def snapshot(self) -> dict[PolicyKey, PolicyEntry]:
        with self._lock:
            out: dict[PolicyKey, PolicyEntry] = {}
            for entries in self._entries.values():
                out.update(entries)
            return out

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            watches = list(self._watches)
        for w in watches:
            w.stop()  # type: ignore[no-untyped-call]
        for thread in self._threads:
            thread.join(timeout=5)

    def _list(self, namespace: str) -> dict[str, Any]:
        if namespace:
            return cast(
                dict[str, Any], self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
            )
        return cast(dict[str, Any], self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL))

    def _run(self, namespace: str) -> None:
        while not self._stop.is_set():
            try:
                with translated():
                    listed = self._list(namespace)
                    entries = {e.key: e for e in map(entry_from_resource, listed.get("items") or [])}
                    with self._lock:
                        self._entries[namespace] = entries
                        self._synced[namespace] = True
                    version = str((listed.get("metadata") or {}).get("resourceVersion") or "")
                    self._watch(namespace, version)
            except Exception as exc:
                if self._stop.is_set():
                    # Closing: the server going away under the watch is expected, not worth a log line.
                    return
                where = namespace or "all namespaces"
                if isinstance(exc, KubeError):
                    log.warning("scalingpolicy list/watch in %s failed: %s", where, exc.brief)
                elif isinstance(exc, urllib3.exceptions.HTTPError):
                    # A stream the server closed mid-chunk (restart, a proxy's timeout): relist.
                    log.warning("scalingpolicy watch in %s broke: %s", where, exc)
                else:
                    log.exception("scalingpolicy watch in %s failed", where)
            self._stop.wait(self.retry)

    def _unchanged(self, namespace: str, obj: dict[str, Any]) -> bool:
        """Whether ``obj`` is the policy already held but for its status: same uid and generation (the API
        server bumps the generation on every spec change, not on status writes), same labels and
        annotations."""
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
        with self._lock:
            held = self._entries.get(namespace, {}).get(key)
        if held is None or held.policy is None or not held.generation:
            return False
        return (
            held.uid == str(meta.get("uid") or "")
            and held.generation == int(meta.get("generation") or 0)
            and held.policy.metadata.labels == (meta.get("labels") or {})
            and held.policy.metadata.annotations == (meta.get("annotations") or {})
        )

    def _watch(self, namespace: str, version: str) -> None:
        w = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
        with self._lock:
            self._watches.append(w)
        try:
            if namespace:
                stream: Iterable[dict[str, Any]] = w.stream(  # type: ignore[no-untyped-call]
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace,
                    PLURAL,
                    resource_version=version,
                    timeout_seconds=self.watch_timeout,
                )
            else:
                stream = w.stream(  # type: ignore[no-untyped-call]
                    self.custom.list_cluster_custom_object,
                    GROUP,
                    VERSION,
                    PLURAL,
                    resource_version=version,
                    timeout_seconds=self.watch_timeout,
                )
            for event in stream:
                if self._stop.is_set():
                    return
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    # 410 Gone or another error: relist from scratch.
                    return
                if not isinstance(obj, dict):
                    continue
                if kind == "MODIFIED" and self._unchanged(namespace, obj):
                    # Our own status writes come back as MODIFIED: nothing to validate again.
                    continue
                entry = entry_from_resource(obj)
                with self._lock:
                    entries = dict(self._entries.get(namespace, {}))
                    if kind == "DELETED":
                        entries.pop(entry.key, None)
                    elif kind in ("ADDED", "MODIFIED"):
                        entries[entry.key] = entry
                    self._entries[namespace] = entries
        finally:
            w.stop()  # type: ignore[no-untyped-call]
            with self._lock:
                self._watches.remove(w)


class FilePolicySource:
    """Policies from YAML files or directories of ``*.yaml``/``*.yml``, re-read when a file changes.

    A file that fails to parse gives one invalid entry keyed by its path, so the error is reported
    without hiding the other files' policies.
    """

    def __init__(self, paths: Sequence[Path | str], default_namespace: str = "default") -> None:
        self.paths = [Path(p) for p in paths]
        self.default_namespace = default_namespace
        self._cache: dict[Path, tuple[float, list[PolicyEntry]]] = {}

    def _files(self) -> list[Path]:
        files: list[Path] = []
        for path in self.paths:
            if path.is_dir():
                files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            else:
                files.append(path)
        return files

    def _read(self, path: Path) -> list[PolicyEntry]:
        try:
            loaded = load_policies(path)
        except ConfigError as exc:
            return [PolicyEntry(("", str(path)), None, str(exc), source=str(path))]
        entries = []
        for policy, doc in loaded:
            meta = doc.data.get("metadata") if isinstance(doc.data, dict) else None
            given = isinstance(meta, dict) and bool(meta.get("namespace"))
            if not given:
                policy = policy.model_copy(
                    update={
                        "metadata": policy.metadata.model_copy(update={"namespace": self.default_namespace})
                    }
                )
            entries.append(
                PolicyEntry((policy.metadata.namespace, policy.metadata.name), policy, source=str(path))
            )
        return entries

    def snapshot(self) -> dict[PolicyKey, PolicyEntry]:
        out: dict[PolicyKey, PolicyEntry] = {}
        for path in self._files():
            try:
                mtime = path.stat().st_mtime_ns
            except OSError as exc:
                out[("", str(path))] = PolicyEntry(
                    ("", str(path)), None, f"{path}: cannot read: {exc.strerror}", source=str(path)
                )
                continue
            cached = self._cache.get(path)
            if cached is None or cached[0] != mtime:
                cached = (mtime, self._read(path))
                self._cache[path] = cached
            for entry in cached[1]:
                out[entry.key] = entry
        return out

    def close(self) -> None:
        return None
