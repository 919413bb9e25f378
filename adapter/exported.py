"""The cached catalog samples as Prometheus gauges on the adapter's own ``/metrics``.

The HPA reads the catalog on external.metrics.k8s.io; dashboards and alerts need the same figures as
Prometheus series. Each catalog metric ``m`` is exported as the gauge ``queuescale_m`` with the labels the
API serves (the sample's labels plus the source's identity label, ``cluster`` or ``pool``). The prefix keeps
the copy apart from the series a Prometheus source reads, so an operator's query over a raw name never
picks up the adapter's own re-export of it.

What is exported follows what the API answers, read at scrape time:
- only sources within their freshness bound are exported; a stale source's series vanish (Prometheus
  marks them stale) while ``queuescale_adapter_source_up`` says why;
- a fresh source with no series for a metric it serves exports one ``0`` carrying only its identity
  labels, the figure an HPA reads for an idle metric, so panels show 0 rather than "no data"; not for a
  metric whose absence is no value (a mean, a limit: ``MetricSpec.zero_when_absent``), which the API does
  not serve as 0 either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from adapter.store import SampleStore

log = logging.getLogger(__name__)

PREFIX = "queuescale_"
# The adapter's and the controller's own families live under these names; an operator-defined metric
# whose export would land there is left out rather than clash with them.
RESERVED = ("queuescale_adapter_", "queuescale_controller_")


def exported_name(metric: str) -> str:
    """The Prometheus name under which the catalog metric ``metric`` is exported."""
    return PREFIX + metric


class CatalogExporter(Collector):
    """Exports the store's fresh samples; registered by ``SelfMetrics.watch_store``."""

    def __init__(self, store: SampleStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self.skipped = frozenset(
            spec.name for spec in store.catalog if exported_name(spec.name).startswith(RESERVED)
        )
        for name in sorted(self.skipped):
            log.warning("metric %s is not exported to Prometheus: %s is reserved", name, exported_name(name))

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        families: dict[str, Metric] = {}
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        for state in self.store.sources():
            # Read once: the poller thread may swap in a newer collection meanwhile.
            series, collected_at = state.series, state.collected_at
            if collected_at is None or now - collected_at > state.max_age:
                continue
            for metric in sorted(state.metrics - self.skipped):
                family = families.get(metric)
                if family is None:
                    family = families[metric] = self._family(metric)
                bucket = series.get(metric)
                if bucket is not None and bucket.samples:
                    rows = [({**s.labels, **state.identity}, s.value) for s in bucket.samples]
                elif self.store.idle_zero(metric):
                    rows = [(dict(state.identity), 0.0)]
                else:
                    rows = []
                for labels, value in rows:
                    # Two sources claiming one series (say a Trino source and a Prometheus preset for the
                    # same cluster) would make the scrape carry a duplicate: the first one wins.
                    key = (metric, tuple(sorted(labels.items())))
                    if key in seen:
                        continue
                    seen.add(key)
                    family.add_sample(family.name, labels, value)
        for metric in sorted(families):
            yield families[metric]

    def _family(self, metric: str) -> Metric:
        spec = self.store.catalog.get(metric)
        if spec is None:
            return Metric(exported_name(metric), metric, "gauge")
        doc = f"{spec.help} Unit: {spec.unit}." if spec.unit else spec.help
        return Metric(exported_name(metric), doc, "gauge")
