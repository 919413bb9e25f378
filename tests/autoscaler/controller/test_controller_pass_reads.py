"""One pass's metric reads are shared: policies of one cluster ask the adapter once per figure.

Real adapter over loopback HTTP; the requests it answered are read from its own request metric.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import kubernetes.client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapter.poller import Poller
from adapter.samples import Sample
from autoscaler.controller.observe import observe, reads_of
from autoscaler.controller.readings import ExternalApiReader, PassReads, Reading, Series, StoreReader
from autoscaler.policy.loading import load_policies
from autoscaler.policy.models import ScalingPolicy
from core.selectors import Selector, parse_selector
from tests.helpers.adapter import running_adapter
from tests.helpers.scripted import ScriptedSource
from tests.helpers.wait import eventually

METRICS = ["trino_queued_queries", "trino_running_queries"]
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def source() -> ScriptedSource:
    scripted = ScriptedSource("adhoc", METRICS)
    scripted.answer = [Sample("trino_queued_queries", {}, 12), Sample("trino_running_queries", {}, 8)]
    return scripted


def metric_requests(text: str) -> int:
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "queuescale_adapter_request_duration_seconds":
            for sample in family.samples:
                if sample.name.endswith("_count") and sample.labels.get("route") == "metric":
                    total += sample.value
    return int(total)


async def figures_in(poller: Poller) -> Selector:
    """Wait until the adapter holds the scripted figures; the selector that reads them."""
    sel = parse_selector("cluster=adhoc")
    await eventually(
        lambda: StoreReader(poller.store).read("trino", "trino_queued_queries", sel, 0),
        check=lambda r: r.series is not None,
    )
    return sel


def api_client(url: str) -> kubernetes.client.ApiClient:
    config = kubernetes.client.Configuration()
    config.host = url
    return kubernetes.client.ApiClient(config)


async def test_a_pass_asks_each_figure_once_and_the_next_pass_asks_again() -> None:
    async with (
        running_adapter([source()]) as (server, poller),
        ExternalApiReader(api_client(server.url)) as reader,
    ):
        sel = await figures_in(poller)
        before = metric_requests(poller.metrics.exposition().decode())

        first = PassReads(reader)
        asked = [first.read("trino", "trino_queued_queries", sel, 100.0) for _ in range(16)]
        asked += [first.read("trino", "trino_running_queries", sel, 100.0) for _ in range(16)]
        # The same figure in another namespace is another request (the API is namespaced).
        asked.append(first.read("other", "trino_queued_queries", sel, 100.0))
        readings: list[Reading] = list(await asyncio.gather(*asked))
        # A later policy of the same pass gets the same answer without a request.
        readings.append(await first.read("trino", "trino_queued_queries", sel, 100.0))
        after_first = metric_requests(poller.metrics.exposition().decode())

        second = PassReads(reader)
        again = await second.read("trino", "trino_queued_queries", sel, 115.0)
        after_second = metric_requests(poller.metrics.exposition().decode())

    assert after_first - before == 3
    assert after_second - after_first == 1
    assert {r.total for r in readings[:16]} == {12.0}
    assert {r.total for r in readings[16:32]} == {8.0}
    assert readings[32].total == 12.0
    assert readings[33].total == 12.0
    assert again.total == 12.0


async def test_a_cancelled_policy_does_not_cancel_the_read_others_share() -> None:
    async with running_adapter([source()]) as (server, poller):
        sel = await figures_in(poller)
        api_reader = ExternalApiReader(api_client(server.url))
        reads = PassReads(api_reader)
        cancelled = asyncio.ensure_future(reads.read("trino", "trino_queued_queries", sel, 1.0))
        waiting = asyncio.ensure_future(reads.read("trino", "trino_queued_queries", sel, 1.0))
        await asyncio.sleep(0)
        cancelled.cancel()
        reading = await waiting
        await api_reader.close()

    assert cancelled.cancelled()
    assert reading.total == 12.0


async def test_a_prefetch_asks_each_figure_once_and_the_policies_then_ask_nothing() -> None:
    async with running_adapter([source()]) as (server, poller):
        sel = await figures_in(poller)
        async with ExternalApiReader(api_client(server.url)) as reader:
            before = metric_requests(poller.metrics.exposition().decode())
            reads = PassReads(reader)
            wanted = [("trino", m, parse_selector("cluster=adhoc")) for m in METRICS for _ in range(16)]
            await reads.prefetch(wanted, 7.0)
            prefetched = metric_requests(poller.metrics.exposition().decode())
            answers = [await reads.read("trino", m, sel, 7.0) for m in METRICS]
            after = metric_requests(poller.metrics.exposition().decode())
    assert prefetched - before == 2
    assert after == prefetched
    assert [a.total for a in answers] == [12.0, 8.0]


class Recording:
    """A reader that answers nothing and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str]] = []

    async def read(self, namespace: str, metric: str, selector: Selector, now: float) -> Reading:
        self.asked.append((namespace, metric, selector.text))
        return Reading(None, error="not served here")


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
async def test_the_prefetch_list_is_what_observe_reads(example: str) -> None:
    for policy, _ in load_policies(EXAMPLES / example):
        recording = Recording()
        await observe(policy, recording, 1.0, current_replicas=2, ready_replicas=2)
        listed = [(ns, m, s.text) for ns, m, s in reads_of(policy)]
        assert sorted(recording.asked) == sorted(listed)
        assert recording.asked, "every example reads something"


