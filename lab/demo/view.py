"""The demo's live view: a compact block redrawn in place, or one line per update for scripts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["ViewState", "render_block", "render_line"]

_REASON_WIDTH = 96


class _Sample(Protocol):
    @property
    def queued(self) -> int: ...
    @property
    def running(self) -> int: ...
    @property
    def head_wait(self) -> float: ...
    @property
    def desired(self) -> int: ...
    @property
    def current(self) -> int: ...
    @property
    def billed(self) -> int: ...
    @property
    def draining(self) -> int: ...
    @property
    def spark_remaining(self) -> int: ...
    @property
    def spark_waiting_apps(self) -> int: ...
    @property
    def spark_active_apps(self) -> int: ...
    @property
    def spark_desired(self) -> int: ...
    @property
    def spark_current(self) -> int: ...
    @property
    def spark_decommissioning(self) -> int: ...


@dataclass(frozen=True)
class ViewState:
    """Everything one redraw shows."""

    trace: str
    trace_epoch: float
    trace_seconds: float
    trace_span: float
    wall: float
    wall_total: float
    cluster_seconds: float
    sample: _Sample | None
    done: int
    killed: int
    trino_key: str
    spark_key: str
    reasons: dict[str, str] = field(default_factory=dict)
    decided: dict[str, tuple[int, int]] = field(default_factory=dict)
    drains_started: int = 0
    drains_finished: int = 0
    scale_ups: int = 0
    scale_downs: int = 0
    spark_decommissions: int = 0
    spark_decommissions_finished: int = 0
    spark_scale_ups: int = 0
    spark_tasks_lost: int = 0
    apps_done: int = 0
    truth_checks: int = 0
    truth_mismatches: int = 0


def _clip(text: str, width: int = _REASON_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _trace_clock(state: ViewState) -> str:
    at = time.gmtime(state.trace_epoch + min(state.trace_seconds, state.trace_span))
    return time.strftime("%a %H:%M UTC", at)


def _decision(state: ViewState, key: str) -> str:
    reason = state.reasons.get(key, "no pass yet")
    if key in state.decided:
        current, desired = state.decided[key]
        arrow = f"{current} → {desired}" if desired != current else f"hold {current}"
        return _clip(f"{arrow}: {reason}")
    return _clip(reason)


def render_block(state: ViewState) -> list[str]:
    """The lines of one redraw."""
    s = state.sample
    progress = f"{state.trace_seconds / 3600:5.1f} h of {state.trace_span / 3600:.3g} h"
    lines = [
        f"queuescale demo · {state.trace} · trace {_trace_clock(state)} ({progress}) · "
        f"wall {state.wall:4.0f}/{state.wall_total:.0f} s · cluster {state.cluster_seconds:5.0f} s",
    ]
    if s is None:
        lines.append("starting…")
        return lines
    lines += [
        f"Trino  queries  {s.queued:4d} queued {s.running:4d} running {state.done:6d} done "
        f"{state.killed:3d} killed   oldest wait {s.head_wait:5.1f} s",
        f"       workers  desired {s.desired:2d}  current {s.current:2d}  draining {s.draining:2d}   "
        f"scale-ups {state.scale_ups}  scale-downs {state.scale_downs}  "
        f"drains started {state.drains_started}  finished {state.drains_finished}",
        f"       {state.trino_key}: {_decision(state, state.trino_key)}",
        f"Spark  tasks    {s.spark_remaining:4d} remaining  apps {s.spark_active_apps:3d} active "
        f"{s.spark_waiting_apps:3d} waiting {state.apps_done:5d} done   tasks lost {state.spark_tasks_lost}",
        f"       workers  desired {s.spark_desired:2d}  current {s.spark_current:2d}  "
        f"decommissioning {s.spark_decommissioning:2d}   scale-ups {state.spark_scale_ups}  "
        f"decommissions started {state.spark_decommissions}  finished {state.spark_decommissions_finished}",
        f"       {state.spark_key}: {_decision(state, state.spark_key)}",
        f"Truth  {state.truth_checks} adapter answers checked against the coordinator's counts, "
        f"{state.truth_mismatches} mismatches",
    ]
    return lines


def render_line(state: ViewState) -> str:
    """One line for ``--no-ui``."""
    s = state.sample
    head = f"[{state.wall:5.1f}s trace {_trace_clock(state)}]"
    if s is None:
        return f"{head} starting"
    return (
        f"{head} trino q={s.queued} run={s.running} done={state.done} killed={state.killed} "
        f"workers {s.current}/{s.desired} draining={s.draining} ups={state.scale_ups} "
        f"drains={state.drains_started}/{state.drains_finished} | spark rem={s.spark_remaining} "
        f"workers {s.spark_current}/{s.spark_desired} decom={s.spark_decommissioning} "
        f"lost={state.spark_tasks_lost} | truth {state.truth_checks} checks {state.truth_mismatches} bad"
    )
