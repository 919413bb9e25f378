"""The cache's serving rules: not found, stale, idle zero, selection, and one source failing alone."""

from __future__ import annotations

import pytest

from adapter.samples import Collection, Sample
from adapter.store import SampleStore
from core.catalog import DEFAULT_CATALOG
from core.errors import NotFound, Unavailable
from core.selectors import parse_selector

Q = "trino_queued_queries"
RG = "trino_resource_group_queued_queries"


def make_store() -> SampleStore:
    store = SampleStore(DEFAULT_CATALOG)
    store.register("adhoc", identity={"cluster": "adhoc"}, metrics=[Q, RG], max_age=10)
    store.register("etl", identity={"cluster": "etl"}, metrics=[Q, RG], namespaces=["data"], max_age=10)
    return store


def put(store: SampleStore, source: str, at: float, *samples: Sample) -> None:
    store.put(Collection(source=source, collected_at=at, samples=samples))


def everything(
    store: SampleStore, metric: str, ns: str, sel: str, now: float
) -> list[tuple[dict[str, str], float]]:
    return [(dict(i.labels), i.value) for i in store.query(metric, ns, parse_selector(sel), now)]


def test_unknown_metric_is_not_found() -> None:
    store = make_store()
    with pytest.raises(NotFound, match="could not find"):
        store.query("no_such_metric", "default", parse_selector(""), 0)


def test_metric_outside_its_namespaces_is_not_found() -> None:
    store = SampleStore(DEFAULT_CATALOG)
    store.register("etl", identity={"cluster": "etl"}, metrics=[Q], namespaces=["data"], max_age=10)
    put(store, "etl", 100, Sample(Q, {}, 3))
    with pytest.raises(NotFound, match='namespace "default"'):
        store.query(Q, "default", parse_selector(""), 100)
    assert everything(store, Q, "data", "", 100) == [({"cluster": "etl"}, 3)]


def test_selector_naming_no_source_is_not_found() -> None:
    store = make_store()
    put(store, "adhoc", 100, Sample(Q, {}, 1))
    with pytest.raises(NotFound, match="matches the selector"):
        store.query(Q, "default", parse_selector("cluster=typo"), 100)


def test_before_first_collection_is_unavailable() -> None:
    store = make_store()
    with pytest.raises(Unavailable):
        store.query(Q, "default", parse_selector("cluster=adhoc"), 100)


def test_stale_data_is_unavailable_never_served() -> None:
    store = make_store()
    put(store, "adhoc", 100, Sample(Q, {}, 5))
    assert everything(store, Q, "default", "cluster=adhoc", 110) == [({"cluster": "adhoc"}, 5)]
    with pytest.raises(Unavailable, match="adhoc"):
        store.query(Q, "default", parse_selector("cluster=adhoc"), 110.5)


def test_failed_poll_keeps_data_until_its_bound() -> None:
    store = make_store()
    put(store, "adhoc", 100, Sample(Q, {}, 5))
    store.fail("adhoc", "connection refused")
    assert everything(store, Q, "default", "cluster=adhoc", 105) == [({"cluster": "adhoc"}, 5)]
    with pytest.raises(Unavailable):
        store.query(Q, "default", parse_selector("cluster=adhoc"), 111)


def test_one_stale_source_does_not_degrade_another() -> None:
    store = make_store()
    put(store, "adhoc", 100, Sample(Q, {}, 5))
    put(store, "etl", 50, Sample(Q, {}, 7))
    # etl is stale, but a selector on adhoc never asks it.
    assert everything(store, Q, "data", "cluster=adhoc", 105) == [({"cluster": "adhoc"}, 5)]
    with pytest.raises(Unavailable, match="etl"):
        store.query(Q, "data", parse_selector(""), 105)


def test_idle_metric_answers_one_zero_item_with_the_selected_labels() -> None:
    store = make_store()
    put(store, "adhoc", 100)
    items = store.query(RG, "default", parse_selector("cluster=adhoc,resource_group=global.bi"), 101)
    assert [(dict(i.labels), i.value, i.timestamp) for i in items] == [
        ({"cluster": "adhoc", "resource_group": "global.bi"}, 0.0, 100)
    ]


@pytest.mark.parametrize(
    ("metric", "sample"),
    [
        ("spark_task_seconds", Sample("spark_task_seconds", {"app": "app-1", "app_name": "etl"}, 20.0)),
        (
            "trino_resource_group_hard_concurrency_limit",
            Sample("trino_resource_group_hard_concurrency_limit", {"resource_group": "global.bi"}, 20.0),
        ),
    ],
)
def test_a_figure_with_no_value_without_a_series_answers_an_empty_list(metric: str, sample: Sample) -> None:
    # A 0 would read as a measurement (tasks taking no time, a group admitting no query).
    store = SampleStore(DEFAULT_CATALOG)
    store.register("src", identity={}, metrics=[metric], max_age=10)
    put(store, "src", 100)
    assert store.query(metric, "default", parse_selector(""), 101) == []
    put(store, "src", 102, sample)
    assert [i.value for i in store.query(metric, "default", parse_selector(""), 103)] == [20.0]
    assert store.query(metric, "default", parse_selector("app=other,resource_group=other"), 103) == []


def test_selector_picks_series_and_every_operator_works() -> None:
    store = make_store()
    put(
        store,
        "adhoc",
        100,
        Sample(RG, {"resource_group": "global.bi"}, 4),
        Sample(RG, {"resource_group": "global.etl"}, 6),
        Sample(RG, {"resource_group": "global.adhoc"}, 1),
    )
    cases = {
        # equality uses the inverted index
        "resource_group=global.etl": [6],
        "resource_group!=global.etl": [4, 1],
        "resource_group in (global.bi,global.adhoc)": [4, 1],
        "resource_group notin (global.bi)": [6, 1],
        "resource_group": [4, 6, 1],
        "!resource_group": [0],  # idle: nothing matches, one zero
        "cluster=adhoc,resource_group=global.bi": [4],
    }
    for selector, values in cases.items():
        got = [v for _, v in everything(store, RG, "default", selector, 101)]
        assert got == values, selector


def test_identity_labels_override_what_a_source_claims() -> None:
    store = make_store()
    put(store, "adhoc", 100, Sample(Q, {"cluster": "forged"}, 2))
    assert everything(store, Q, "default", "", 101) == [({"cluster": "adhoc"}, 2)]


def test_invalid_values_never_reach_the_hpa() -> None:
    store = make_store()
    put(
        store,
        "adhoc",
        100,
        Sample(RG, {"resource_group": "a"}, float("nan")),
        Sample(RG, {"resource_group": "b"}, float("inf")),
        Sample(RG, {"resource_group": "c"}, -1),
        Sample(RG, {"resource_group": "d"}, 2),
    )
    assert everything(store, RG, "default", "cluster=adhoc", 101) == [
        ({"cluster": "adhoc", "resource_group": "d"}, 2)
    ]


def test_readiness_needs_every_source_attempted() -> None:
    store = make_store()
    assert not store.all_attempted()
    put(store, "adhoc", 100)
    assert not store.all_attempted()
    store.fail("etl", "down")
    assert store.all_attempted()


def test_registration_rejects_unknown_metrics_and_duplicate_names() -> None:
    store = make_store()
    with pytest.raises(ValueError, match=r"twice|named"):
        store.register("adhoc", identity={}, metrics=[Q], max_age=1)
    with pytest.raises(ValueError, match="catalog"):
        store.register("x", identity={}, metrics=["made_up"], max_age=1)
