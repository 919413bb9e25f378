"""Seasonal demand forecasting with numpy: Holt-Winters, Fourier extrapolation, and a seasonal-naive baseline.

The engine asks one question of a forecast: *what is the highest demand between now and the moment a worker
started now would be ready?* (:func:`forecast_peak`, with the horizon set to the target's start-up time).
It then scales up ahead of a predictable rise. The forecast is a floor that may only *raise* the reactive
recommendation: the engine takes ``max(reactive, forecast)`` and never lets a forecast scale below what the
live signals need (that clamp lives in the engine, not here).

Methods (``fit(..., method=...)``):

- ``holt_winters``: additive Holt-Winters with a damped trend (level, trend, one season of
  ``season_seconds``). ``α, β, γ, φ`` are chosen by a grid search minimising the one-step squared error
  after a burn-in season; the grid runs *vectorised across parameter sets* (one pass over the history with
  arrays of candidates), so fitting 14 days of 5-minute data takes a few tens of milliseconds.
- ``fft``: the history's last whole seasons, less a trend through the per-season means, as a sum of the
  ``components`` strongest harmonics of the season, extrapolated; plus the mean residual of the last
  ``season/48`` steps fading over a quarter season, so the forecast starts from today's level rather than
  the window's average. Only harmonics of the season repeat beyond the window: to learn a weekly cycle, pass
  a weekly season (and two weeks of history).
- ``seasonal_naive``: the value one season ago; the baseline every back-test reports.

All predictions are clipped at 0 (demand is never negative). Missing samples (NaN) are filled by linear
interpolation before fitting; every method needs at least two whole seasons of history
(:class:`NotEnoughHistory` otherwise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BacktestResult",
    "FourierModel",
    "HoltWintersModel",
    "Method",
    "Model",
    "NotEnoughHistory",
    "SeasonalNaiveModel",
    "asymmetric_error",
    "backtest",
    "fit",
    "forecast_peak",
    "season_steps",
]

Method = Literal["holt_winters", "fft", "seasonal_naive"]
FloatArray = NDArray[np.float64]

# Grid of the Holt-Winters search: small α/γ learn slowly and smooth noise, large ones track change;
# φ < 1 damps the trend so a forecast a day out does not run away on a short-lived slope.
_ALPHAS = (0.02, 0.05, 0.1, 0.2, 0.4, 0.7)
_BETAS = (0.0, 0.01, 0.05)
_GAMMAS = (0.02, 0.1, 0.3)
_PHIS = (0.9, 0.98)


class NotEnoughHistory(ValueError):
    """The history is shorter than the method needs (two whole seasons)."""


class Model(Protocol):
    def predict(self, horizon_steps: int) -> FloatArray:
        """Demand for the next ``horizon_steps`` steps after the history, never negative."""
        ...


def season_steps(step_seconds: float, season_seconds: float) -> int:
    """Steps in one season; the season must be a whole number of steps (within 1 %) and at least 2."""
    if not (step_seconds > 0 and season_seconds > 0):
        raise ValueError("step and season must be positive numbers of seconds")
    ratio = season_seconds / step_seconds
    m = round(ratio)
    if m < 2 or abs(ratio - m) > 0.01 * m:
        raise ValueError(
            f"a season of {season_seconds:g}s is not a whole number (>= 2) of {step_seconds:g}s steps"
        )
    return m


def _clean(series: NDArray[np.floating] | FloatArray) -> FloatArray:
    y = np.asarray(series, dtype=np.float64).ravel()
    bad = ~np.isfinite(y)
    if bad.all():
        raise NotEnoughHistory("the history has no finite value")
    if bad.any():
        idx = np.arange(y.size)
        y = y.copy()
        y[bad] = np.interp(idx[bad], idx[~bad], y[~bad])
    return y


def _check_horizon(horizon_steps: int) -> None:
    if horizon_steps < 1:
        raise ValueError(f"horizon must be >= 1 step, not {horizon_steps}")


@dataclass(frozen=True)
class HoltWintersModel:
    """Fitted additive Holt-Winters state at the end of the history.

    ``season[j]`` is the seasonal term of the ``j``-th step after the history (modulo its length).
    """

    level: float
    trend: float
    season: FloatArray
    alpha: float
    beta: float
    gamma: float
    phi: float
    sse: float

    def predict(self, horizon_steps: int) -> FloatArray:
        _check_horizon(horizon_steps)
        h = np.arange(1, horizon_steps + 1, dtype=np.float64)
        # Σ φ^i for i = 1..h: how much of today's trend each step ahead still carries.
        damped = h if self.phi == 1.0 else self.phi * (1.0 - self.phi**h) / (1.0 - self.phi)
        seasonal = self.season[(np.arange(horizon_steps)) % self.season.size]
        out: FloatArray = np.maximum(self.level + damped * self.trend + seasonal, 0.0)
        return out


def _initial_state(y: FloatArray, m: int) -> tuple[float, float, FloatArray]:
    seasons = min(y.size // m, 4)
    blocks = y[: seasons * m].reshape(seasons, m)
    means = blocks.mean(axis=1)
    level = float(means[0])
    trend = float((means[-1] - means[0]) / ((seasons - 1) * m)) if seasons > 1 else 0.0
    season: FloatArray = (blocks - means[:, None]).mean(axis=0)
    return level, trend, season


def _fit_holt_winters(y: FloatArray, m: int) -> HoltWintersModel:
    grid = np.array(
        [(a, b, g, p) for a in _ALPHAS for b in _BETAS for g in _GAMMAS for p in _PHIS], dtype=np.float64
    )
    alpha, beta, gamma, phi = (grid[:, i].copy() for i in range(4))
    level0, trend0, season0 = _initial_state(y, m)
    count = grid.shape[0]
    level = np.full(count, level0)
    trend = np.full(count, trend0)
    # One row per seasonal position, one column per candidate: the row read and written each step is
    # contiguous.
    season = np.repeat(season0[:, None], count, axis=1)
    sse = np.zeros(count)
    one_alpha, one_beta, one_gamma = 1.0 - alpha, 1.0 - beta, 1.0 - gamma
    for t in range(y.size):
        i = t % m
        s = season[i]
        damped = phi * trend
        base = level + damped
        if t >= m:
            err = y[t] - (base + s)
            sse += err * err
        new_level = alpha * (y[t] - s) + one_alpha * base
        trend = beta * (new_level - level) + one_beta * damped
        season[i] = gamma * (y[t] - new_level) + one_gamma * s
        level = new_level
    best = int(np.argmin(sse))
    rotated = np.roll(season[:, best], -(y.size % m))
    return HoltWintersModel(
        level=float(level[best]),
        trend=float(trend[best]),
        season=rotated,
        alpha=float(alpha[best]),
        beta=float(beta[best]),
        gamma=float(gamma[best]),
        phi=float(phi[best]),
        sse=float(sse[best]),
    )


@dataclass(frozen=True)
class FourierModel:
    """Trend plus the strongest Fourier components of a window of ``window`` steps ending at the history."""

    window: int
    intercept: float
    slope: float
    frequencies: FloatArray  # cycles per step
    amplitudes: FloatArray
    phases: FloatArray
    bias: float
    bias_steps: float

    def _curve(self, t: FloatArray) -> FloatArray:
        waves = self.amplitudes[:, None] * np.cos(
            2.0 * np.pi * self.frequencies[:, None] * t[None, :] + self.phases[:, None]
        )
        out: FloatArray = self.intercept + self.slope * t + waves.sum(axis=0)
        return out

    def predict(self, horizon_steps: int) -> FloatArray:
        _check_horizon(horizon_steps)
        t = np.arange(self.window, self.window + horizon_steps, dtype=np.float64)
        h = np.arange(1, horizon_steps + 1, dtype=np.float64)
        correction = self.bias * np.exp(-h / self.bias_steps)
        out: FloatArray = np.maximum(self._curve(t) + correction, 0.0)
        return out


def _fit_fft(y: FloatArray, m: int, components: int) -> FourierModel:
    # Whole seasons only: the season's fundamental and harmonics then fall on exact bins, without leakage.
    seasons = y.size // m
    window = seasons * m
    w = y[-window:]
    t = np.arange(window, dtype=np.float64)
    # The trend is a line through the per-season means at their centres: a least-squares line through the
    # raw series would read the seasonal shape as a slope when the window starts mid-cycle.
    means = w.reshape(seasons, m).mean(axis=1)
    centres = np.arange(seasons, dtype=np.float64) * m + (m - 1) / 2.0
    slope = float(np.polyfit(centres, means, 1)[0]) if seasons > 1 else 0.0
    intercept = float(means.mean() - slope * centres.mean())
    spectrum = np.fft.rfft(w - (intercept + slope * t))
    # Only harmonics of the season repeat after the window; the Nyquist bin has no phase to extrapolate.
    usable = np.arange(seasons, (window - 1) // 2 + 1, seasons)
    strongest = usable[np.argsort(np.abs(spectrum[usable]))[::-1][:components]]
    frequencies = strongest.astype(np.float64) / window
    amplitudes = 2.0 * np.abs(spectrum[strongest]) / window
    phases = np.angle(spectrum[strongest]).astype(np.float64)
    # Today's level is rarely the window's average: the last 1/48 season's residual (30 min of a day) is
    # carried into the forecast and fades over a quarter season.
    recent = max(1, m // 48)
    shape = FourierModel(window, intercept, slope, frequencies, amplitudes, phases, 0.0, 1.0)
    residual = w[-recent:] - shape._curve(t[-recent:])
    return FourierModel(
        window, intercept, slope, frequencies, amplitudes, phases, float(residual.mean()), max(1.0, m / 4.0)
    )


@dataclass(frozen=True)
class SeasonalNaiveModel:
    """Tomorrow is today: the last whole season, repeated."""

    last_season: FloatArray

    def predict(self, horizon_steps: int) -> FloatArray:
        _check_horizon(horizon_steps)
        out: FloatArray = np.maximum(self.last_season[np.arange(horizon_steps) % self.last_season.size], 0.0)
        return out


def fit(
    series: NDArray[np.floating] | FloatArray,
    step_seconds: float,
    season_seconds: float,
    method: Method = "holt_winters",
    *,
    components: int = 24,
) -> Model:
    """Fit ``method`` to ``series`` (one value per ``step_seconds``, oldest first, the last step is now).

    ``components`` is the number of Fourier components the ``fft`` method keeps.
    """
    y = _clean(series)
    m = season_steps(step_seconds, season_seconds)
    if y.size < 2 * m:
        raise NotEnoughHistory(
            f"{y.size} steps of history; {method} needs two seasons ({2 * m} steps of {step_seconds:g}s)"
        )
    if method == "holt_winters":
        return _fit_holt_winters(y, m)
    if method == "fft":
        if components < 1:
            raise ValueError(f"components must be >= 1, not {components}")
        return _fit_fft(y, m, components)
    if method == "seasonal_naive":
        return SeasonalNaiveModel(last_season=y[-m:].copy())
    raise ValueError(f"unknown forecast method {method!r}")


def forecast_peak(
    history: NDArray[np.floating] | FloatArray,
    step_seconds: float,
    horizon_seconds: float,
    season_seconds: float,
    method: Method = "holt_winters",
) -> float:
    """The highest predicted demand over the next ``horizon_seconds`` (at least one step).

    Set the horizon to the target's start-up time: capacity asked for now is ready by then. The engine uses
    the result only to raise a recommendation, never to lower it below the reactive signals.
    """
    if not (math.isfinite(horizon_seconds) and horizon_seconds > 0):
        raise ValueError(f"horizon must be a positive number of seconds, not {horizon_seconds}")
    steps = max(1, math.ceil(horizon_seconds / step_seconds - 1e-9))
    return float(fit(history, step_seconds, season_seconds, method).predict(steps).max())


def asymmetric_error(
    actual: NDArray[np.floating] | FloatArray,
    predicted: NDArray[np.floating] | FloatArray,
    under_weight: float = 3.0,
    scale: float | None = None,
) -> float:
    """Mean of ``under_weight × (actual − predicted)`` where under-predicted and ``predicted − actual``
    where over-predicted, divided by ``scale`` (default: the mean of ``actual``).

    A pinball loss at quantile ``w / (1 + w)`` up to a constant: with ``under_weight = 3`` the forecast that
    minimises it is the 75th percentile of what may come, because running short of workers costs more than
    paying for one too many.
    """
    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    diff = a - p
    loss = np.where(diff > 0, under_weight * diff, -diff)
    norm = float(np.mean(np.abs(a))) if scale is None else scale
    if norm <= 0:
        raise ValueError("the error scale must be > 0 (an all-zero series has no relative error)")
    return float(loss.mean() / norm)


@dataclass(frozen=True)
class BacktestResult:
    """Rolling-origin back-test of one method against the seasonal-naive baseline on the same origins.

    ``score``/``baseline_score``: :func:`asymmetric_error` over every predicted step, normalised by the mean
    of the series; ``peak_score``/``baseline_peak_score``: the same error of the horizon's *peak* (what the
    engine scales for). Lower is better; ``ratio < 1`` means the method beat the baseline.
    """

    method: Method
    origins: int
    horizon_steps: int
    under_weight: float
    score: float
    baseline_score: float
    peak_score: float
    baseline_peak_score: float
    under_share: float

    @property
    def ratio(self) -> float:
        return self.score / self.baseline_score if self.baseline_score > 0 else math.inf


def backtest(
    series: NDArray[np.floating] | FloatArray,
    step_seconds: float,
    season_seconds: float,
    horizon_seconds: float,
    method: Method = "holt_winters",
    under_weight: float = 3.0,
    *,
    origins: int = 24,
    max_train_seasons: int | None = 7,
    components: int = 24,
) -> BacktestResult:
    """Rolling-origin evaluation: fit on the history before each origin, predict the horizon after it.

    ``origins`` forecast origins are spread evenly from two seasons in to the last full horizon; each fit
    sees at most ``max_train_seasons`` seasons (``None``: everything before the origin). The seasonal-naive
    baseline is scored on the same origins and steps.
    """
    y = _clean(series)
    m = season_steps(step_seconds, season_seconds)
    horizon = max(1, math.ceil(horizon_seconds / step_seconds - 1e-9))
    first, last = 2 * m, y.size - horizon
    if last < first:
        raise NotEnoughHistory(f"{y.size} steps cannot hold two seasons ({2 * m}) plus a horizon ({horizon})")
    if origins < 1:
        raise ValueError(f"origins must be >= 1, not {origins}")
    points = np.unique(np.linspace(first, last, num=origins).round().astype(int))
    keep = None if max_train_seasons is None else max_train_seasons * m
    actual_all: list[FloatArray] = []
    pred_all: list[FloatArray] = []
    base_all: list[FloatArray] = []
    for origin in points:
        start = 0 if keep is None else max(0, origin - keep)
        train = y[start:origin]
        actual_all.append(y[origin : origin + horizon])
        pred_all.append(
            fit(train, step_seconds, season_seconds, method, components=components).predict(horizon)
        )
        base_all.append(fit(train, step_seconds, season_seconds, "seasonal_naive").predict(horizon))
    actual = np.stack(actual_all)
    pred = np.stack(pred_all)
    base = np.stack(base_all)
    scale = float(np.mean(np.abs(y)))
    return BacktestResult(
        method=method,
        origins=len(points),
        horizon_steps=horizon,
        under_weight=under_weight,
        score=asymmetric_error(actual, pred, under_weight, scale),
        baseline_score=asymmetric_error(actual, base, under_weight, scale),
        peak_score=asymmetric_error(actual.max(axis=1), pred.max(axis=1), under_weight, scale),
        baseline_peak_score=asymmetric_error(actual.max(axis=1), base.max(axis=1), under_weight, scale),
        under_share=float(np.mean(pred < actual)),
    )
