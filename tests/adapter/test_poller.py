"""Poll cadence and backoff: a pure function of the interval, the failures so far and a jitter draw."""

from __future__ import annotations

import asyncio

import pytest

from adapter.poller import Poller, next_delay
from adapter.samples import Sample
from adapter.selfmetrics import SelfMetrics
from adapter.store import SampleStore
from core.catalog import DEFAULT_CATALOG
from tests.helpers.scripted import ScriptedSource


@pytest.mark.parametrize(
    ("failures", "jitter", "expected"),
    [
        # healthy: keep the cadence, no jitter
        (0, 0.99, 2.0),
        # first failure: retry after one interval, spread by ±20%
        (1, 0.5, 2.0),
        (1, 0.0, 1.6),
        (1, 0.999999, 2.4),
        # then doubling
        (2, 0.5, 4.0),
        (3, 0.5, 8.0),
        # up to the ceiling, still jittered around it
        (10, 0.5, 30.0),
        (10, 0.0, 24.0),
    ],
)
def test_next_delay(failures: int, jitter: float, expected: float) -> None:
    assert next_delay(2.0, failures, 30.0, jitter) == pytest.approx(expected, rel=1e-5)


def test_backoff_never_exceeds_ceiling_plus_jitter() -> None:
    assert max(next_delay(2.0, n, 60.0, 0.999) for n in (*range(1, 200), 5000, 10**9)) <= 60.0 * 1.2


@pytest.mark.parametrize("steps", range(8))
async def test_stop_ends_the_poll_even_when_it_lands_as_a_collect_finishes(steps: int) -> None:
    # A collect that finishes at once: for one of these step counts the cancellation arrives in the very
    # loop iteration the collect completes, which Python 3.11's wait_for used to swallow.
    source = ScriptedSource("adhoc", ["trino_queued_queries"], poll_interval=0.001)
    source.answer = [Sample("trino_queued_queries", {}, 1.0)]
    store = SampleStore(DEFAULT_CATALOG)
    poller = Poller([source], store, SelfMetrics())
    poller.start()
    for _ in range(steps):
        await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await poller.stop()
    assert source.closed
