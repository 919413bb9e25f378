"""Comparing at the same service level: a baseline's cheapest setting that serves queries as well as a policy.

A baseline *meets* a policy's service level when, on the same load, its p95 queue wait is no longer
(:data:`WAIT_SLACK_S` of slack, in the baseline's favour), it misses the SLO no more often, and its p95
query latency (wait + run time) is no longer (:data:`LATENCY_SLACK` relative slack, in its favour): in
Trino a cluster that is too small shows first as slower queries, before anything queues, so a setting that
only keeps the queue short by letting every query take longer does not serve as well.

:func:`cheapest_meeting` takes the sweep's points, picks the cheapest one that meets the level, then
bisects between it and the next setting toward less capacity (``refine`` more runs), so the answer is not
an artefact of a coarse grid. ``cost_ratio`` = the policy's worker-hours / that setting's; None when no
setting of the sweep meets the level at any cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from autoscaler.sim.run import Result

__all__ = ["LATENCY_SLACK", "WAIT_SLACK_S", "IsoSlo", "Point", "Tunable", "cheapest_meeting", "meets"]

#: Seconds of p95 queue wait a baseline may exceed the policy by and still count as no worse.
WAIT_SLACK_S = 0.5
#: Relative p95 latency a baseline may exceed the policy by and still count as no worse.
LATENCY_SLACK = 0.02


class Tunable(Protocol):
    """What the search needs of a baseline family (:class:`~autoscaler.sim.baselines.Family` of a Trino
    cluster's or a Spark pool's policies): its name, which way its setting buys capacity, whole numbers."""

    @property
    def name(self) -> str: ...

    @property
    def more_capacity(self) -> Literal["lower", "higher"]: ...

    @property
    def integer(self) -> bool: ...

    @property
    def beyond(self) -> Callable[[float], float | None] | None: ...


@dataclass(frozen=True, slots=True)
class Point:
    """One setting of a baseline and its run."""

    setting: float
    result: Result


def meets(candidate: Result, reference: Result) -> bool:
    """True when ``candidate`` serves queries at least as well as ``reference`` (see the module docstring)."""
    return (
        candidate.queue_wait_p95_s <= reference.queue_wait_p95_s + WAIT_SLACK_S
        and candidate.slo_misses <= reference.slo_misses
        and candidate.latency_p95_s <= reference.latency_p95_s * (1.0 + LATENCY_SLACK) + 1e-9
    )


@dataclass(frozen=True, slots=True)
class IsoSlo:
    """A baseline's cheapest setting at a policy's service level (``setting`` None: none found)."""

    baseline: str
    setting: float | None
    worker_hours: float | None
    cost_ratio: float | None
    queue_wait_p95_s: float | None
    slo_misses: int | None
    latency_p95_s: float | None
    killed: int | None
    runs: int

    def as_json(self) -> dict[str, Any]:
        def num(x: float | None) -> float | None:
            return None if x is None else round(float(x), 6)

        return {
            "setting": num(self.setting),
            "worker_hours": num(self.worker_hours),
            "cost_ratio": num(self.cost_ratio),
            "queue_wait_p95_s": num(self.queue_wait_p95_s),
            "slo_misses": self.slo_misses,
            "latency_p95_s": num(self.latency_p95_s),
            "killed": self.killed,
            "runs": self.runs,
        }


def _toward_less(family: Tunable, setting: float, settings: Sequence[float]) -> float | None:
    """The next setting of ``settings`` that buys less capacity than ``setting``, None at the end."""
    if family.more_capacity == "lower":
        above = [s for s in settings if s > setting]
        return min(above) if above else None
    below = [s for s in settings if s < setting]
    return max(below) if below else None


def cheapest_meeting(
    family: Tunable,
    points: Sequence[Point],
    reference: Result,
    run: Callable[[float], Result],
    *,
    refine: int = 3,
    extend: int = 4,
) -> tuple[IsoSlo, list[Point]]:
    """The cheapest setting of ``family`` meeting ``reference``'s level, and the extra points it ran.

    When the sweep's cheapest setting meets the level, up to ``extend`` settings past it
    (``family.beyond``) are tried first; then the gap toward the first that fails is bisected ``refine``
    times."""
    extra: list[Point] = []
    meeting = [p for p in points if meets(p.result, reference)]
    if not meeting:
        return IsoSlo(family.name, None, None, None, None, None, None, None, len(points)), extra
    best = min(meeting, key=lambda p: (p.result.worker_hours, p.setting))
    # Bisect toward less capacity: the level is (nearly) monotone in the setting, the cost is.
    good = best.setting
    bad = _toward_less(family, best.setting, [p.setting for p in points])
    # The sweep's cheapest end still meets the level: a cheaper setting may too, so look past the end
    # (without this the ratio would flatter the policy) until a setting fails or the family's range ends.
    for _ in range(extend if bad is None and family.beyond is not None else 0):
        assert family.beyond is not None
        further = family.beyond(good)
        if further is None:
            break
        result = run(further)
        point = Point(further, result)
        extra.append(point)
        if not meets(result, reference):
            bad = further
            break
        good = further
        if result.worker_hours < best.result.worker_hours:
            best = point
    for _ in range(refine if bad is not None else 0):
        assert bad is not None
        mid = (good + bad) / 2.0
        if family.integer:
            mid = float(math.floor(mid) if family.more_capacity == "higher" else math.ceil(mid))
            if mid in (good, bad):
                break
        result = run(mid)
        point = Point(mid, result)
        extra.append(point)
        if meets(result, reference):
            good = mid
            if result.worker_hours < best.result.worker_hours:
                best = point
        else:
            bad = mid
    r = best.result
    ratio = reference.worker_hours / r.worker_hours if r.worker_hours > 0 else None
    iso = IsoSlo(
        family.name,
        best.setting,
        r.worker_hours,
        ratio,
        r.queue_wait_p95_s,
        r.slo_misses,
        r.latency_p95_s,
        r.killed,
        len(points) + len(extra),
    )
    return iso, extra
