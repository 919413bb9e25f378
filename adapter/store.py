"""The sample cache: the last complete collection of every source, and the rules for serving it.

Rules, in order, for a request of ``metric`` in ``namespace`` with a selector:
1. a metric no registered source serves, or none serves in that namespace, is ``NotFound``;
2. sources whose identity labels (``cluster``, ``pool``) the selector excludes are not asked; if the
   selector excludes all of them the request names something that does not exist: ``NotFound``;
3. if any asked source has no collection yet, or one older than its freshness bound: ``Unavailable``
   (503), so the HPA holds its replicas instead of acting on a stale or partial figure;
4. the matching series are served; when a fresh source has none, the metric is idle and answers one
   item of value 0, because an empty list makes the HPA refuse to scale down; a metric with no value
   without a series (``MetricSpec.zero_when_absent`` False: a mean, a configured limit) answers an empty
   list instead, on which the HPA holds ("no metrics returned from external metrics API").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from adapter.samples import Collection, Sample
from core.catalog import Catalog
from core.errors import NotFound, Unavailable
from core.selectors import Selector

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Item:
    """One value served for a request, with the time its source read it."""

    metric: str
    labels: Mapping[str, str]
    value: float
    timestamp: float


@dataclass(slots=True)
class _Series:
    """The samples of one metric from one collection, with an inverted index for equality selectors."""

    samples: list[Sample] = field(default_factory=list)
    postings: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def add(self, sample: Sample) -> None:
        index = len(self.samples)
        self.samples.append(sample)
        for pair in sample.labels.items():
            self.postings.setdefault(pair, []).append(index)

    def select(self, selector: Selector, equality: Mapping[str, str]) -> Iterable[Sample]:
        if not equality:
            return (s for s in self.samples if selector.matches(s.labels))
        # The shortest posting list bounds the scan; the full selector still decides.
        shortest: list[int] | None = None
        for pair in equality.items():
            posting = self.postings.get(pair)
            if posting is None:
                return ()
            if shortest is None or len(posting) < len(shortest):
                shortest = posting
        assert shortest is not None
        return (self.samples[i] for i in shortest if selector.matches(self.samples[i].labels))


@dataclass(slots=True)
class SourceState:
    """What the store knows of one source."""

    name: str
    identity: Mapping[str, str]
    metrics: frozenset[str]
    namespaces: frozenset[str]
    max_age: float
    collected_at: float | None = None
    series: dict[str, _Series] = field(default_factory=dict)
    series_count: int = 0
    attempts: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None

    def serves(self, metric: str, namespace: str) -> bool:
        return metric in self.metrics and (not self.namespaces or namespace in self.namespaces)

    def is_fresh(self, now: float) -> bool:
        return self.collected_at is not None and now - self.collected_at <= self.max_age


class SampleStore:
    """Holds the latest collection of each source; readers never wait on a backend."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._sources: dict[str, SourceState] = {}

    def register(
        self,
        name: str,
        *,
        identity: Mapping[str, str],
        metrics: Sequence[str],
        namespaces: Sequence[str] = (),
        max_age: float,
    ) -> None:
        if name in self._sources:
            raise ValueError(f"two sources are named {name!r}")
        unknown = sorted(m for m in metrics if m not in self.catalog)
        if unknown:
            raise ValueError(f"source {name!r} serves metrics missing from the catalog: {unknown}")
        self._sources[name] = SourceState(
            name=name,
            identity=dict(identity),
            metrics=frozenset(metrics),
            namespaces=frozenset(namespaces),
            max_age=max_age,
        )

    def put(self, collection: Collection) -> None:
        state = self._sources[collection.source]
        series: dict[str, _Series] = {}
        dropped = 0
        for sample in collection.samples:
            if sample.metric not in state.metrics or not sample.is_valid():
                dropped += 1
                continue
            bucket = series.get(sample.metric)
            if bucket is None:
                bucket = series[sample.metric] = _Series()
            bucket.add(sample)
        if dropped:
            log.warning("source %s: dropped %d invalid or unexpected samples", state.name, dropped)
        # Data first, then its time: a reader on another thread never sees a new time with old data.
        state.series = series
        state.series_count = len(collection.samples) - dropped
        state.collected_at = collection.collected_at
        state.attempts += 1
        state.consecutive_failures = 0
        state.last_error = None

    def fail(self, source: str, error: str) -> None:
        """Record a failed poll; the previous data stays until its freshness bound runs out."""
        state = self._sources[source]
        state.attempts += 1
        state.consecutive_failures += 1
        state.last_error = error

    def sources(self) -> list[SourceState]:
        return list(self._sources.values())

    def all_attempted(self) -> bool:
        """True once every source has finished its first poll, successful or not."""
        return all(s.attempts > 0 for s in self._sources.values())

    def served_metrics(self) -> list[str]:
        served = set().union(*(s.metrics for s in self._sources.values())) if self._sources else set()
        return sorted(served)

    def asked(self, metric: str, namespace: str, selector: Selector, now: float) -> list[SourceState]:
        """The fresh sources a request reads, or the NotFound/Unavailable it must answer (rules 1-3)."""
        candidates = [s for s in self._sources.values() if s.serves(metric, namespace)]
        if not candidates:
            if any(metric in s.metrics for s in self._sources.values()):
                raise NotFound(f'metric "{metric}" is not served in namespace "{namespace}"')
            raise NotFound(f'the server could not find the metric "{metric}"')
        asked = [s for s in candidates if selector.restricted_to(s.identity).matches(s.identity)]
        if not asked:
            raise NotFound(f'no source of metric "{metric}" matches the selector "{selector}"')
        stale = [s.name for s in asked if not s.is_fresh(now)]
        if stale:
            raise Unavailable(f'metric "{metric}" has no fresh data (source {", ".join(stale)})')
        return asked

    def items(self, metric: str, selector: Selector, asked: Sequence[SourceState]) -> list[Item]:
        """The series of ``asked`` sources that match, or one idle zero where a zero means none (rule 4)."""
        items: list[Item] = []
        for state in asked:
            # Read once: the poller may swap in a newer collection while this runs.
            series, collected_at = state.series.get(metric), state.collected_at
            if series is None or collected_at is None:
                continue
            # Identity labels were matched in ``asked`` and win over whatever a sample claims, so
            # samples are stored as the source gave them and only the served ones get merged labels.
            identity = state.identity
            rest = selector.restricted_to([r.key for r in selector.requirements if r.key not in identity])
            items.extend(
                Item(metric, {**s.labels, **identity}, s.value, collected_at)
                for s in series.select(rest, rest.equality_labels())
            )
        if items or not self.idle_zero(metric):
            return items
        oldest = min(s.collected_at for s in asked if s.collected_at is not None)
        return [Item(metric, selector.equality_labels(), 0.0, oldest)]

    def idle_zero(self, metric: str) -> bool:
        """Whether ``metric`` with no series is served as one 0 (rule 4) rather than as nothing."""
        spec = self.catalog.get(metric)
        return spec is None or spec.zero_when_absent

    def query(self, metric: str, namespace: str, selector: Selector, now: float) -> list[Item]:
        return self.items(metric, selector, self.asked(metric, namespace, selector, now))
