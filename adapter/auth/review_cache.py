"""Answers of kube-apiserver's review APIs (TokenReview, SubjectAccessReview), reused for a while.

A delegating server asks kube-apiserver who a caller is and what it may do; asking on every request
would put the API server on the adapter's request path. Answers are kept for ``ttl_seconds`` (upstream's
delegating defaults are 10 s), at most ``max_entries`` of them (least recently used go; an entry is a
fixed-size key and a small answer), and concurrent identical questions share one call.
A call that fails is never kept: the next request asks again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class ReviewCache(Generic[T]):
    def __init__(
        self,
        ttl_seconds: float = 10.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._answers: OrderedDict[Hashable, tuple[float, T]] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Task[T]] = {}

    def __len__(self) -> int:
        return len(self._answers)

    async def get(self, key: Hashable, ask: Callable[[], T]) -> T:
        """The kept answer for ``key``, else ``ask()`` run in a thread (it blocks on I/O)."""
        answer = self._kept(key)
        if answer is not None:
            return answer
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._ask(key, ask))
            task.add_done_callback(_consume)
            self._inflight[key] = task
        # Shielded: one waiter going away must not cancel the call the others wait for.
        return await asyncio.shield(task)

    def _kept(self, key: Hashable) -> T | None:
        entry = self._answers.get(key)
        if entry is None:
            return None
        expires, answer = entry
        if self._clock() >= expires:
            del self._answers[key]
            return None
        self._answers.move_to_end(key)
        return answer

    async def _ask(self, key: Hashable, ask: Callable[[], T]) -> T:
        try:
            answer = await asyncio.to_thread(ask)
        finally:
            self._inflight.pop(key, None)
        if self.ttl_seconds > 0:
            self._answers[key] = (self._clock() + self.ttl_seconds, answer)
            self._answers.move_to_end(key)
            while len(self._answers) > self.max_entries:
                self._answers.popitem(last=False)
        return answer


def _consume(task: asyncio.Task[T]) -> None:
    # When every waiter went away the failure is already logged: do not let asyncio log it again.
    if not task.cancelled():
        task.exception()
