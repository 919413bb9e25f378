"""Plots and a Markdown summary of simulator runs.

Figures are built on :class:`matplotlib.figure.Figure` directly, not pyplot: PNGs are rendered by the Agg
canvas, no display or global backend state is involved, and nothing needs closing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from matplotlib.figure import Figure

from autoscaler.sim.run import Result

if TYPE_CHECKING:
    from autoscaler.sim.iso_slo import IsoSlo, Point

__all__ = [
    "COST_PNG",
    "REFERENCE",
    "TIMESERIES_PNG",
    "WAITS_PNG",
    "SweepPoints",
    "plot_cost_vs_wait",
    "plot_timeseries",
    "plot_wait_distribution",
    "summary_markdown",
]

REFERENCE = "hpa-cpu"
TIMESERIES_PNG = "timeseries.png"
WAITS_PNG = "queue_wait_tail.png"
COST_PNG = "cost_vs_wait.png"
#: Waits below this are drawn at it on the log axis (most queries of a well-sized cluster never wait).
_FLOOR_S = 0.1
_CDF_POINTS = 2000


class _Named(Protocol):
    @property
    def setting(self) -> str: ...


class SweepPoints(Protocol):
    """What the cost plot needs of a sweep (a Trino cluster's :class:`~autoscaler.sim.scenario.Sweep` or a
    Spark pool's): each family's setting name and its points."""

    @property
    def families(self) -> Mapping[str, _Named]: ...

    @property
    def points(self) -> Mapping[str, Sequence[Point]]: ...


def _time_axis(results: Mapping[str, Result]) -> tuple[float, str]:
    longest = max((float(r.duration_s) for r in results.values()), default=0.0)
    return (86400.0, "days") if longest > 2 * 86400 else (3600.0, "hours")


def plot_timeseries(
    results: Mapping[str, Result],
    path: Path,
    *,
    slots_per_worker: int | None = None,
    slo_seconds: float | None = None,
) -> None:
    """Demand, billed workers and the head-of-queue wait of every policy over a shared time axis."""
    unit, label = _time_axis(results)
    fig = Figure(figsize=(13, 9))
    ax_demand, ax_workers, ax_wait = fig.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.4, 1.2]}
    )
    first = next(iter(results.values()))
    ax_demand.plot(first.t / unit, first.arrival_rate, color="0.3", lw=0.8)
    ax_demand.set_ylabel("arrivals / s")
    ax_demand.set_title("Demand (the same load for every policy)")
    for name, r in results.items():
        line = ax_workers.plot(r.t / unit, r.billed, lw=1.0, label=name)
        ax_wait.plot(r.t / unit, np.maximum(r.queue_wait, _FLOOR_S), lw=0.8, color=line[0].get_color())
    if slots_per_worker is not None:
        needed = (first.running + first.queued) / max(1, slots_per_worker)
        ax_workers.plot(
            first.t / unit,
            needed,
            color="0.5",
            lw=0.6,
            ls=":",
            label=f"(running + queued) / {slots_per_worker} slots, {next(iter(results))}",
        )
    ax_workers.set_ylabel("workers billed")
    ax_workers.set_title("Workers (starting, active and draining)")
    ax_workers.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax_wait.set_yscale("log")
    ax_wait.set_ylabel(f"oldest queued wait, s (≤{_FLOOR_S:g} s drawn at {_FLOOR_S:g})")
    ax_wait.set_title("Queue wait of the oldest queued query")
    if slo_seconds is not None:
        ax_wait.axhline(slo_seconds, color="red", lw=0.8, ls="--", label=f"SLO {slo_seconds:g} s")
        ax_wait.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax_wait.set_xlabel(f"time ({label})")
    for ax in (ax_demand, ax_workers, ax_wait):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def plot_wait_distribution(
    results: Mapping[str, Result], path: Path, slo_seconds: float | None = None
) -> None:
    """The share of queries that waited longer than x, per policy, log-log.

    Most queries of a well-sized cluster never wait, so a plain CDF is a flat line at the top; the
    complementary CDF on log axes shows the tail the SLO is about.
    """
    fig = Figure(figsize=(9, 5.5))
    ax = fig.subplots()
    top = _FLOOR_S * 10
    bottom = 1.0
    for name, r in results.items():
        waits = np.sort(np.asarray(r.waits, dtype=np.float64))
        n = len(waits)
        if n == 0:
            continue
        xs = np.unique(np.maximum(waits, _FLOOR_S))
        if len(xs) > _CDF_POINTS:
            xs = np.unique(np.geomspace(xs[0], xs[-1], _CDF_POINTS))
        # Share of queries that waited strictly longer than x.
        share = (n - np.searchsorted(waits, xs, side="right")) / n
        xs = np.concatenate(([_FLOOR_S], xs))
        share = np.concatenate(([np.count_nonzero(waits > _FLOOR_S) / n], share))
        ax.step(
            xs, np.maximum(share, 0.5 / n), where="post", label=f"{name} (p95 {r.queue_wait_p95_s:.3g} s)"
        )
        top = max(top, float(xs[-1]))
        bottom = min(bottom, 0.5 / n)
    if slo_seconds is not None:
        ax.axvline(slo_seconds, color="red", lw=0.8, ls="--", label=f"SLO {slo_seconds:g} s")
    ax.axhline(0.05, color="0.5", lw=0.6, ls=":", label="5 % (p95)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(_FLOOR_S * 0.9, top * 1.5)
    ax.set_ylim(bottom * 0.8, 1.2)
    ax.set_xlabel("queue wait x, s")
    ax.set_ylabel("share of queries waiting longer than x")
    ax.set_title("Queue-wait tail (complementary CDF; lower and further left is better)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def plot_cost_vs_wait(
    sweep: SweepPoints, policies: Mapping[str, Result], path: Path, *, lower_bound: float | None = None
) -> None:
    """Worker-hours against p95 queue wait: one line per baseline over its settings, each policy a point,
    the lower bound a horizontal line. Cheaper is lower, faster is further left."""
    fig = Figure(figsize=(10, 6))
    ax = fig.subplots()
    for name, points in sweep.points.items():
        if not points:
            continue
        xs = [max(p.result.queue_wait_p95_s, _FLOOR_S) for p in points]
        ys = [p.result.worker_hours for p in points]
        line = ax.plot(xs, ys, marker="o", ms=3, lw=1.0, label=f"{name} ({sweep.families[name].setting})")
        for p, x, y in zip(points, xs, ys, strict=True):
            ax.annotate(f"{p.setting:g}", (x, y), fontsize=6, color=line[0].get_color())
    for name, r in policies.items():
        ax.plot([max(r.queue_wait_p95_s, _FLOOR_S)], [r.worker_hours], marker="*", ms=14, ls="", label=name)
    if lower_bound is not None:
        ax.axhline(lower_bound, color="0.3", lw=0.8, ls="--", label="lower bound")
    ax.set_xscale("log")
    ax.set_xlabel(f"p95 queue wait, s (≤{_FLOOR_S:g} s drawn at {_FLOOR_S:g})")
    ax.set_ylabel("worker-hours")
    ax.set_title("Cost against queue wait: each baseline over its setting, each policy a star")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _ratio(value: float, reference: float | None) -> str:
    if reference is None:
        return "–"
    if reference <= 0:
        return "–" if value > 0 else "1.00x"
    return f"{value / reference:.2f}x"


def _verdict(name: str, r: Result, ref: Result | None) -> str:
    parts: list[str] = []
    if ref is not None and name != REFERENCE:
        no_worse = r.queue_wait_p95_s <= ref.queue_wait_p95_s + 1e-9
        ratio = _ratio(r.worker_hours, ref.worker_hours)
        if no_worse:
            parts.append(f"{ratio} of {REFERENCE}'s worker-hours, p95 wait no worse")
        else:
            parts.append(
                f"{ratio} of {REFERENCE}'s worker-hours, p95 wait {r.queue_wait_p95_s:.3g} s vs "
                f"{ref.queue_wait_p95_s:.3g} s (worse)"
            )
    parts.append("no queries failed" if r.killed == 0 else f"{r.killed} queries failed")
    if r.slo_misses:
        parts.append(f"{r.slo_misses} SLO misses")
    return f"- **{name}**: " + "; ".join(parts) + "."


def _iso_lines(iso_slo: Mapping[str, Mapping[str, IsoSlo]]) -> list[str]:
    lines = [
        "## At the same service level",
        "",
        "Each baseline's cheapest setting whose p95 wait, SLO misses and p95 latency are no worse than the "
        "policy's (`--sweep`); cost ratio = the policy's worker-hours / that setting's (below 1: the policy "
        "is cheaper).",
        "",
        "| policy | baseline | setting | worker-hours | cost ratio | p95 wait s | SLO misses | p95 latency s "
        "| failed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for policy, found in iso_slo.items():
        for name, iso in found.items():
            if iso.setting is None:
                lines.append(f"| {policy} | {name} | none reaches it | – | – | – | – | – | – |")
                continue
            lines.append(
                f"| {policy} | {name} | {iso.setting:g} | {iso.worker_hours or 0:.1f} | "
                f"{iso.cost_ratio or 0:.2f} | {iso.queue_wait_p95_s or 0:.3g} | {iso.slo_misses} | "
                f"{iso.latency_p95_s or 0:.3g} | {iso.killed} |"
            )
    lines.append("")
    return lines


def summary_markdown(
    results: Mapping[str, Result],
    *,
    title: str,
    slo_seconds: float,
    notes: tuple[str, ...] = (),
    lower_bound: float | None = None,
    iso_slo: Mapping[str, Mapping[str, IsoSlo]] | None = None,
) -> str:
    """A short Markdown report: one table row per policy (baselines at their default setting), ratios to
    HPA-on-CPU and to the lower bound, verdicts, and the same-service-level table of a sweep."""
    ref = results.get(REFERENCE)
    lines = [f"# {title}", ""]
    lines.extend(notes)
    if notes:
        lines.append("")
    if lower_bound is not None:
        lines.append(
            f"Lower bound: {lower_bound:.1f} worker-hours (every CPU-second on a worker that appears the "
            "instant it is needed and is never idle)."
        )
        lines.append("")
    lines.append(
        "| policy | worker-hours | vs hpa-cpu | vs lower bound | p50 wait s | p95 wait s | p99 wait s | "
        f"SLO misses (>{slo_seconds:g} s) | p95 latency s | scale actions | failed |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        lines.append(
            f"| {name} | {r.worker_hours:.1f} | "
            f"{_ratio(r.worker_hours, ref.worker_hours if ref else None)} | "
            f"{_ratio(r.worker_hours, lower_bound)} | "
            f"{r.queue_wait_p50_s:.3g} | {r.queue_wait_p95_s:.3g} | {r.queue_wait_p99_s:.3g} | "
            f"{r.slo_misses} | {r.latency_p95_s:.3g} | {r.scale_actions} | {r.killed} |"
        )
    lines.append("")
    lines.extend(_verdict(name, r, ref) for name, r in results.items())
    lines.append("")
    if iso_slo is not None:
        lines.extend(_iso_lines(iso_slo))
    return "\n".join(lines)
