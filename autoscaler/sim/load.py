"""Seeded, deterministic query loads for the simulator.

A :class:`Load` is a list of queries, each with an arrival time (seconds from the start of the run), a
service time, a resource-group index and, optionally, the memory it reserves while it runs (GB). The
service time is CPU-seconds of work at full speed: :mod:`autoscaler.sim.trino` runs a query at full speed
while its worker has no more queries than cores and shares the cores among them beyond that. With one core
per query slot (the default) a query holds one slot for exactly its service time, whatever else runs on
that worker, which makes a static cluster an M/M/c queue of ``workers × slots`` servers and keeps the model
checkable against Erlang C.

Sources:

- :func:`from_shape` / :func:`from_trace_csv`: a ``ts,value`` load-shape series (the traces of
  ``data/traces``), values scaled to arrivals per second and held constant until the next sample
  (step interpolation); arrivals per interval are Poisson, placed uniformly inside it;
- :func:`from_arrivals_csv`: a CSV of individual queries ``arrival_ts,service_seconds[,group[,memory_gb]]``;
- :func:`poisson`, :func:`diurnal`, :func:`bursts`: synthetic rate curves.

:func:`query_memory` draws per-query memory for a load that has none (:meth:`Load.with_memory` attaches
it). Everything random comes from a ``numpy.random.Generator`` seeded by the caller.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "FloatArray",
    "IntArray",
    "Load",
    "MemoryModel",
    "ServiceDist",
    "ServiceSpec",
    "bursts",
    "diurnal",
    "from_arrivals_csv",
    "from_rate_curve",
    "from_shape",
    "from_trace_csv",
    "parse_service",
    "poisson",
    "query_memory",
    "read_shape_csv",
    "read_shape_span",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ServiceDist = Literal["exponential", "lognormal"]
MemoryModel = Literal["constant", "service"]


@dataclass(frozen=True, eq=False)
class Load:
    """Queries sorted by arrival; ``duration`` is the span the load covers (the run length by default).

    ``memory`` is each query's memory reservation in GB; None reserves nothing.
    """

    arrivals: FloatArray
    service: FloatArray
    group: IntArray
    duration: float
    memory: FloatArray | None = None

    def __post_init__(self) -> None:
        n = len(self.arrivals)
        if len(self.service) != n or len(self.group) != n:
            raise ValueError("arrivals, service and group must have the same length")
        if n and (np.any(np.diff(self.arrivals) < 0) or self.arrivals[0] < 0):
            raise ValueError("arrivals must be sorted and >= 0")
        if n and not np.all(np.isfinite(self.service) & (self.service > 0)):
            raise ValueError("service times must be positive and finite")
        if not (math.isfinite(self.duration) and self.duration > 0):
            raise ValueError(f"duration must be a positive number of seconds, not {self.duration}")
        if self.memory is not None:
            if len(self.memory) != n:
                raise ValueError("memory must have one entry per query")
            if n and not np.all(np.isfinite(self.memory) & (self.memory >= 0)):
                raise ValueError("query memory must be finite and >= 0 GB")

    @property
    def count(self) -> int:
        return len(self.arrivals)

    def offered_load(self) -> float:
        """Mean busy cores (or slots, one core each) over the whole span (``λ·S``)."""
        return float(self.service.sum()) / self.duration

    def with_memory(self, memory: FloatArray) -> Load:
        """The same queries, each reserving ``memory[i]`` GB."""
        return Load(self.arrivals, self.service, self.group, self.duration, np.asarray(memory, np.float64))

    def slice(self, start: float, end: float) -> Load:
        """The queries arriving in ``[start, end)``, re-timed to start at 0."""
        lo, hi = np.searchsorted(self.arrivals, [start, end], side="left")
        return Load(
            self.arrivals[lo:hi] - start,
            self.service[lo:hi].copy(),
            self.group[lo:hi].copy(),
            end - start,
            None if self.memory is None else self.memory[lo:hi].copy(),
        )


def query_memory(
    service: FloatArray,
    *,
    mean_gb: float,
    seed: int,
    model: MemoryModel = "service",
    sigma: float = 0.5,
    max_gb: float | None = None,
) -> FloatArray:
    """Per-query memory in GB averaging ``mean_gb`` for queries of the given service times.

    ``constant``: every query reserves ``mean_gb``. ``service``: memory grows with the square root of the
    service time (bigger queries hold more, sub-linearly) times lognormal noise of shape ``sigma`` drawn
    from ``seed``, scaled so the mean is ``mean_gb``. ``max_gb`` caps every query (after scaling), e.g. at a
    worker's memory so every query can run somewhere.
    """
    if not (math.isfinite(mean_gb) and mean_gb >= 0):
        raise ValueError(f"mean query memory must be >= 0 GB, not {mean_gb}")
    service = np.asarray(service, dtype=np.float64)
    n = len(service)
    if model == "constant":
        memory = np.full(n, float(mean_gb))
    elif model == "service":
        rng = np.random.default_rng(seed)
        raw = np.sqrt(service) * rng.lognormal(0.0, sigma, n)
        memory = raw * (mean_gb / float(raw.mean())) if n else raw
    else:
        raise ValueError(f"memory model must be constant or service, not {model!r}")
    if max_gb is not None:
        memory = np.minimum(memory, max_gb)
    return memory


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """How query work is drawn: ``dist`` with mean ``mean_s`` (and shape ``sigma`` for a lognormal)."""

    dist: ServiceDist
    mean_s: float
    sigma: float = 1.0

    @property
    def median_s(self) -> float:
        if self.dist == "lognormal":
            return self.mean_s * math.exp(-self.sigma * self.sigma / 2.0)
        return self.mean_s * math.log(2.0)

    def describe(self) -> str:
        if self.dist == "lognormal":
            return f"lognormal work, median {self.median_s:.3g} s, sigma {self.sigma:g} (mean {self.mean_s:.3g} s)"
        return f"exponential work, mean {self.mean_s:.3g} s"


def parse_service(text: str) -> ServiceSpec:
    """``lognormal:MEDIAN,SIGMA`` (a heavy tail: the mean is ``MEDIAN·exp(SIGMA²/2)``) or ``exp:MEAN``,
    seconds of work at full speed."""
    kind, _, args = text.partition(":")
    try:
        numbers = [float(a) for a in args.split(",")] if args.strip() else []
    except ValueError:
        numbers = []
    kind = kind.strip().lower()
    if kind == "lognormal" and len(numbers) == 2:
        median, sigma = numbers
        if median > 0 and math.isfinite(median) and 0 <= sigma <= 5:
            return ServiceSpec("lognormal", median * math.exp(sigma * sigma / 2.0), sigma)
    if kind in ("exp", "exponential") and len(numbers) == 1 and numbers[0] > 0 and math.isfinite(numbers[0]):
        return ServiceSpec("exponential", numbers[0])
    raise ValueError(
        f"service {text!r}: expected lognormal:MEDIAN,SIGMA (MEDIAN > 0 s, 0 <= SIGMA <= 5) or exp:MEAN (MEAN > 0 s)"
    )


def _service_times(
    rng: np.random.Generator, n: int, mean_service_s: float, dist: ServiceDist, sigma: float
) -> FloatArray:
    if not (math.isfinite(mean_service_s) and mean_service_s > 0):
        raise ValueError(f"mean service time must be positive, not {mean_service_s}")
    if dist == "exponential":
        return rng.exponential(mean_service_s, n)
    if dist == "lognormal":
        # mu chosen so the lognormal's mean, exp(mu + sigma²/2), is the requested mean.
        mu = math.log(mean_service_s) - sigma * sigma / 2.0
        return rng.lognormal(mu, sigma, n)
    raise ValueError(f"service distribution must be exponential or lognormal, not {dist!r}")


def from_rate_curve(
    starts: FloatArray,
    rates: FloatArray,
    duration: float,
    *,
    mean_service_s: float,
    seed: int,
    service_dist: ServiceDist = "exponential",
    sigma: float = 1.0,
    groups: int = 1,
    burst: float = 1.0,
) -> Load:
    """Poisson arrivals under a step-wise constant rate: ``rates[i]`` arrivals/s from ``starts[i]`` to the
    next start (the last one to ``duration``). Queries spread uniformly over ``groups`` resource groups.

    ``burst`` > 1 makes arrivals bursty at the same mean rate: instants arrive as a Poisson process at
    ``rate / burst``, each bringing a geometric number of queries (mean ``burst``) within
    :data:`BURST_SPREAD_S` — a dashboard refresh or a scheduled report firing its queries together."""
    starts = np.asarray(starts, dtype=np.float64)
    rates = np.asarray(rates, dtype=np.float64)
    if len(starts) != len(rates) or len(starts) == 0:
        raise ValueError("need as many interval starts as rates, at least one")
    if np.any(rates < 0) or not np.all(np.isfinite(rates)):
        raise ValueError("rates must be finite and >= 0")
    ends = np.append(starts[1:], duration)
    widths = np.clip(ends - starts, 0.0, None)
    if not (math.isfinite(burst) and burst >= 1.0):
        raise ValueError(f"burst must be >= 1 query per arrival instant, not {burst}")
    rng = np.random.default_rng(seed)
    if burst == 1.0:
        counts = rng.poisson(rates * widths)
        total = int(counts.sum())
        base = np.repeat(starts, counts)
        arrivals = np.sort(base + rng.random(total) * np.repeat(widths, counts))
    else:
        arrivals = _batched(rng, starts, rates, widths, burst, duration)
        total = len(arrivals)
    service = _service_times(rng, total, mean_service_s, service_dist, sigma)
    group = rng.integers(0, groups, total).astype(np.int64) if groups > 1 else np.zeros(total, np.int64)
    return Load(arrivals, service, group, float(duration))


#: The seconds over which one burst's queries arrive.
BURST_SPREAD_S = 2.0


def _batched(
    rng: np.random.Generator,
    starts: FloatArray,
    rates: FloatArray,
    widths: FloatArray,
    burst: float,
    duration: float,
) -> FloatArray:
    instants = rng.poisson(rates * widths / burst)
    total = int(instants.sum())
    at = np.repeat(starts, instants) + rng.random(total) * np.repeat(widths, instants)
    sizes = rng.geometric(1.0 / burst, total)
    times = np.repeat(at, sizes) + rng.random(int(sizes.sum())) * BURST_SPREAD_S
    return np.sort(times[times < duration])


def read_shape_csv(path: str | Path) -> tuple[FloatArray, FloatArray]:
    """``ts,value`` rows (header optional) as two arrays, sorted by time."""
    ts: list[float] = []
    values: list[float] = []
    with open(path, newline="") as handle:
        for row in csv.reader(handle):
            if not row or not row[0].strip():
                continue
            try:
                t, v = float(row[0]), float(row[1])
            except ValueError:
                if not ts:  # a header line
                    continue
                raise
            ts.append(t)
            values.append(v)
    order = np.argsort(np.asarray(ts), kind="stable")
    return np.asarray(ts)[order], np.asarray(values)[order]


def read_shape_span(path: str | Path, days: float | None) -> tuple[FloatArray, FloatArray, float]:
    """A ``ts,value`` shape file and the seconds to simulate: ``days`` or the whole shape, whichever is
    shorter (its last sample lasting one sample step)."""
    ts, values = read_shape_csv(path)
    if len(ts) == 0:
        raise ValueError(f"{path}: no samples")
    step = float(ts[1] - ts[0]) if len(ts) > 1 else 60.0
    full = float(ts[-1] - ts[0]) + step
    return ts, values, full if days is None else min(days * 86400.0, full)


def from_shape(
    ts: FloatArray,
    values: FloatArray,
    *,
    mean_service_s: float,
    seed: int,
    mean_rate: float | None = None,
    rate_scale: float | None = None,
    start: float | None = None,
    duration: float | None = None,
    service_dist: ServiceDist = "exponential",
    sigma: float = 1.0,
    groups: int = 1,
    burst: float = 1.0,
) -> Load:
    """A load whose arrival rate follows the shape ``values`` over ``ts``.

    Arrivals/s = ``value × rate_scale``; give ``mean_rate`` instead to pick the scale that makes the mean of
    the shape over the chosen span that rate (exactly one of the two). ``start`` (seconds after the first
    sample) and ``duration`` cut a slice; the last sample lasts as long as the median sample step.
    """
    if (mean_rate is None) == (rate_scale is None):
        raise ValueError("give exactly one of mean_rate and rate_scale")
    ts = np.asarray(ts, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if len(ts) == 0:
        raise ValueError("the shape has no samples")
    step = float(np.median(np.diff(ts))) if len(ts) > 1 else 60.0
    rel = ts - ts[0]
    full = float(rel[-1] + step)
    begin = 0.0 if start is None else float(start)
    span = full - begin if duration is None else float(duration)
    if span <= 0 or begin + span > full + 1e-9:
        raise ValueError(f"slice [{begin}, {begin + span}) is outside the shape's span of {full} s")
    first = max(int(np.searchsorted(rel, begin, side="right")) - 1, 0)
    last = int(np.searchsorted(rel, begin + span, side="left"))
    starts = np.maximum(rel[first:last] - begin, 0.0)
    shape = np.clip(values[first:last], 0.0, None)
    if rate_scale is None:
        assert mean_rate is not None
        widths = np.append(starts[1:], span) - starts
        mean_shape = float(np.sum(shape * widths) / span)
        if mean_shape <= 0:
            raise ValueError("the shape is zero over the chosen span: cannot scale it to a mean rate")
        rate_scale = mean_rate / mean_shape
    return from_rate_curve(
        starts,
        shape * rate_scale,
        span,
        mean_service_s=mean_service_s,
        seed=seed,
        service_dist=service_dist,
        sigma=sigma,
        groups=groups,
        burst=burst,
    )


def from_trace_csv(
    path: str | Path,
    *,
    mean_service_s: float,
    seed: int,
    mean_rate: float | None = None,
    rate_scale: float | None = None,
    start: float | None = None,
    duration: float | None = None,
    service_dist: ServiceDist = "exponential",
    sigma: float = 1.0,
    groups: int = 1,
    burst: float = 1.0,
) -> Load:
    """:func:`from_shape` on a ``ts,value`` CSV file."""
    ts, values = read_shape_csv(path)
    return from_shape(
        ts,
        values,
        mean_service_s=mean_service_s,
        seed=seed,
        mean_rate=mean_rate,
        rate_scale=rate_scale,
        start=start,
        duration=duration,
        service_dist=service_dist,
        sigma=sigma,
        groups=groups,
        burst=burst,
    )


def from_arrivals_csv(path: str | Path, *, duration: float | None = None) -> Load:
    """``arrival_ts,service_seconds[,group[,memory_gb]]`` rows (header optional); times re-based to the first
    arrival. A query without a memory figure reserves none; without any, the load has no memory array.

    Without ``duration`` the load lasts until the last arrival plus its service time.
    """
    arrivals: list[float] = []
    service: list[float] = []
    group: list[int] = []
    memory: list[float] = []
    has_memory = False
    with open(path, newline="") as handle:
        for row in csv.reader(handle):
            if not row or not row[0].strip():
                continue
            try:
                a, s = float(row[0]), float(row[1])
                g = int(row[2]) if len(row) > 2 and row[2].strip() else 0
                m = float(row[3]) if len(row) > 3 and row[3].strip() else None
            except ValueError:
                if not arrivals:
                    continue
                raise
            arrivals.append(a)
            service.append(s)
            group.append(g)
            memory.append(0.0 if m is None else m)
            has_memory = has_memory or m is not None
    if not arrivals:
        raise ValueError(f"{path}: no arrivals")
    a_arr = np.asarray(arrivals, dtype=np.float64)
    order = np.argsort(a_arr, kind="stable")
    a_arr = a_arr[order] - a_arr[order][0]
    s_arr = np.asarray(service, dtype=np.float64)[order]
    g_arr = np.asarray(group, dtype=np.int64)[order]
    m_arr = np.asarray(memory, dtype=np.float64)[order] if has_memory else None
    span = float(duration) if duration is not None else float(np.max(a_arr + s_arr))
    return Load(a_arr, s_arr, g_arr, max(span, 1.0), m_arr)


def poisson(
    rate: float,
    duration: float,
    *,
    mean_service_s: float,
    seed: int,
    service_dist: ServiceDist = "exponential",
    groups: int = 1,
) -> Load:
    """Constant-rate Poisson arrivals."""
    return from_rate_curve(
        np.zeros(1),
        np.array([rate]),
        duration,
        mean_service_s=mean_service_s,
        seed=seed,
        service_dist=service_dist,
        groups=groups,
    )


def diurnal(
    mean_rate: float,
    duration: float,
    *,
    mean_service_s: float,
    seed: int,
    amplitude: float = 0.8,
    period_s: float = 86_400.0,
    peak_at_s: float = 14 * 3600.0,
    resolution_s: float = 60.0,
) -> Load:
    """A daily sine: ``mean_rate × (1 + amplitude·cos(2π(t − peak)/period))``, held per ``resolution_s``."""
    if not 0 <= amplitude <= 1:
        raise ValueError("amplitude must be in [0, 1] so the rate never goes negative")
    starts = np.arange(0.0, duration, resolution_s)
    mid = starts + resolution_s / 2
    rates = mean_rate * (1.0 + amplitude * np.cos(2 * math.pi * (mid - peak_at_s) / period_s))
    return from_rate_curve(starts, rates, duration, mean_service_s=mean_service_s, seed=seed)


def bursts(
    base_rate: float,
    burst_rate: float,
    duration: float,
    *,
    mean_service_s: float,
    seed: int,
    every_s: float = 3600.0,
    length_s: float = 300.0,
    first_at_s: float = 600.0,
) -> Load:
    """``base_rate`` with a rectangular burst of ``burst_rate`` lasting ``length_s`` every ``every_s``."""
    if not 0 < length_s < every_s:
        raise ValueError("a burst must be shorter than the time between bursts")
    edges: list[float] = [0.0]
    rates: list[float] = [base_rate]
    t = first_at_s
    while t < duration:
        edges += [t, min(t + length_s, duration)]
        rates += [burst_rate, base_rate]
        t += every_s
    return from_rate_curve(
        np.asarray(edges), np.asarray(rates), duration, mean_service_s=mean_service_s, seed=seed
    )
