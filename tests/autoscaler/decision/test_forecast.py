"""Seasonal forecasting and its back-test (autoscaler.decision.forecast)."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from autoscaler.decision.forecast import (
    HoltWintersModel,
    Method,
    NotEnoughHistory,
    asymmetric_error,
    backtest,
    fit,
    forecast_peak,
    season_steps,
)

TRACES = Path("/work/shared/data/traces")
STEP = 300.0
DAY = 86_400.0
WEEK = 7 * DAY
PER_DAY = int(DAY / STEP)
METHODS: tuple[Method, ...] = ("holt_winters", "fft")


def daily_sine(
    days: int, seed: int, noise: float = 4.0, weekly: float = 0.0, extra_steps: int = 0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(days * PER_DAY + extra_steps, dtype=np.float64)
    day_phase = 2 * np.pi * t / PER_DAY
    week_phase = 2 * np.pi * t / (7 * PER_DAY)
    clean = 50.0 + 30.0 * np.sin(day_phase) + 10.0 * np.sin(2 * day_phase + 0.7) + weekly * np.sin(week_phase)
    return np.maximum(clean + rng.normal(0.0, noise, t.size), 0.0)


def crane_5min(name: str) -> np.ndarray:
    data = np.loadtxt(TRACES / name, delimiter=",", skiprows=1)
    step = float(np.median(np.diff(data[:, 0])))
    per = round(STEP / step)
    values = data[:, 1]
    out: np.ndarray = values[: values.size // per * per].reshape(-1, per).mean(axis=1)
    return out


@pytest.mark.parametrize("method", METHODS)
def test_synthetic_daily_cycle_beats_a_flat_forecast(method: Method) -> None:
    series = daily_sine(6, seed=11, extra_steps=PER_DAY // 2)
    history, future = series[: 5 * PER_DAY + 37], series[5 * PER_DAY + 37 :]
    predicted = fit(history, STEP, DAY, method).predict(future.size)
    flat = np.full(future.size, history.mean())
    ours = asymmetric_error(future, predicted)
    baseline = asymmetric_error(future, flat)
    # The cycle swings ±40 around 50 with noise σ = 4: a seasonal model must be several times better.
    assert ours < baseline / 4


def test_holt_winters_learns_a_clean_cycle_and_its_peak() -> None:
    series = daily_sine(4, seed=0, noise=0.0)
    model = fit(series, STEP, DAY, "holt_winters")
    assert isinstance(model, HoltWintersModel)
    nxt = daily_sine(5, seed=0, noise=0.0)[4 * PER_DAY :]
    assert np.max(np.abs(model.predict(PER_DAY) - nxt)) < 3.0
    peak = forecast_peak(series, STEP, DAY / 2, DAY, "holt_winters")
    assert peak == pytest.approx(float(nxt[: PER_DAY // 2].max()), abs=3.0)


def test_fft_learns_a_weekly_cycle_from_a_weekly_season() -> None:
    series = daily_sine(21, seed=5, noise=1.0, weekly=25.0)
    history, future = series[: 14 * PER_DAY], series[14 * PER_DAY :]
    weekly = fit(history, STEP, WEEK, "fft").predict(future.size)
    daily = fit(history, STEP, DAY, "fft").predict(future.size)
    assert asymmetric_error(future, weekly) < asymmetric_error(future, daily) / 2


@pytest.mark.parametrize("method", [*METHODS, "seasonal_naive"])
def test_predictions_are_never_negative(method: Method) -> None:
    # A cycle that touches zero every night, plus a falling trend: raw extrapolation would go below 0.
    t = np.arange(3 * PER_DAY, dtype=np.float64)
    series = np.maximum(40.0 * np.sin(2 * np.pi * t / PER_DAY), 0.0) + np.linspace(30.0, 0.0, t.size)
    predicted = fit(series, STEP, DAY, method).predict(2 * PER_DAY)
    assert predicted.shape == (2 * PER_DAY,)
    assert np.all(predicted >= 0.0)
    assert np.all(np.isfinite(predicted))


def test_missing_samples_are_interpolated() -> None:
    series = daily_sine(3, seed=2)
    holed = series.copy()
    holed[100:130] = np.nan
    a = fit(holed, STEP, DAY, "holt_winters").predict(12)
    b = fit(series, STEP, DAY, "holt_winters").predict(12)
    assert np.all(np.isfinite(a))
    assert np.max(np.abs(a - b)) < 10.0


ERROR_CASES = [
    # Fewer than two seasons of history.
    (np.ones(PER_DAY + 10), STEP, DAY, NotEnoughHistory),
    # Nothing finite.
    (np.full(3 * PER_DAY, np.nan), STEP, DAY, NotEnoughHistory),
    # A season that is not a whole number of steps.
    (np.ones(1000), 7.0, 100.0, ValueError),
    # A season of one step.
    (np.ones(1000), STEP, STEP, ValueError),
]


@pytest.mark.parametrize(("series", "step", "season", "error"), ERROR_CASES)
def test_fit_errors(series: np.ndarray, step: float, season: float, error: type[Exception]) -> None:
    with pytest.raises(error):
        fit(series, step, season, "holt_winters")


def test_season_steps_and_unknown_method() -> None:
    assert season_steps(STEP, DAY) == 288
    assert season_steps(60.0, WEEK) == 10_080
    with pytest.raises(ValueError, match="unknown forecast method"):
        fit(np.ones(1000), STEP, 3000.0, "prophet")  # type: ignore[arg-type]
    assert set(get_args(Method)) == {"holt_winters", "fft", "seasonal_naive"}


ASYMMETRIC_CASES = [
    # Exact forecast: no error.
    ([10.0, 10.0], [10.0, 10.0], 3.0, 0.0),
    # Under by 2 on a mean of 10: 3 × 2 / 10.
    ([10.0], [8.0], 3.0, 0.6),
    # Over by 2: 2 / 10.
    ([10.0], [12.0], 3.0, 0.2),
    # Symmetric weight 1 is a normalised MAE.
    ([10.0, 20.0], [12.0, 18.0], 1.0, 2.0 / 15.0),
]


@pytest.mark.parametrize(("actual", "predicted", "weight", "expected"), ASYMMETRIC_CASES)
def test_asymmetric_error(
    actual: list[float], predicted: list[float], weight: float, expected: float
) -> None:
    assert asymmetric_error(np.array(actual), np.array(predicted), weight) == pytest.approx(expected)


def test_backtest_compares_with_seasonal_naive_on_the_same_origins() -> None:
    series = daily_sine(5, seed=9)
    naive = backtest(series, STEP, DAY, 3600.0, "seasonal_naive", origins=8)
    # The baseline scored against itself.
    assert naive.score == pytest.approx(naive.baseline_score)
    assert naive.ratio == pytest.approx(1.0)
    hw = backtest(series, STEP, DAY, 3600.0, "holt_winters", origins=8)
    assert hw.origins == naive.origins == 8
    assert hw.horizon_steps == 12
    assert hw.baseline_score == pytest.approx(naive.baseline_score)
    # On noise around a fixed cycle, yesterday's noisy value is a worse guess than a smoothed cycle.
    assert hw.score < hw.baseline_score
    with pytest.raises(NotEnoughHistory):
        backtest(series[: 2 * PER_DAY], STEP, DAY, 3600.0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("horizon", [1800.0, 3600.0])
def test_real_trace_beats_seasonal_naive(method: Method, horizon: float) -> None:
    # crane-input0: 8 days at 60 s (gocrane/crane test data), averaged to 5-minute steps.
    series = crane_5min("crane-input0.csv")
    assert series.size == 8 * PER_DAY
    result = backtest(series, STEP, DAY, horizon, method, under_weight=3.0, origins=24)
    assert result.score <= result.baseline_score
    assert result.peak_score <= result.baseline_peak_score * 1.05
