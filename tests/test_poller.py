"""Poll cadence and backoff: a pure function of the interval, the failures so far and a jitter draw."""

from __future__ import annotations

import pytest

from adapter.poller import next_delay


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
