"""An informer cache: one namespaced resource kind kept in memory by list + watch, like client-go's informers.

Each namespace asked for gets a daemon thread that LISTs it once, then follows a watch from the list's
resourceVersion, resuming from the last version seen (bookmarks included) whenever the server ends the watch
normally. An ERROR event (410 Expired or other), a broken stream or a refused connection marks the namespace
not synced, waits ``retry_seconds`` and lists again; the new list replaces the namespace's contents wholesale.

Reads come from memory: ``get`` by name, ``list`` by label selector through an index of (label, value) →
names, so the common equality selector costs a set intersection instead of a scan of the namespace.

Read-your-writes: :meth:`Informer.written` puts the API's answer to a write in the cache at once, and events
or lists older than it (by resourceVersion, compared as integers as client-go's MutationCache does) do not
roll it back; :meth:`Informer.deleted` drops an object the controller deleted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import kubernetes.watch
import urllib3

from autoscaler.controller.kube_api import Gone, KubeError, translated
from core.selectors import Operator, Selector

__all__ = ["Informer"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

_LIST_TIMEOUT_SECONDS = 60.0
"""A LIST that has not answered by then is abandoned and retried."""
_CONNECT_TIMEOUT_SECONDS = 10.0
_READ_SLACK_SECONDS = 30.0
"""The server ends a watch at timeoutSeconds; a read silent for this much longer means a dead connection."""
_SHORT_WATCH_SECONDS = 1.0
"""A watch ended normally this soon without a single event is treated as failing (client-go's "very short
watch"), so a server or proxy that closes watches at once cannot make the thread spin."""
_JOIN_SECONDS = 5.0
_INDEXED = frozenset({Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN})


class _Closing(Exception):
    """The informer is closing: leave the thread quietly."""


class _ShortWatch(Exception):
    pass


class _JsonWatch(kubernetes.watch.Watch):
    """The official client's watch, with events carrying the objects as plain dicts, never models.

    Overriding ``unmarshal_event`` instead of passing ``deserialize=False`` keeps the client's handling of
    ERROR events, which ``deserialize=False`` breaks in kubernetes 37.0.2 (it reads an absent
    ``raw_object`` key and raises KeyError instead of the client's ApiException).
    """

    def unmarshal_event(self, data: str, return_type: Any) -> Obj | None:
        if not data or data.isspace():
            return None
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            return None
        if not isinstance(event, dict):
            return None
        event["raw_object"] = event.get("object")
        return event


def _int_rv(obj: Obj | None) -> int | None:
    if obj is None:
        return None
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    return int(rv) if isinstance(rv, str) and rv.isdigit() else None


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _labels(obj: Obj) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


@dataclass(frozen=True, slots=True)
class _Mark:
    """The controller's own write (``gone`` False) or delete of one object, at resourceVersion ``rv``
    (None: not an integer, so the next event or list wins)."""

    rv: int | None
    gone: bool

    def overtaken_by(self, rv: int | None) -> bool:
        """True when a change at ``rv`` is at least as new as this mark (a delete needs a newer one)."""
        if self.rv is None or rv is None:
            return True
        return rv > self.rv if self.gone else rv >= self.rv


@dataclass(slots=True)
class _Contents:
    """One namespace's objects by name and the label index over them; mutated under the informer's lock."""

    objects: dict[str, Obj] = field(default_factory=dict)
    index: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def put(self, name: str, obj: Obj) -> None:
        old = self.objects.get(name)
        self.objects[name] = obj
        new_labels = _labels(obj)
        old_labels = _labels(old) if old is not None else {}
        if new_labels == old_labels and old is not None:
            return
        self._unindex(name, old_labels)
        for pair in new_labels.items():
            self.index.setdefault(pair, set()).add(name)

    def remove(self, name: str) -> None:
        old = self.objects.pop(name, None)
        if old is not None:
            self._unindex(name, _labels(old))

    def _unindex(self, name: str, labels: dict[str, str]) -> None:
        for pair in labels.items():
            names = self.index.get(pair)
            if names is not None:
                names.discard(name)
                if not names:
                    del self.index[pair]


@dataclass(slots=True)
class _Space:
    contents: _Contents = field(default_factory=_Contents)
    marks: dict[str, _Mark] = field(default_factory=dict)
    synced: bool = False
    failures: int = 0
    """Failed attempts since a watch last delivered an event or ended normally."""
    thread: threading.Thread | None = None
    watch: _JsonWatch | None = None


class Informer:
    """Objects of one namespaced resource kind, per namespace, kept current by list + watch on a daemon
    thread per namespace; JSON form (dicts as the API server sent them), never client models.

    The dicts handed out are the cache's own: callers must not mutate them.
    """

    def __init__(
        self,
        list_func: Callable[..., Any],
        *,
        resource: str,
        watch_timeout_seconds: int = 300,
        retry_seconds: float = 1.0,
    ) -> None:
        self._list_func = list_func
        self.resource = resource
        self.watch_timeout = watch_timeout_seconds
        self.retry = retry_seconds
        self._lock = threading.Lock()
        self._spaces: dict[str, _Space] = {}
        self._closing = threading.Event()

    # ----- reads (the event loop) -----

    def ensure(self, namespace: str) -> None:
        """Start list + watch for the namespace unless already started (or closed)."""
        if namespace in self._spaces:
            return
        with self._lock:
            if namespace in self._spaces or self._closing.is_set():
                return
            space = self._spaces[namespace] = _Space()
            space.thread = threading.Thread(
                target=self._run,
                args=(namespace, space),
                name=f"informer {self.resource} {namespace}",
                daemon=True,
            )
            space.thread.start()

    def synced(self, namespace: str) -> bool:
        """True from when a list has landed until the watch after it fails (then False until a relist)."""
        space = self._spaces.get(namespace)
        return space is not None and space.synced

    async def wait_synced(self, namespace: str, timeout_seconds: float) -> bool:
        """:meth:`ensure`, then wait until synced; False when ``timeout_seconds`` passed first."""
        self.ensure(namespace)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        while not self.synced(namespace):
            left = deadline - loop.time()
            if left <= 0:
                return False
            await asyncio.sleep(min(0.01, left))
        return True

    def namespaces(self) -> list[str]:
        """The namespaces asked for so far (synced or not)."""
        return sorted(self._spaces)

    def get(self, namespace: str, name: str) -> Obj | None:
        space = self._spaces.get(namespace)
        if space is None:
            return None
        with self._lock:
            return space.contents.objects.get(name)

    def list(self, namespace: str, selector: Selector | None = None) -> list[Obj]:
        """The objects the label selector matches, by name.

        Requirements that name values (``=``, ``==``, ``in``) are answered from the label index, smallest
        first; only the other requirements (``!=``, ``notin``, exists, ``<``, ``>``) are checked object by
        object on what is left. The objects are the cache's own: do not mutate them."""
        space = self._spaces.get(namespace)
        if space is None:
            return []
        requirements = selector.requirements if selector is not None else ()
        indexed = [r for r in requirements if r.operator in _INDEXED]
        with self._lock:
            contents = space.contents
            objects = contents.objects
            names: Iterable[str] = objects
            if indexed:
                # Per requirement, the index's sets of its values (any of them will do); the smallest
                # requirement gives the candidates, the others only filter them.
                groups: list[list[set[str]]] = []
                for r in indexed:
                    found = [hit for v in r.values if (hit := contents.index.get((r.key, v)))]
                    if not found:
                        return []
                    groups.append(found)
                groups.sort(key=lambda g: sum(map(len, g)))
                first, *rest = groups
                candidates = first[0] if len(first) == 1 else set().union(*first)
                for group in rest:
                    if len(group) == 1:
                        candidates = candidates & group[0]
                    else:
                        candidates = {n for n in candidates if any(n in hit for hit in group)}
                names = candidates
            if selector is None or len(indexed) == len(requirements):
                return [objects[n] for n in sorted(names)]
            return [objects[n] for n in sorted(names) if selector.matches(_labels(objects[n]))]

    # ----- the controller's own writes -----

    def written(self, obj: Obj) -> None:
        """An object the controller just wrote, as the API answered: cached now unless the cache already
        holds a newer version; later events and lists replace it only once they are at least as new."""
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        space = self._spaces.get(namespace)
        if space is None or not name:
            return
        rv = _int_rv(obj)
        with self._lock:
            mark = space.marks.get(name)
            known = mark.rv if mark is not None else _int_rv(space.contents.objects.get(name))
            if rv is not None and known is not None and rv <= known:
                return
            space.marks[name] = _Mark(rv, gone=False)
            space.contents.put(name, obj)

    def deleted(self, namespace: str, name: str) -> None:
        """The controller deleted it: drop it now; events no newer than the cached version cannot bring
        it back (the watch's DELETED, or a newer change, comes through)."""
        space = self._spaces.get(namespace)
        if space is None:
            return
        with self._lock:
            current = space.contents.objects.get(name)
            if current is None:
                return
            space.marks[name] = _Mark(_int_rv(current), gone=True)
            space.contents.remove(name)

    def close(self) -> None:
        """Stop every watch and join the threads, blocking for at most a few seconds (call it off an event
        loop that serves the API server itself, as tests do). Reads keep answering from the last contents."""
        with self._lock:
            self._closing.set()
            spaces = list(self._spaces.values())
        deadline = time.monotonic() + _JOIN_SECONDS
        for space in spaces:
            thread = space.thread
            while thread is not None and thread.is_alive() and time.monotonic() < deadline:
                # Stopped again while alive: a stop that lands before the watch's request is open is
                # forgotten by the client when the stream starts.
                watch = space.watch
                if watch is not None:
                    watch.stop()  # type: ignore[no-untyped-call]
                thread.join(timeout=0.05)

    # ----- the namespace's thread -----

    def _run(self, namespace: str, space: _Space) -> None:
        while not self._closing.is_set():
            try:
                with translated():
                    version = self._relist(namespace, space)
                    while True:
                        version = self._watch(namespace, space, version)
            except _Closing:
                return
            except Exception as exc:
                if self._closing.is_set():
                    # The stream torn down by close(): expected, not worth a log line.
                    return
                space.synced = False
                self._report(namespace, exc, space.failures)
                space.failures += 1
            self._closing.wait(self.retry)

    def _working(self, namespace: str, space: _Space) -> None:
        if space.failures:
            log.info("%s in %s: watching again after %d failures", self.resource, namespace, space.failures)
            space.failures = 0

    def _report(self, namespace: str, exc: Exception, failures: int) -> None:
        # The first failure of a streak is a warning; the retries after it stay at debug until a watch
        # works again, so an API server that is down (or a watch that is refused) does not flood the log.
        level = logging.WARNING if failures == 0 else logging.DEBUG
        where = f"{self.resource} in {namespace}"
        if isinstance(exc, KubeError):
            if isinstance(exc, Gone):
                level = logging.INFO if failures == 0 else logging.DEBUG
            log.log(level, "%s: list/watch failed: %s; listing again", where, exc.brief)
        elif isinstance(exc, _ShortWatch):
            log.log(level, "%s: the server ended the watch at once; listing again", where)
        elif isinstance(exc, urllib3.exceptions.HTTPError):
            log.log(level, "%s: list/watch broke: %s; listing again", where, exc)
        elif failures == 0:
            log.exception("%s: list/watch failed; listing again", where)
        else:
            log.debug("%s: list/watch failed again: %r", where, exc)

    def _relist(self, namespace: str, space: _Space) -> str:
        space.synced = False
        response = self._list_func(
            namespace,
            _preload_content=False,
            _request_timeout=(_CONNECT_TIMEOUT_SECONDS, _LIST_TIMEOUT_SECONDS),
        )
        try:
            listed = json.loads(response.data or b"null")
        finally:
            response.release_conn()
        if not isinstance(listed, dict):
            raise ValueError(f"the list of {self.resource} in {namespace} is not an object")
        version = str((listed.get("metadata") or {}).get("resourceVersion") or "")
        list_kind = str(listed.get("kind") or "")
        kind = list_kind.removesuffix("List") if list_kind.endswith("List") else ""
        api_version = listed.get("apiVersion")
        fresh = _Contents()
        for item in listed.get("items") or []:
            if isinstance(item, dict):
                # List items come without kind and apiVersion; watch events carry them: same shape either way.
                if kind:
                    item.setdefault("kind", kind)
                if api_version:
                    item.setdefault("apiVersion", api_version)
                fresh.put(_name(item), item)
        list_rv = int(version) if version.isdigit() else None
        with self._lock:
            for name, mark in list(space.marks.items()):
                if mark.overtaken_by(list_rv):
                    del space.marks[name]
                elif mark.gone:
                    fresh.remove(name)
                else:
                    ours = space.contents.objects.get(name)
                    if ours is not None:
                        fresh.put(name, ours)
            space.contents = fresh
            space.synced = True
        return version

    def _watch(self, namespace: str, space: _Space, version: str) -> str:
        """Follow one watch from ``version``; the last version seen when the server ends it normally."""
        w = _JsonWatch()  # type: ignore[no-untyped-call]
        with self._lock:
            if self._closing.is_set():
                raise _Closing
            space.watch = w
        started = time.monotonic()
        seen = 0
        try:
            events: Iterator[Obj | None] = w.stream(  # type: ignore[no-untyped-call]
                self._list_func,
                namespace,
                resource_version=version,
                timeout_seconds=self.watch_timeout,
                allow_watch_bookmarks=True,
                _request_timeout=(_CONNECT_TIMEOUT_SECONDS, self.watch_timeout + _READ_SLACK_SECONDS),
            )
            for event in events:
                if self._closing.is_set():
                    raise _Closing
                if event is None:
                    continue
                if not seen:
                    self._working(namespace, space)
                seen += 1
                obj = event.get("object")
                if not isinstance(obj, dict):
                    continue
                kind = event.get("type")
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._apply(space, kind, obj)
                if rv:
                    version = rv
        finally:
            w.stop()  # type: ignore[no-untyped-call]
            with self._lock:
                if space.watch is w:
                    space.watch = None
        if self._closing.is_set():
            raise _Closing
        if seen == 0 and time.monotonic() - started < min(_SHORT_WATCH_SECONDS, self.watch_timeout / 2):
            raise _ShortWatch
        self._working(namespace, space)
        return version

    def _apply(self, space: _Space, kind: str, obj: Obj) -> None:
        name = _name(obj)
        with self._lock:
            mark = space.marks.get(name)
            if mark is not None:
                if not mark.overtaken_by(_int_rv(obj)):
                    return  # older than the controller's own write or delete
                del space.marks[name]
            if kind == "DELETED":
                space.contents.remove(name)
            else:
                space.contents.put(name, obj)
