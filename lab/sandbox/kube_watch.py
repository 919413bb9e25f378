"""Watches: a bounded history of changes per resource type, and the chunked JSON-lines stream of
``{"type": ..., "object": ...}`` events kube-apiserver's watch cache serves.

Semantics kept from the watch cache: no ``resourceVersion`` (or "0") starts with a synthetic ADDED per
existing object; a given one resumes with the changes after it, or ends with an ERROR event carrying a
410 ``Expired`` Status once the history no longer reaches back that far; an object that stops matching
the selector arrives as DELETED (its previous state, at the change's version), one that starts matching
as ADDED; BOOKMARKs carry only the kind and a resourceVersion. Bookmarks as kube-apiserver v1.37 times them
(checked against it by tests/peers/test_kube_contract.py): one a minute and one about 2 s before
``timeoutSeconds`` ends, each only when the resource type moved past what the watch has seen, so a quiet
watch ends with no event at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from lab.sandbox.kube_errors import StatusError, bad_request, expired
from lab.sandbox.kube_selectors import Filter
from lab.sandbox.kube_types import TypeKey

Obj = dict[str, Any]

ADDED, MODIFIED, DELETED, BOOKMARK, ERROR = "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
DEFAULT_TIMEOUT_SECONDS = 1800.0
"""kube-apiserver closes a watch without timeoutSeconds after 30 to 60 minutes."""
PRE_TIMEOUT_BOOKMARKS = (2.0, 1.0)
"""Seconds before a watch's end at which a bookmark is due: the real server's watchers are due 2 s before
their deadline and dispatched on a 1 s tick, so one may go out twice (measured: at 9.6 s and 10.8 s of a
12 s watch)."""


@dataclass(frozen=True)
class Change:
    """One write: ``obj`` is the new state (for DELETED the last one, at the deletion's version)."""

    rv: int
    key: TypeKey
    type: str
    obj: Obj
    old: Obj | None = None


def _rv_of(obj: Obj) -> int:
    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(rv) if rv.isdigit() else 0


def as_event(change: Change, selected: Filter) -> tuple[str, Obj] | None:
    """The event a watcher with this filter sees for a change, or None."""
    if change.type == MODIFIED:
        now, before = selected.matches(change.obj), change.old is not None and selected.matches(change.old)
        if now:
            return (MODIFIED if before else ADDED), change.obj
        if before and change.old is not None:
            old = {**change.old, "metadata": {**change.old["metadata"], "resourceVersion": str(change.rv)}}
            return DELETED, old
        return None
    return (change.type, change.obj) if selected.matches(change.obj) else None


@dataclass
class _History:
    changes: deque[Change]
    compacted: int = 0
    """Changes up to this version are no longer kept."""


class WatchHub:
    """Change history per type and the queues of open watches."""

    def __init__(self, history: int) -> None:
        self._history_size = history
        self._history: dict[TypeKey, _History] = {}
        self._queues: dict[TypeKey, set[asyncio.Queue[Change | None]]] = {}
        self._latest: dict[TypeKey, int] = {}
        self._floor = 0
        self.closed = False

    def _for(self, key: TypeKey) -> _History:
        found = self._history.get(key)
        if found is None:
            found = self._history[key] = _History(deque())
        return found

    def publish(self, change: Change) -> None:
        history = self._for(change.key)
        history.changes.append(change)
        self._latest[change.key] = max(self._latest.get(change.key, 0), change.rv)
        while len(history.changes) > self._history_size:
            history.compacted = history.changes.popleft().rv
        for queue in self._queues.get(change.key, ()):
            queue.put_nowait(change)

    def latest(self, key: TypeKey) -> int:
        """The resourceVersion of the type's newest change (0: none yet), compacted or not."""
        return self._latest.get(key, 0)

    def since(self, key: TypeKey, rv: int) -> list[Change]:
        history = self._for(key)
        oldest = max(history.compacted, self._floor)
        if rv < oldest:
            raise expired(f"too old resource version: {rv} ({oldest})")
        return [c for c in history.changes if c.rv > rv]

    def compact(self, up_to: int) -> None:
        """Forget every change at or below ``up_to`` (etcd compaction), in every type."""
        self._floor = max(self._floor, up_to)
        for history in self._history.values():
            while history.changes and history.changes[0].rv <= up_to:
                history.changes.popleft()

    def subscribe(self, key: TypeKey) -> asyncio.Queue[Change | None]:
        self._for(key)
        queue: asyncio.Queue[Change | None] = asyncio.Queue()
        self._queues.setdefault(key, set()).add(queue)
        return queue

    def unsubscribe(self, key: TypeKey, queue: asyncio.Queue[Change | None]) -> None:
        self._queues.get(key, set()).discard(queue)

    def close(self) -> None:
        """End every open watch (server shutdown)."""
        self.closed = True
        for queues in self._queues.values():
            for queue in queues:
                queue.put_nowait(None)

    @property
    def watchers(self) -> int:
        return sum(len(q) for q in self._queues.values())


@dataclass
class WatchRequest:
    """The query parameters of one watch, already validated."""

    selected: Filter
    resource_version: int | None
    """None: start with the current objects."""
    timeout: float
    bookmarks: bool
    send_initial_events: bool


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def parse_watch(query: Any, selected: Filter) -> WatchRequest:
    raw_rv = query.get("resourceVersion", "")
    send_initial = _flag(query.get("sendInitialEvents"))
    bookmarks = _flag(query.get("allowWatchBookmarks"))
    if send_initial and (not bookmarks or query.get("resourceVersionMatch") != "NotOlderThan"):
        raise StatusError(
            422,
            "Invalid",
            "sendInitialEvents requires allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan",
        )
    rv: int | None = None
    if raw_rv not in ("", "0"):
        try:
            rv = int(raw_rv)
        except ValueError:
            raise bad_request(f"invalid resource version: {raw_rv!r}") from None
    timeout = DEFAULT_TIMEOUT_SECONDS
    if query.get("timeoutSeconds"):
        try:
            timeout = float(int(query["timeoutSeconds"]))
        except ValueError:
            raise bad_request(f"invalid timeoutSeconds: {query['timeoutSeconds']!r}") from None
    return WatchRequest(
        selected=selected,
        resource_version=None if send_initial else rv,
        timeout=timeout,
        bookmarks=bookmarks,
        send_initial_events=send_initial,
    )


@dataclass
class WatchStream:
    """Serves one watch; ``wire`` turns a stored object into what this request's type shows."""

    hub: WatchHub
    key: TypeKey
    kind: str
    api_version: str
    wire: Callable[[Obj], Obj]
    current: Callable[[], tuple[int, list[Obj]]]
    """The store's resourceVersion and the type's objects now."""
    bookmark_interval: float = 60.0
    poll: float = 0.25
    _sent: int = field(default=0, init=False)

    async def serve(self, request: web.Request, watch: WatchRequest) -> web.StreamResponse:
        queue = self.hub.subscribe(self.key)
        try:
            rv, objects = self.current()
            error: StatusError | None = None
            backlog: list[tuple[str, Obj]] = []
            if watch.resource_version is None:
                backlog = [(ADDED, obj) for obj in objects if watch.selected.matches(obj)]
            elif watch.resource_version > rv:
                raise StatusError(
                    504,
                    "Timeout",
                    f"Too large resource version: {watch.resource_version}, current: {rv}",
                    {
                        "causes": [
                            {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                        ]
                    },
                )
            else:
                try:
                    changes = self.hub.since(self.key, watch.resource_version)
                except StatusError as exc:
                    error = exc
                    changes = []
                backlog = [e for e in (as_event(c, watch.selected) for c in changes) if e is not None]
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            if error is not None:
                await self._write(response, ERROR, error.body())
                return await self._finish(response)
            await self._write_all(response, backlog)
            if watch.send_initial_events:
                await self._bookmark(response, rv, initial_end=True)
            seen = rv if watch.resource_version is None else watch.resource_version
            seen = max([seen, *(_rv_of(obj) for _, obj in backlog)])
            await self._follow(request, response, queue, watch, seen)
            return await self._finish(response)
        finally:
            self.hub.unsubscribe(self.key, queue)

    async def _follow(
        self,
        request: web.Request,
        response: web.StreamResponse,
        queue: asyncio.Queue[Change | None],
        watch: WatchRequest,
        seen: int,
    ) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + watch.timeout
        due = [deadline - before for before in PRE_TIMEOUT_BOOKMARKS if deadline - before > started]
        next_periodic = started + self.bookmark_interval
        while True:
            now = loop.time()
            if now >= deadline:
                return
            if now >= next_periodic:
                due.append(now)
                next_periodic = now + self.bookmark_interval
            if watch.bookmarks and queue.empty() and any(at <= now for at in due):
                due = [at for at in due if at > now]
                latest = self.hub.latest(self.key)
                # Nothing new in the type since what the watch has seen: the real server sends nothing.
                if latest > seen:
                    await self._bookmark(response, latest)
                    seen = latest
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            wait = min(deadline - now, self.poll)
            try:
                change = await asyncio.wait_for(queue.get(), timeout=wait)
            except TimeoutError:
                continue
            if change is None:
                return
            event = as_event(change, watch.selected)
            if event is not None:
                if not await self._write(response, *event):
                    return
                seen = max(seen, change.rv)

    async def _write_all(self, response: web.StreamResponse, events: Iterable[tuple[str, Obj]]) -> None:
        for event in events:
            await self._write(response, *event)

    async def _bookmark(self, response: web.StreamResponse, rv: int, *, initial_end: bool = False) -> None:
        meta: Obj = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        await self._write(
            response,
            BOOKMARK,
            {"kind": self.kind, "apiVersion": self.api_version, "metadata": meta},
            raw=True,
        )

    async def _write(self, response: web.StreamResponse, kind: str, obj: Obj, *, raw: bool = False) -> bool:
        shown = obj if raw or kind == ERROR else self.wire(obj)
        line = json.dumps({"type": kind, "object": shown}, separators=(",", ":")) + "\n"
        try:
            await response.write(line.encode())
        except (ConnectionResetError, RuntimeError):
            return False
        self._sent += 1
        return True

    async def _finish(self, response: web.StreamResponse) -> web.StreamResponse:
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response
