"""A source whose next answer the test sets: it exercises the poller, store and server, not a backend."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from adapter.samples import Sample
from adapter.sources.base import SourceSettings


class ScriptedSource:
    def __init__(
        self,
        name: str,
        metrics: Sequence[str],
        *,
        identity: Mapping[str, str] | None = None,
        namespaces: Sequence[str] = (),
        poll_interval: float = 0.05,
        max_age: float | None = None,
        timeout: float = 1.0,
    ) -> None:
        self._settings = SourceSettings(
            name=name,
            poll_interval_seconds=poll_interval,
            max_age_seconds=max_age,
            timeout_seconds=timeout,
            namespaces=list(namespaces),
            backoff_max_seconds=poll_interval * 4,
        )
        self._identity = dict(identity if identity is not None else {"cluster": name})
        self._metrics = list(metrics)
        self.answer: list[Sample] | Exception = []
        self.hang = False
        self.calls = 0
        self.closed = False

    @property
    def settings(self) -> SourceSettings:
        return self._settings

    def identity(self) -> Mapping[str, str]:
        return self._identity

    def served_metrics(self) -> Sequence[str]:
        return self._metrics

    async def collect(self, now: float) -> list[Sample]:
        self.calls += 1
        if self.hang:
            await asyncio.sleep(3600)
        if isinstance(self.answer, Exception):
            raise self.answer
        return list(self.answer)

    async def close(self) -> None:
        self.closed = True
