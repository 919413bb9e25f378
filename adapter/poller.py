"""Polls every source in the background, one task per source, so no request ever waits on a backend."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence

from adapter.samples import Collection
from adapter.selfmetrics import SelfMetrics
from adapter.sources.base import Source
from adapter.store import SampleStore
from core.errors import SourceError

log = logging.getLogger(__name__)


def next_delay(
    interval: float, failures: int, ceiling: float, jitter: float, *, within: float = math.inf
) -> float:
    """Seconds to wait before the next poll.

    Healthy sources keep their cadence; after ``failures`` consecutive failures the wait doubles up to
    ``ceiling``. ``jitter`` in [0, 1) spreads it by ±20% so adapters restarted together do not retry in
    lockstep against a backend that is just coming back. The wait never passes ``within`` (the source's
    freshness bound): a backend that recovers is read again before its metrics would have gone stale,
    instead of up to a jittered ceiling (72 s by default) later.
    """
    if failures <= 0:
        return interval
    # The exponent is capped: a source down for days must not overflow the float.
    base = min(ceiling, interval * 2.0 ** min(failures - 1, 64))
    return min(within, base * (0.8 + 0.4 * jitter))


class Poller:
    def __init__(
        self,
        sources: Sequence[Source],
        store: SampleStore,
        metrics: SelfMetrics,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.sources = list(sources)
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self._rng = rng or random.Random()
        self._tasks: list[asyncio.Task[None]] = []
        for source in self.sources:
            s = source.settings
            store.register(
                s.name,
                identity=source.identity(),
                metrics=source.served_metrics(),
                namespaces=s.namespaces,
                max_age=s.max_age,
            )

    async def poll_once(self, source: Source) -> bool:
        """One poll of ``source`` into the store; True when it succeeded."""
        name = source.settings.name
        started = self.clock()
        t0 = time.perf_counter()
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation that lands as the
            # collect finishes, and the poll task then outlived stop() (the adapter hung on shutdown).
            async with asyncio.timeout(source.settings.timeout_seconds):
                samples = await source.collect(started)
        except (SourceError, TimeoutError) as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else "error"
            message = str(exc) or f"no answer within {source.settings.timeout_seconds:g}s"
            log.warning("source %s poll failed: %s", name, message)
            self.store.fail(name, message)
            self.metrics.poll_failed(name, reason, time.perf_counter() - t0)
            return False
        except Exception as exc:
            # A bug in one source must not take the others down: report it loudly and keep polling.
            log.exception("source %s poll raised unexpectedly", name)
            self.store.fail(name, f"unexpected {exc.__class__.__name__}")
            self.metrics.poll_failed(name, "bug", time.perf_counter() - t0)
            return False
        # The start time is the conservative age: the data is at least this old.
        self.store.put(Collection(source=name, collected_at=started, samples=tuple(samples)))
        self.metrics.poll_succeeded(name, time.perf_counter() - t0)
        return True

    async def _run(self, source: Source) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        s = source.settings
        while True:
            started = loop.time()
            ok = await self.poll_once(source)
            failures = 0 if ok else failures + 1
            delay = next_delay(
                s.poll_interval_seconds, failures, s.backoff_max_seconds, self._rng.random(), within=s.max_age
            )
            await asyncio.sleep(max(0.0, started + delay - loop.time()))

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(source), name=f"poll-{source.settings.name}")
            for source in self.sources
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for source in self.sources:
            await source.close()


class PollerThread:
    """Runs a :class:`Poller` on an event loop of its own thread.

    Parsing a large answer (a big ``/metrics`` page, thousands of Spark stages) is CPU work; on the
    serving loop it would stall every request meanwhile. The store is shared: a collection is swapped
    in by plain attribute assignment, which readers see whole.
    """

    def __init__(self, poller: Poller) -> None:
        self.poller = poller
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="queuescale-poller", daemon=True)
        self._thread.start()
        self._started.wait()

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.poller.start()
        self._started.set()
        await self._stop.wait()
        await self.poller.stop()

    async def stop(self) -> None:
        if self._thread is None or self._loop is None or self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join)
        self._thread = None
