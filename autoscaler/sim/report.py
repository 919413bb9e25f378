"""Plots and a Markdown summary of simulator runs.

Figures are built on :class:`matplotlib.figure.Figure` directly, not pyplot: PNGs are rendered by the Agg
canvas, no display or global backend state is involved, and nothing needs closing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from autoscaler.sim.run import Result

__all__ = ["ORACLE", "REFERENCE", "plot_timeseries", "plot_wait_distribution", "summary_markdown"]

REFERENCE = "hpa-cpu"
ORACLE = "oracle"
#: Waits below this are drawn at it on the log axis (most queries of a well-sized cluster never wait).
_FLOOR_S = 0.1
_CDF_POINTS = 2000


def _time_axis(results: Mapping[str, Result]) -> tuple[float, str]:
    longest = max((float(r.duration_s) for r in results.values()), default=0.0)
    return (86400.0, "days") if longest > 2 * 86400 else (3600.0, "hours")


def plot_timeseries(
    results: Mapping[str, Result], path: Path, *, slots_per_worker: int, slo_seconds: float | None = None
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


def _ratio(value: float, reference: float | None) -> str:
    if reference is None:
        return "–"
    if reference <= 0:
        return "–" if value > 0 else "1.00x"
    return f"{value / reference:.2f}x"


def _verdict(name: str, r: Result, ref: Result | None, oracle: Result | None) -> str:
    parts: list[str] = []
    if ref is not None and name != REFERENCE:
        cheaper = ref.worker_hours > 0 and r.worker_hours <= 0.8 * ref.worker_hours
        no_worse = r.queue_wait_p95_s <= ref.queue_wait_p95_s + 1e-9
        ratio = _ratio(r.worker_hours, ref.worker_hours)
        if cheaper and no_worse:
            parts.append(f"{ratio} of {REFERENCE}'s worker-hours at an equal or lower p95 wait (target met)")
        elif no_worse:
            parts.append(f"{ratio} of {REFERENCE}'s worker-hours, p95 wait no worse")
        else:
            parts.append(
                f"{ratio} of {REFERENCE}'s worker-hours, p95 wait {r.queue_wait_p95_s:.3g} s vs "
                f"{ref.queue_wait_p95_s:.3g} s (worse)"
            )
    if oracle is not None and name != ORACLE:
        within = oracle.worker_hours > 0 and r.worker_hours <= 1.25 * oracle.worker_hours
        parts.append(
            f"{_ratio(r.worker_hours, oracle.worker_hours)} of the oracle"
            + (" (within 1.25x)" if within else "")
        )
    parts.append("no queries killed" if r.killed == 0 else f"{r.killed} queries killed")
    if r.slo_misses:
        parts.append(f"{r.slo_misses} SLO misses")
    return f"- **{name}**: " + "; ".join(parts) + "."


def summary_markdown(
    results: Mapping[str, Result], *, title: str, slo_seconds: float, notes: tuple[str, ...] = ()
) -> str:
    """A short Markdown report: one table row per policy, ratios to HPA-on-CPU and the oracle, verdicts."""
    ref = results.get(REFERENCE)
    oracle = results.get(ORACLE)
    lines = [f"# {title}", ""]
    lines.extend(notes)
    if notes:
        lines.append("")
    lines.append(
        "| policy | worker-hours | vs hpa-cpu | vs oracle | p50 wait s | p95 wait s | p99 wait s | "
        f"SLO misses (>{slo_seconds:g} s) | scale actions | killed |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        lines.append(
            f"| {name} | {r.worker_hours:.1f} | "
            f"{_ratio(r.worker_hours, ref.worker_hours if ref else None)} | "
            f"{_ratio(r.worker_hours, oracle.worker_hours if oracle else None)} | "
            f"{r.queue_wait_p50_s:.3g} | {r.queue_wait_p95_s:.3g} | {r.queue_wait_p99_s:.3g} | "
            f"{r.slo_misses} | {r.scale_actions} | {r.killed} |"
        )
    lines.append("")
    lines.extend(_verdict(name, r, ref, oracle) for name, r in results.items())
    lines.append("")
    return "\n".join(lines)
