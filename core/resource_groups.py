"""Trino resource groups held at their concurrency limit: which queued queries more workers would start.

A group is *limit-bound* when it has a queue and runs at least its ``hardConcurrencyLimit``: its queries
stay queued however many workers join. Counts are read from leaf groups (a parent's counts include its
children's); a leaf's queued queries are held when the leaf or any listed ancestor is limit-bound. The
adapter serves the rest as ``trino_capacity_queued_queries`` and the controller leaves the held ones out
of its sizing — both through :func:`split_queued`, so the HPA and the controller see one figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["GroupCounts", "QueueSplit", "at_limit", "split_queued"]


def at_limit(queued: int, running: int, hard_concurrency_limit: int) -> bool:
    """True when a group has a queue and runs at least its ``hardConcurrencyLimit``."""
    return queued > 0 and running >= hard_concurrency_limit


@dataclass(frozen=True, slots=True)
class GroupCounts:
    """One group as the formula needs it: its path (``("global", "adhoc")``), counts, limit and whether
    it is a leaf (the caller knows: Trino lists sub-groups, the controller sees which ids nest)."""

    path: tuple[str, ...]
    queued: int
    running: int
    hard_concurrency_limit: int
    leaf: bool

    @property
    def limit_bound(self) -> bool:
        return at_limit(self.queued, self.running, self.hard_concurrency_limit)


@dataclass(frozen=True, slots=True)
class QueueSplit:
    """Queued queries in leaf groups: ``capacity`` that more workers would start, ``held`` that a
    concurrency limit keeps queued."""

    capacity: int
    held: int


def split_queued(groups: Sequence[GroupCounts]) -> QueueSplit:
    """Split the leaves' queued queries by whether a limit-bound group on their path holds them."""
    bound = {g.path for g in groups if g.limit_bound}
    capacity = held = 0
    for group in groups:
        if not group.leaf or group.queued == 0:
            continue
        if any(group.path[:n] in bound for n in range(1, len(group.path) + 1)):
            held += group.queued
        else:
            capacity += group.queued
    return QueueSplit(capacity, held)
