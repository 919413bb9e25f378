"""The mean and t-interval helper the benchmarks report seeds with."""

from __future__ import annotations

import math

import pytest

from autoscaler.sim.stats import MeanInterval, mean_interval, t_critical

# Two-sided critical values of Student's t from the printed tables (df: 95 %, 99 %).
TABLE = {
    1: (12.706, 63.657),
    2: (4.303, 9.925),
    4: (2.776, 4.604),
    5: (2.571, 4.032),
    9: (2.262, 3.250),
    30: (2.042, 2.750),
    120: (1.980, 2.617),
}


@pytest.mark.parametrize("df", sorted(TABLE))
def test_t_critical_matches_the_tables(df: int) -> None:
    at95, at99 = TABLE[df]
    assert t_critical(0.95, df) == pytest.approx(at95, abs=6e-4)
    assert t_critical(0.99, df) == pytest.approx(at99, abs=6e-4)


def test_t_critical_tends_to_the_normal_quantile() -> None:
    assert t_critical(0.95, 100_000) == pytest.approx(1.959964, abs=1e-4)


def test_interval_of_five_values_by_hand() -> None:
    # Mean 3, sample standard deviation sqrt(2.5), t(4) = 2.7764: half-width 2.7764 × sqrt(2.5 / 5).
    found = mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert found.mean == 3.0
    assert found.n == 5
    half = 2.776445 * math.sqrt(0.5)
    assert found.half_width == pytest.approx(half, rel=1e-5)
    assert found.low == pytest.approx(3.0 - half, rel=1e-5)
    assert found.high == pytest.approx(3.0 + half, rel=1e-5)
    assert found.format() == "3.00 ± 1.96"


def test_equal_values_have_a_zero_width_interval() -> None:
    assert mean_interval([0.8, 0.8, 0.8]).half_width == pytest.approx(0.0, abs=1e-12)


def test_fewer_than_two_values_give_no_interval() -> None:
    one = mean_interval([0.7])
    assert one == MeanInterval(0.7, 1, None)
    assert (one.low, one.high) == (None, None)
    assert one.format() == "0.70"


def test_a_wider_confidence_gives_a_wider_interval() -> None:
    values = [0.9, 1.1, 1.0, 1.3]
    narrow, wide = mean_interval(values, 0.9), mean_interval(values, 0.99)
    assert narrow.half_width is not None
    assert wide.half_width is not None
    assert narrow.half_width < wide.half_width


@pytest.mark.parametrize(
    ("values", "confidence", "complaint"),
    [
        ([], 0.95, "no values"),
        ([1.0, math.nan], 0.95, "finite"),
        ([1.0, 2.0], 1.0, "confidence"),
        ([1.0, 2.0], 0.0, "confidence"),
    ],
)
def test_bad_input_is_refused(values: list[float], confidence: float, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        mean_interval(values, confidence)


def test_t_critical_needs_a_degree_of_freedom() -> None:
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_critical(0.95, 0)
