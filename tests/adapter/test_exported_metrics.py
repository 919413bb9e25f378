"""The cached catalog samples exported on the adapter's ``/metrics`` (adapter/exported.py)."""

from __future__ import annotations

import aiohttp
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from adapter.exported import CatalogExporter, exported_name
from adapter.samples import Collection, Sample
from adapter.store import SampleStore
from core.catalog import DEFAULT_CATALOG, MetricSpec
from core.errors import SourceError
from tests.helpers.adapter import running_adapter
from tests.helpers.scripted import ScriptedSource
from tests.helpers.wait import eventually

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _series(text: str) -> Series:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _scrape(store: SampleStore, now: float) -> str:
    registry = CollectorRegistry()
    registry.register(CatalogExporter(store, lambda: now))
    return generate_latest(registry).decode()


def _store(catalog_extra: tuple[MetricSpec, ...] = ()) -> SampleStore:
    store = SampleStore(DEFAULT_CATALOG.extended(catalog_extra))
    store.register(
        "adhoc",
        identity={"cluster": "adhoc"},
        metrics=["trino_queued_queries", "trino_nodes", "trino_blocked_queries"],
        max_age=10.0,
    )
    return store


def _collect(store: SampleStore, source: str, at: float, *samples: Sample) -> None:
    store.put(Collection(source=source, collected_at=at, samples=samples))


def test_samples_are_exported_with_their_served_labels() -> None:
    store = _store()
    _collect(
        store,
        "adhoc",
        100.0,
        Sample("trino_queued_queries", {}, 7),
        Sample("trino_nodes", {"state": "active"}, 3),
        Sample("trino_nodes", {"state": "draining"}, 1),
        # A sample naming another cluster is served under its source's identity, and so exported.
        Sample("trino_blocked_queries", {"cluster": "other"}, 2),
    )
    text = _scrape(store, now=101.0)
    assert _series(text) == {
        ("queuescale_trino_queued_queries", (("cluster", "adhoc"),)): 7.0,
        ("queuescale_trino_nodes", (("cluster", "adhoc"), ("state", "active"))): 3.0,
        ("queuescale_trino_nodes", (("cluster", "adhoc"), ("state", "draining"))): 1.0,
        ("queuescale_trino_blocked_queries", (("cluster", "adhoc"),)): 2.0,
    }
    spec = DEFAULT_CATALOG.get("trino_queued_queries")
    assert spec is not None
    assert f"# HELP queuescale_trino_queued_queries {spec.help} Unit: queries." in text
    assert "# TYPE queuescale_trino_queued_queries gauge" in text


def test_an_idle_metric_exports_one_zero_like_the_api_serves() -> None:
    store = _store()
    _collect(store, "adhoc", 100.0, Sample("trino_queued_queries", {}, 1))
    series = _series(_scrape(store, now=100.0))
    assert series[("queuescale_trino_nodes", (("cluster", "adhoc"),))] == 0.0
    assert series[("queuescale_trino_blocked_queries", (("cluster", "adhoc"),))] == 0.0


def test_a_mean_with_no_series_exports_nothing_not_a_zero() -> None:
    store = SampleStore(DEFAULT_CATALOG)
    store.register(
        "etl", identity={"pool": "etl"}, metrics=["spark_task_seconds", "spark_pending_tasks"], max_age=10.0
    )
    _collect(store, "etl", 100.0)
    series = _series(_scrape(store, now=100.0))
    assert series == {("queuescale_spark_pending_tasks", (("pool", "etl"),)): 0.0}
    _collect(store, "etl", 101.0, Sample("spark_task_seconds", {"app": "a", "app_name": "n"}, 12.5))
    key = ("queuescale_spark_task_seconds", (("app", "a"), ("app_name", "n"), ("pool", "etl")))
    assert _series(_scrape(store, now=101.0))[key] == 12.5


def test_a_stale_source_exports_nothing() -> None:
    store = _store()
    _collect(store, "adhoc", 100.0, Sample("trino_queued_queries", {}, 4))
    assert _series(_scrape(store, now=110.0))  # at the freshness bound: still served
    assert _series(_scrape(store, now=110.5)) == {}  # beyond it the API answers 503: gone here too


def test_a_source_that_never_answered_exports_nothing() -> None:
    assert _series(_scrape(_store(), now=100.0)) == {}


def test_two_sources_claiming_one_series_export_it_once() -> None:
    store = _store()
    # A Prometheus source has no identity of its own: its series name their cluster.
    store.register("prom", identity={}, metrics=["trino_queued_queries"], max_age=30.0)
    _collect(store, "adhoc", 100.0, Sample("trino_queued_queries", {}, 5))
    _collect(store, "prom", 100.0, Sample("trino_queued_queries", {"cluster": "adhoc"}, 6))
    exported = [
        s
        for s in text_string_to_metric_families(_scrape(store, now=100.0))
        if s.name.endswith("queued_queries")
    ]
    assert len(exported) == 1
    assert [s.value for s in exported[0].samples] == [5.0]


def test_operator_defined_metrics_are_exported_unless_their_name_is_reserved() -> None:
    custom = (
        MetricSpec("gateway_backlog", "custom", ("queue",), "requests", "Requests at the gateway."),
        MetricSpec("adapter_source_up", "custom", (), "", "Clashes with the adapter's own family."),
    )
    store = _store(custom)
    store.register("prom", identity={}, metrics=["gateway_backlog", "adapter_source_up"], max_age=30.0)
    _collect(
        store,
        "prom",
        100.0,
        Sample("gateway_backlog", {"queue": "a"}, 9),
        Sample("adapter_source_up", {}, 5),
    )
    text = _scrape(store, now=100.0)
    assert _series(text) == {("queuescale_gateway_backlog", (("queue", "a"),)): 9.0}
    assert "Requests at the gateway. Unit: requests." in text


async def test_adapter_metrics_endpoint_carries_the_catalog_figures() -> None:
    source = ScriptedSource("adhoc", ["trino_queued_queries", "trino_running_queries"], max_age=0.5)
    source.answer = [Sample("trino_queued_queries", {}, 12)]
    async with running_adapter([source]) as (server, _), aiohttp.ClientSession() as session:

        async def scrape() -> Series:
            async with session.get(server.url + "/metrics") as resp:
                assert resp.status == 200
                return _series(await resp.text())

        queued = (exported_name("trino_queued_queries"), (("cluster", "adhoc"),))
        series = await eventually(scrape, check=lambda s: queued in s)
        assert series[queued] == 12.0
        assert series[(exported_name("trino_running_queries"), (("cluster", "adhoc"),))] == 0.0
        # The source starts failing: once its data is older than its bound the figures leave /metrics.
        source.answer = SourceError("backend down")
        series = await eventually(scrape, check=lambda s: queued not in s)
        assert series[("queuescale_adapter_source_up", (("source", "adhoc"),))] == 0.0
