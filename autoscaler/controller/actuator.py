"""What every actuator offers the reconcile loop, and what it reports back.

An actuator owns one target (a Trino worker workload, a Spark worker pool, a spark-operator application).
The loop calls :meth:`Actuator.observe` before deciding and :meth:`Actuator.apply` with the decision; a
scale-down that needs a drain or a decommission is carried out over several passes, each ``apply`` doing
what can be done without waiting (start drains, check them, lower replicas when the leavers are idle).
Progress that must survive a controller restart is kept on the cluster (pod annotations), never only in
memory, so a restarted controller resumes a drain instead of starting over or scaling needlessly.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "Actuator",
    "ActuatorError",
    "ActuatorEvent",
    "DrainEnd",
    "Outcome",
    "TargetState",
    "format_time",
    "parse_time",
    "spread_interval",
]

EventType = Literal["Normal", "Warning"]

#: Annotation a drain writes on a leaving pod: the Unix time the drain started, so a restarted controller
#: resumes the drain with its original deadline.
DRAIN_STARTED_ANNOTATION = "queuescale.io/drain-started"
#: The Kubernetes annotation a ReplicaSet ranks pods by on scale-down (lowest cost goes first).
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def format_time(unix_seconds: float) -> str:
    """A Unix time as the drain annotations carry it (milliseconds)."""
    return f"{unix_seconds:.3f}"


def parse_time(text: str | None) -> float | None:
    """An annotation's Unix time; None when absent or not a finite number."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class ActuatorError(Exception):
    """A call the actuator needed failed; ``operation`` names it for the actuator-errors metric."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(message)
        self.operation = operation


@dataclass(frozen=True, slots=True)
class TargetState:
    """The target as observed now.

    ``replicas`` is what the engine calls current (the scale subresource's ``spec.replicas``, workers still
    draining included); ``ready`` the replicas ready to take work; ``draining`` those being drained or
    decommissioned, still counted in ``replicas``. ``found`` False: the target does not exist (``reason``
    says why) and the loop must not act on it.
    """

    replicas: int
    ready: int
    draining: int = 0
    found: bool = True
    reason: str = ""
    selector: str = ""


@dataclass(frozen=True, slots=True)
class ActuatorEvent:
    """One thing worth a Kubernetes Event on the policy (and a log line)."""

    reason: str
    message: str
    type: EventType = "Normal"


@dataclass(frozen=True, slots=True)
class DrainEnd:
    """A drain or decommission that ended in this pass, for the drain metrics."""

    outcome: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one ``apply`` did. ``replicas`` is the count written to the target (None: unchanged)."""

    replicas: int | None = None
    draining: int = 0
    drains_started: int = 0
    drains_ended: tuple[DrainEnd, ...] = ()
    events: tuple[ActuatorEvent, ...] = ()
    errors: tuple[ActuatorError, ...] = ()
    detail: str = ""
    written: dict[str, object] = field(default_factory=dict)
    """The objects/patches written this pass, keyed by a short description (the tests validate them)."""


class Actuator(Protocol):
    async def observe(self, now: float) -> TargetState: ...

    async def apply(self, desired: int, now: float, *, dry_run: bool = False) -> Outcome:
        """Move the target toward ``desired`` replicas without losing work; with ``dry_run`` change nothing
        and say in ``detail`` what would have been done."""
        ...

    async def close(self) -> None: ...


def spread_interval(seconds: float, *identity: str) -> float:
    """``seconds`` lengthened by up to a half, by a stable hash of ``identity``: the periodic checks of
    targets that started in the same pass drift into different passes instead of all landing together."""
    return seconds * (1.0 + zlib.crc32("/".join(identity).encode()) / 2**33)
