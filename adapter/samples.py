"""The unit of data that flows from sources to the cache and on to both consumers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Sample:
    """One series value of one catalog metric, as a source read it."""

    metric: str
    labels: Mapping[str, str]
    value: float

    def is_valid(self) -> bool:
        """NaN, infinities and negative counts must never reach an HPA."""
        return math.isfinite(self.value) and self.value >= 0


@dataclass(frozen=True, slots=True)
class Collection:
    """Everything one source produced in one successful poll."""

    source: str
    collected_at: float
    samples: tuple[Sample, ...] = field(default_factory=tuple)
