"""The demo's ground-truth check: what the adapter serves against what the sandbox cluster counted.

The adapter polls the coordinator's ``/metrics`` now and then and serves the last poll with the time the
poll began, truncated to whole seconds (a Kubernetes ``metav1.Time``). The emulated coordinator notes each
queued and running count it reports, with the wall time it computed it from the model: that is the
model's own count at the instant of the poll. A served value is right when it equals a count the
coordinator reported between the served timestamp (floored) and the moment the demo read the value: the
poll happened inside that window, and nothing outside it could be the poll's. With a poll every half
second and a read every quarter second the window holds one to three reports, so a stale, shifted or
transformed figure does not slip through; a window with no report at all is a mismatch too (the adapter
claims a poll the coordinator never answered).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.metric_names import TRINO_QUEUED_QUERIES, TRINO_RUNNING_QUERIES
from lab.sandbox.trino_model import TrinoCluster

__all__ = [
    "CHECKED_METRICS",
    "CountedTrinoCluster",
    "Judgement",
    "TruthLedger",
    "judge",
    "parse_served",
]

#: Served metric → the coordinator count it must equal.
CHECKED_METRICS = (TRINO_QUEUED_QUERIES, TRINO_RUNNING_QUERIES)
_KEEP_SECONDS = 120.0


class CountedTrinoCluster(TrinoCluster):
    """A Trino cluster model that notes every queued/running count it reports, with the wall time.

    The sandbox's HTTP faces read the counts through :meth:`queued_queries` and :meth:`running_queries`;
    the demo reads its own figures through :meth:`model_queued` and :meth:`model_running`, which note
    nothing, so the notes are exactly what the coordinator served.
    """

    def __init__(self, *args: Any, wall: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wall = wall
        self.reported: dict[str, deque[tuple[float, float]]] = {m: deque() for m in CHECKED_METRICS}

    def _note(self, metric: str, value: int) -> None:
        now = self.wall()
        notes = self.reported[metric]
        notes.append((now, float(value)))
        while notes and notes[0][0] < now - _KEEP_SECONDS:
            notes.popleft()

    def queued_queries(self) -> int:
        value = super().queued_queries()
        self._note(TRINO_QUEUED_QUERIES, value)
        return value

    def running_queries(self) -> int:
        value = super().running_queries()
        self._note(TRINO_RUNNING_QUERIES, value)
        return value

    def model_queued(self) -> int:
        return super().queued_queries()

    def model_running(self) -> int:
        return super().running_queries()


@dataclass(frozen=True, slots=True)
class Judgement:
    """One served value held against the coordinator's reports of ``[stamp, read_at]``."""

    metric: str
    served: float
    stamp: float
    read_at: float
    reported: tuple[float, ...]

    @property
    def ok(self) -> bool:
        return any(math.isclose(self.served, v, abs_tol=1e-6) for v in self.reported)


def judge(
    metric: str, served: float, stamp: float, read_at: float, notes: Sequence[tuple[float, float]]
) -> Judgement:
    """Compare ``served`` (timestamped ``stamp``, whole seconds, read at ``read_at``) with ``notes``."""
    window = tuple(v for t, v in notes if stamp - 1e-3 <= t <= read_at + 1e-3)
    return Judgement(metric, served, stamp, read_at, window)


def parse_served(doc: Any) -> tuple[float, float]:
    """``(sum of the values, timestamp)`` of an ExternalMetricValueList; ValueError when malformed."""
    from core.quantity import milli_value

    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise ValueError("no items in the answer")
    total = sum(milli_value(str(item["value"])) for item in items) / 1000.0
    stamps = [datetime.fromisoformat(str(item["timestamp"]).replace("Z", "+00:00")) for item in items]
    return total, min(s.timestamp() for s in stamps)


@dataclass
class TruthLedger:
    """Every check of the run: counts, and the mismatches themselves (the first 50)."""

    checks: int = 0
    nonzero: int = 0
    unavailable: int = 0
    reported_in_window: int = 0
    mismatches: list[Judgement] = field(default_factory=list)
    mismatch_count: int = 0
    by_metric: dict[str, int] = field(default_factory=dict)

    def add(self, j: Judgement) -> None:
        self.checks += 1
        self.by_metric[j.metric] = self.by_metric.get(j.metric, 0) + 1
        self.reported_in_window += len(j.reported)
        if j.served:
            self.nonzero += 1
        if not j.ok:
            self.mismatch_count += 1
            if len(self.mismatches) < 50:
                self.mismatches.append(j)

    def summary(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "checks_by_metric": dict(self.by_metric),
            "checks_of_nonzero_values": self.nonzero,
            "mean_reports_per_window": round(self.reported_in_window / self.checks, 3) if self.checks else 0,
            "unavailable_answers": self.unavailable,
            "mismatches": self.mismatch_count,
            "first_mismatches": [
                {
                    "metric": j.metric,
                    "served": j.served,
                    "stamp": j.stamp,
                    "read_at": round(j.read_at, 3),
                    "coordinator_reported": list(j.reported),
                }
                for j in self.mismatches
            ],
        }
