"""Backend answers are capped, streamed and parsed off the polling loop (issue 11, the probe's case 3).

The probe served a 100 MB Trino ``/metrics``: the adapter read it whole (RSS 1.2 GB) and parsed it on the
one polling thread, so healthy sources' metrics answered 503 in half the checks. Now a body past the
source's ``max_response_bytes`` fails that source's poll as soon as the cap is passed (the rest is never
read), and the other sources keep their cadence.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from adapter.poller import Poller, next_delay
from adapter.samples import Sample
from adapter.selfmetrics import SelfMetrics
from adapter.sources.base import Source
from adapter.sources.prometheus import PrometheusSettings, PrometheusSource
from adapter.sources.spark import SparkSettings, SparkSource
from adapter.sources.trino import TrinoSettings, TrinoSource
from adapter.store import SampleStore
from core.catalog import DEFAULT_CATALOG
from core.errors import SourceError
from lab.sandbox.serve import serve
from tests.helpers.scripted import ScriptedSource

MIB = 1 << 20
CHUNK = b"# padding " + b"x" * 1013 + b"\n"  # 1 KiB of OpenMetrics comment


@dataclass
class Huge:
    """A backend that answers every GET with ``size`` bytes, streamed, and counts what it got to send."""

    size: int
    declare_length: bool = False
    sent: list[int] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        if self.declare_length:
            response.content_length = self.size
        await response.prepare(request)
        sent = 0
        try:
            while sent < self.size:
                await response.write(CHUNK * 64)
                sent += len(CHUNK) * 64
        except (ConnectionError, asyncio.CancelledError):
            self.sent.append(sent)
            self.finished.append(False)
            raise
        self.sent.append(sent)
        self.finished.append(True)
        return response


@contextlib.asynccontextmanager
async def serving(huge: Huge) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/{tail:.*}", huge.handle)
    served = await serve(app)
    try:
        yield served.url
    finally:
        await served.stop()


def trino(url: str) -> Source:
    return TrinoSource(
        TrinoSettings.model_validate({"name": "adhoc", "endpoint": {"url": url}, "max_response_bytes": MIB})
    )


def spark(url: str) -> Source:
    return SparkSource(
        SparkSettings.model_validate({"name": "etl", "master": {"url": url}, "max_response_bytes": MIB}),
        None,
    )


def prometheus(url: str) -> Source:
    return PrometheusSource(
        PrometheusSettings.model_validate(
            {"name": "prom", "endpoint": {"url": url}, "presets": ["trino"], "max_response_bytes": MIB}
        )
    )


@pytest.mark.parametrize("make", [trino, spark, prometheus], ids=["trino", "spark", "prometheus"])
@pytest.mark.parametrize("declare_length", [False, True], ids=["streamed", "content-length"])
async def test_a_body_over_the_cap_fails_the_poll_without_being_read(make: Any, declare_length: bool) -> None:
    huge = Huge(100 * MIB, declare_length=declare_length)
    async with serving(huge) as url:
        source = make(url)
        try:
            with pytest.raises(SourceError, match=r"max_response_bytes \(1048576"):
                await source.collect(0.0)
        finally:
            await source.close()
    # The reader hung up long before the end: never more than a few MiB of the 100 left the server.
    assert huge.finished
    assert not any(huge.finished)
    assert max(huge.sent) < 16 * MIB


async def test_a_huge_backend_does_not_stall_the_others() -> None:
    # Under the cap: every byte is read and parsed, on a worker thread.
    huge = Huge(48 * MIB)
    healthy = ScriptedSource("healthy", ["trino_queued_queries"], poll_interval=0.05)
    healthy.answer = [Sample("trino_queued_queries", {}, 1.0)]
    async with serving(huge) as url:
        big = TrinoSource(
            TrinoSettings.model_validate(
                {
                    "name": "big",
                    "endpoint": {"url": url},
                    "max_response_bytes": 64 * MIB,
                    "timeout_seconds": 30,
                }
            )
        )
        store = SampleStore(DEFAULT_CATALOG)
        poller = Poller([big, healthy], store, SelfMetrics())
        poller.start()
        try:
            await asyncio.sleep(0.5)
            before = healthy.calls
            await asyncio.sleep(2.0)
            during = healthy.calls - before
        finally:
            await poller.stop()
    # The big one read and parsed 48 MiB meanwhile; the healthy one kept polling every 50 ms or so.
    assert huge.sent
    assert huge.finished[0]
    assert during >= 10


@pytest.mark.parametrize(
    ("failures", "max_age", "expected"),
    [
        # the probe: after an outage the default backoff (60 s, jittered to 72 s) left a recovered
        # source unread for ~70 s while its freshness bound is 10 s
        (10, 10.0, 10.0),
        (3, 10.0, 8.0 * 1.2),
        (0, 10.0, 2.0),
    ],
)
def test_backoff_stays_within_the_freshness_bound(failures: int, max_age: float, expected: float) -> None:
    assert next_delay(2.0, failures, 60.0, 0.999999, within=max_age) == pytest.approx(min(expected, max_age))
