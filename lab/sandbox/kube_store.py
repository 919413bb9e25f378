"""The sandbox's object store: one resourceVersion counter for everything (like etcd's revision),
objects replaced whole on every write so watch history can keep references, and listeners that
the simulated controllers use to react to writes."""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable
from typing import Any

from lab.sandbox.kube_types import ResourceType, TypeKey, rfc3339
from lab.sandbox.kube_watch import ADDED, DELETED, MODIFIED, Change, WatchHub

Obj = dict[str, Any]
Listener = Callable[[Change], None]


class ObjectStore:
    """Objects by type and (namespace, name); namespace is "" for cluster-scoped ones.

    Stored objects are never changed in place: read them freely, copy before editing.
    """

    def __init__(self, clock: Callable[[], float], *, seed: int = 0, history: int = 1000) -> None:
        self.clock = clock
        self.rng = random.Random(seed)
        self.types: dict[TypeKey, ResourceType] = {}
        self._objects: dict[TypeKey, dict[tuple[str, str], Obj]] = {}
        self.resource_version = 0
        self.hub = WatchHub(history)
        self.listeners: list[Listener] = []

    def register(self, rt: ResourceType) -> None:
        self.types[rt.key] = rt
        self._objects.setdefault(rt.storage_key, {})

    def new_uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def get(self, key: TypeKey, namespace: str | None, name: str) -> Obj | None:
        return self._objects.get(key, {}).get((namespace or "", name))

    def items(self, key: TypeKey, namespace: str | None = None) -> list[Obj]:
        """Objects sorted by namespace and name, like etcd's key order."""
        store = self._objects.get(key, {})
        # Pick the namespace's keys before sorting: a list in one namespace of a large store stays cheap.
        keys = sorted(k for k in store if namespace is None or k[0] == namespace)
        return [store[k] for k in keys]

    def create(self, key: TypeKey, obj: Obj) -> Obj:
        stored = copy.deepcopy(obj)
        meta = stored.setdefault("metadata", {})
        meta.setdefault("uid", self.new_uid())
        meta.setdefault("creationTimestamp", rfc3339(self.clock()))
        return self._write(key, stored, ADDED, None)

    def update(self, key: TypeKey, obj: Obj) -> Obj:
        stored = copy.deepcopy(obj)
        meta = stored["metadata"]
        old = self.get(key, meta.get("namespace"), meta["name"])
        if old is None:
            raise KeyError(f"{key} {meta.get('namespace')}/{meta['name']} does not exist")
        return self._write(key, stored, MODIFIED, old)

    def remove(self, key: TypeKey, namespace: str | None, name: str) -> Obj | None:
        old = self._objects.get(key, {}).pop((namespace or "", name), None)
        if old is None:
            return None
        self.resource_version += 1
        gone = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self.resource_version)}}
        self._publish(Change(self.resource_version, key, DELETED, gone, old))
        return gone

    def _write(self, key: TypeKey, stored: Obj, kind: str, old: Obj | None) -> Obj:
        self.resource_version += 1
        meta = stored["metadata"]
        meta["resourceVersion"] = str(self.resource_version)
        self._objects.setdefault(key, {})[(meta.get("namespace") or "", meta["name"])] = stored
        self._publish(Change(self.resource_version, key, kind, stored, old))
        return stored

    def _publish(self, change: Change) -> None:
        self.hub.publish(change)
        for listener in list(self.listeners):
            listener(change)
