"""The adapter's own Prometheus metrics, in a registry of its own (no process-global state)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from adapter.exported import CatalogExporter

if TYPE_CHECKING:
    from adapter.bytecache import ByteBoundedCache
    from adapter.connections import ConnectionGuard
    from adapter.store import SampleStore

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _StoreCollector(Collector):
    """Ages and series counts are read at scrape time so they are never stale themselves."""

    def __init__(self, store: SampleStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        age = GaugeMetricFamily(
            "queuescale_adapter_sample_age_seconds",
            "Seconds since the source's last successful collection (absent before the first).",
            labels=["source"],
        )
        up = GaugeMetricFamily(
            "queuescale_adapter_source_up",
            "1 when the source's data is within its freshness bound.",
            labels=["source"],
        )
        series = GaugeMetricFamily(
            "queuescale_adapter_series", "Series held from the source's last collection.", labels=["source"]
        )
        bound = GaugeMetricFamily(
            "queuescale_adapter_freshness_bound_seconds",
            "Age beyond which the source's metrics answer 503.",
            labels=["source"],
        )
        for state in self.store.sources():
            if state.collected_at is not None:
                age.add_metric([state.name], now - state.collected_at)
            up.add_metric([state.name], 1.0 if state.is_fresh(now) else 0.0)
            series.add_metric([state.name], float(state.series_count))
            bound.add_metric([state.name], state.max_age)
        yield age
        yield up
        yield series
        yield bound


class _ConnectionCollector(Collector):
    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "queuescale_adapter_connections",
            "Open connections of the API server by state (handshake, headers, idle, busy).",
            labels=["state"],
        )
        for state, count in sorted(self.guard.counts().items()):
            family.add_metric([state], float(count))
        yield family


class _CacheCollector(Collector):
    def __init__(self, caches: dict[str, ByteBoundedCache[Any, Any]]) -> None:
        self.caches = caches

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        size = GaugeMetricFamily(
            "queuescale_adapter_cache_bytes", "Estimated memory held by a cache, in bytes.", labels=["cache"]
        )
        budget = GaugeMetricFamily(
            "queuescale_adapter_cache_capacity_bytes", "The byte budget of a cache.", labels=["cache"]
        )
        evicted = CounterMetricFamily(
            "queuescale_adapter_cache_evictions",
            "Entries dropped from a cache to stay within its byte budget.",
            labels=["cache"],
        )
        for name, cache in sorted(self.caches.items()):
            size.add_metric([name], float(cache.bytes))
            budget.add_metric([name], float(cache.capacity_bytes))
            evicted.add_metric([name], float(cache.evictions))
        yield size
        yield budget
        yield evicted


class SelfMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_duration = Histogram(
            "queuescale_adapter_request_duration_seconds",
            "Time to answer an API request, by route and status code.",
            ["route", "code"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.poll_duration = Histogram(
            "queuescale_adapter_source_poll_duration_seconds",
            "Time one poll of a source took, successful or not.",
            ["source"],
            buckets=_POLL_BUCKETS,
            registry=self.registry,
        )
        self.poll_errors = Counter(
            "queuescale_adapter_source_poll_errors",
            "Failed polls of a source, by reason (error, timeout, bug).",
            ["source", "reason"],
            registry=self.registry,
        )
        self.connections_closed = Counter(
            "queuescale_adapter_connections_closed",
            "Connections the server closed or refused on its limits, by reason (header_timeout, "
            "idle_timeout, headers_too_large, evicted, refused).",
            ["reason"],
            registry=self.registry,
        )

    def watch_caches(self, caches: dict[str, ByteBoundedCache[Any, Any]]) -> None:
        self.registry.register(_CacheCollector(caches))

    def watch_connections(self, guard: ConnectionGuard) -> None:
        self.registry.register(_ConnectionCollector(guard))

    def connection_closed(self, reason: str) -> None:
        self.connections_closed.labels(reason).inc()

    def watch_store(self, store: SampleStore, clock: Callable[[], float] = time.time) -> None:
        self.registry.register(_StoreCollector(store, clock))
        self.registry.register(CatalogExporter(store, clock))

    def poll_succeeded(self, source: str, seconds: float) -> None:
        self.poll_duration.labels(source).observe(seconds)

    def poll_failed(self, source: str, reason: str, seconds: float) -> None:
        self.poll_duration.labels(source).observe(seconds)
        self.poll_errors.labels(source, reason).inc()

    def observe_request(self, route: str, code: int, seconds: float) -> None:
        self.request_duration.labels(route, str(code)).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
