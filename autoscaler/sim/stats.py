"""The mean of a benchmark figure over seeds and its confidence interval (Student's t).

Benchmarks repeat a comparison over a few seeds of the same load shape; a mean of five runs says little
without its spread. :func:`mean_interval` gives the mean and the two-sided interval
``mean ± t(df = n − 1) × s / √n`` (``s`` the sample standard deviation); with fewer than two values there
is no spread to measure, so no interval.

The t quantile is exact for whole degrees of freedom, with no dependency: the probability
``P(|T| ≤ t)`` has a closed form as a finite sum in ``θ = atan(t / √df)`` (Abramowitz & Stegun 26.7.3
and 26.7.4), which is increasing in ``t`` and is inverted by bisection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MeanInterval", "mean_interval", "t_critical"]


def _central_probability(t: float, df: int) -> float:
    """``P(|T| <= t)`` for Student's t with ``df`` degrees of freedom, ``t >= 0``."""
    theta = math.atan(t / math.sqrt(df))
    sin, cos2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2:
        series = 0.0
        if df > 1:
            term = series = math.cos(theta)
            for k in range(3, df - 1, 2):
                term *= (k - 1) / k * cos2
                series += term
        return 2.0 / math.pi * (theta + sin * series)
    term = series = 1.0
    for k in range(2, df - 1, 2):
        term *= (k - 1) / k * cos2
        series += term
    return sin * series


def t_critical(confidence: float, df: int) -> float:
    """The ``t`` with ``P(|T| <= t) = confidence`` for ``df`` degrees of freedom (1.96 as ``df`` grows,
    at 95 %)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, not {df}")
    low, high = 0.0, 1.0
    while _central_probability(high, df) < confidence:
        low, high = high, high * 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        if mid in (low, high):
            break
        if _central_probability(mid, df) < confidence:
            low = mid
        else:
            high = mid
    return high


@dataclass(frozen=True, slots=True)
class MeanInterval:
    """A mean over ``n`` values and the half-width of its interval (None: fewer than two values)."""

    mean: float
    n: int
    half_width: float | None
    confidence: float = 0.95

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width

    def format(self, digits: int = 2) -> str:
        """``mean ± half-width`` (only the mean without an interval)."""
        if self.half_width is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> MeanInterval:
    """The mean of ``values`` and its two-sided ``confidence`` t-interval (see the module docstring)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values: a mean needs at least one")
    if not all(math.isfinite(v) for v in values):
        raise ValueError("values must be finite numbers")
    mean = math.fsum(values) / n
    if n < 2:
        return MeanInterval(mean, n, None, confidence)
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = t_critical(confidence, n - 1) * math.sqrt(variance / n)
    return MeanInterval(mean, n, half, confidence)