class Answering(Recording):
    """A reader that answers the figures it holds, by metric name, and remembers what it was asked."""

    def __init__(self, figures: dict[str, tuple[Series, ...]]) -> None:
        super().__init__()
        self.figures = figures

    async def read(self, namespace: str, metric: str, selector: Selector, now: float) -> Reading:
        await super().read(namespace, metric, selector, now)
        return Reading(self.figures[metric]) if metric in self.figures else Reading(None, error="absent")


def _pool_policy(backlog: bool) -> ScalingPolicy:
    policy = load_policies(EXAMPLES / "spark-worker-pool.yaml")[0][0]
    if not backlog:
        return policy
    metrics = list(policy.spec.metrics)
    section = metrics[0].spark_executors
    assert section is not None
    metrics[0] = metrics[0].model_copy(
        update={"spark_executors": section.model_copy(update={"backlog_seconds": 120})}
    )
    return policy.model_copy(update={"spec": policy.spec.model_copy(update={"metrics": metrics})})


async def test_a_pool_sized_on_its_backlog_reads_task_times_and_only_then() -> None:
    def app(name: str, value: float) -> Series:
        return Series({"pool": "etl", "app": name, "app_name": name}, value)

    figures = {
        "spark_remaining_tasks": (app("a", 30), app("b", 5)),
        "spark_next_wave_tasks": (app("a", 10),),
        # b has completed no task of its active stages yet: no figure.
        "spark_task_seconds": (app("a", 12.5),),
        "spark_pool_workers": (Series({"pool": "etl", "state": "alive"}, 2),),
    }
    sized = _pool_policy(backlog=True)
    reader = Answering(figures)
    seen = await observe(sized, reader, 1.0, current_replicas=2, ready_replicas=2)
    assert sorted(reader.asked) == sorted((ns, m, s.text) for ns, m, s in reads_of(sized))
    assert "spark_task_seconds" in {m for _, m, _ in reader.asked}
    spark = seen.observation.spark
    assert spark is not None
    assert [(a.app_id, a.remaining_tasks, a.next_wave_tasks, a.task_seconds) for a in spark.apps] == [
        ("a", 30, 10, 12.5),
        ("b", 5, 0, None),
    ]

    plain = Answering(figures)
    seen = await observe(_pool_policy(backlog=False), plain, 1.0, current_replicas=2, ready_replicas=2)
    assert "spark_task_seconds" not in {m for _, m, _ in plain.asked}
    assert seen.observation.spark is not None
    assert {a.task_seconds for a in seen.observation.spark.apps} == {None}


async def test_an_external_metric_with_an_empty_list_is_missing_not_zero() -> None:
    # The HPA's answer to an empty item list ("no metrics returned from external metrics API"): the
    # adapter gives one for a mean or a limit with no series, and a 0 there would read as a measurement.
    policy = load_policies(EXAMPLES / "hpa-equivalent.yaml")[0][0]
    seen = await observe(
        policy, Answering({"trino_queued_queries": ()}), 1.0, current_replicas=2, ready_replicas=2
    )
    assert seen.observation.values == (None,)
    assert any("no metrics returned" in p for p in seen.problems)
    one = (Series({"cluster": "adhoc"}, 0.0),)
    seen = await observe(
        policy, Answering({"trino_queued_queries": one}), 1.0, current_replicas=2, ready_replicas=2
    )
    assert [v.value if v is not None else None for v in seen.observation.values] == [0.0]
