"""Callbacks on pod lifecycle, so a world can start or stop the process that stands for each pod (a
Trino worker, a Spark worker) as the sandbox's simulated cluster adds and removes pods."""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from lab.sandbox.kube_pods import is_ready
from lab.sandbox.kube_types import PODS
from lab.sandbox.kube_watch import ADDED, DELETED, MODIFIED, Change

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PodHook = Callable[[Obj], Awaitable[None] | None]
"""Called with a copy of the pod; a coroutine it returns runs as a task of its own."""


class PodHooks:
    """Runs the hooks of pod changes: added (created), ready (Ready turned True), terminating
    (deletionTimestamp set) and removed (gone from the API)."""

    def __init__(
        self,
        added: list[PodHook],
        ready: list[PodHook],
        terminating: list[PodHook],
        removed: list[PodHook],
    ) -> None:
        self.added, self.ready, self.terminating, self.removed = added, ready, terminating, removed
        self._tasks: set[asyncio.Task[None]] = set()

    def on_change(self, change: Change) -> None:
        """A store listener."""
        if change.key != PODS.key:
            return
        hooks: list[PodHook] = []
        old = change.old
        if change.type == ADDED:
            hooks = [*self.added, *(self.ready if is_ready(change.obj) else [])]
        elif change.type == MODIFIED and old is not None:
            if is_ready(change.obj) and not is_ready(old):
                hooks = list(self.ready)
            if change.obj["metadata"].get("deletionTimestamp") and not old["metadata"].get(
                "deletionTimestamp"
            ):
                hooks += self.terminating
        elif change.type == DELETED:
            hooks = list(self.removed)
        for hook in hooks:
            self._run(hook, copy.deepcopy(change.obj))

    def _run(self, hook: PodHook, pod: Obj) -> None:
        try:
            result = hook(pod)
        except Exception:
            log.exception("sandbox pod hook %r failed for %s", hook, pod["metadata"]["name"])
            return
        if result is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if inspect.iscoroutine(result):
                result.close()
            log.error("sandbox pod hook %r returned an awaitable outside an event loop", hook)
            return
        task = loop.create_task(_await(result))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sandbox pod hook failed", exc_info=task.exception())

    async def settle(self) -> None:
        """Wait for the hook tasks started so far (and those they lead to)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def _await(awaitable: Awaitable[None]) -> None:
    await awaitable
