"""The controller's reading, observing, policy sources, status and loop, over real HTTP where there is any.

The actuator used by the loop tests is a recording one defined here: the loop is under test, not an
actuator (the Trino and Spark actuators have their own tests against the sandboxes).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes_validate
import pytest

from adapter.poller import Poller
from adapter.samples import Sample
from adapter.selfmetrics import SelfMetrics
from adapter.sources.trino import TrinoSource
from adapter.store import SampleStore
from autoscaler.controller.actuator import ActuatorError, ActuatorEvent, Outcome, TargetState, spread_interval
from autoscaler.controller.loop import Controller
from autoscaler.controller.observe import observe
from autoscaler.controller.policies import FilePolicySource, PolicyEntry
from autoscaler.controller.readings import ExternalApiReader, StoreReader, parse_metric_list
from autoscaler.controller.status import Cond, build_status, event_body, status_changed
from autoscaler.decision.engine import EngineConfig, EngineState, decide
from autoscaler.policy.loading import load_policies
from autoscaler.policy.models import ScalingPolicy
from core.catalog import DEFAULT_CATALOG
from core.errors import SourceError
from core.selectors import parse_selector
from lab.sandbox.trino import Query, ResourceGroupSpec
from tests.helpers.adapter import running_adapter
from tests.helpers.scripted import ScriptedSource
from tests.helpers.trino import trino_sandbox, trino_settings
from tests.helpers.wait import eventually

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
TRINO_METRICS = [
    "trino_queued_queries",
    "trino_running_queries",
    "trino_required_workers",
    "trino_resource_group_queued_queries",
    "trino_resource_group_running_queries",
    "trino_resource_group_hard_concurrency_limit",
]


def adhoc_source(**kw: Any) -> ScriptedSource:
    source = ScriptedSource("adhoc", TRINO_METRICS, **kw)
    source.answer = [
        Sample("trino_queued_queries", {}, 12),
        Sample("trino_running_queries", {}, 8),
        Sample("trino_required_workers", {}, 0),
        Sample("trino_resource_group_queued_queries", {"resource_group": "global.bi"}, 10),
        Sample("trino_resource_group_queued_queries", {"resource_group": "global.etl"}, 2),
        Sample("trino_resource_group_running_queries", {"resource_group": "global.bi"}, 5),
        Sample("trino_resource_group_running_queries", {"resource_group": "global.etl"}, 3),
        Sample("trino_resource_group_hard_concurrency_limit", {"resource_group": "global.bi"}, 5),
        Sample("trino_resource_group_hard_concurrency_limit", {"resource_group": "global.etl"}, 100),
    ]
    return source


def client(url: str) -> kubernetes.client.ApiClient:
    config = kubernetes.client.Configuration()
    config.host = url
    return kubernetes.client.ApiClient(config)


def trino_policy() -> ScalingPolicy:
    return load_policies(EXAMPLES / "trino-workers-deployment.yaml")[0][0]


async def test_in_process_and_api_readers_see_the_same_numbers() -> None:
    async with running_adapter([adhoc_source()]) as (server, poller), contextlib.AsyncExitStack() as stack:
        store_reader = StoreReader(poller.store)
        api_reader = await stack.enter_async_context(ExternalApiReader(client(server.url)))
        sel = parse_selector("cluster=adhoc")
        now = await fresh_now(store_reader)
        for metric in TRINO_METRICS:
            a = await store_reader.read("trino", metric, sel, now)
            b = await api_reader.read("trino", metric, sel, now)
            assert a.series is not None, (metric, a)
            assert b.series is not None, (metric, b)
            assert sorted((tuple(sorted(s.labels.items())), s.value) for s in a.series) == sorted(
                (tuple(sorted(s.labels.items())), s.value) for s in b.series
            )
        # An unknown metric is missing (404), not zero, in both.
        for reader in (store_reader, api_reader):
            missing = await reader.read("trino", "trino_no_such_metric", sel, now)
            assert missing.series is None
            assert not missing.stale
            assert missing.error
        # A selector that matches no source is missing too (a typo must not read as idle).
        typo = await api_reader.read("trino", "trino_queued_queries", parse_selector("cluster=typo"), now)
        assert typo.series is None
        assert not typo.stale


async def fresh_now(reader: StoreReader) -> float:
    """A time at which the scripted source's figures are in the cache."""
    now = await eventually(lambda: _now_when_fresh(reader), check=lambda t: t is not None)
    assert now is not None
    return now


async def _now_when_fresh(reader: StoreReader) -> float | None:
    import time

    now = time.time()
    reading = await reader.read("trino", "trino_queued_queries", parse_selector("cluster=adhoc"), now)
    return now if reading.series and reading.total == 12 else None


async def test_a_stale_source_reads_as_stale_through_the_api() -> None:
    source = adhoc_source(max_age=0.3, poll_interval=0.05)
    async with running_adapter([source]) as (server, _), ExternalApiReader(client(server.url)) as reader:
        sel = parse_selector("cluster=adhoc")
        await eventually(
            lambda: reader.read("trino", "trino_queued_queries", sel, 0), check=lambda r: r.series is not None
        )
        source.answer = SourceError("connection refused")
        stale = await eventually(
            lambda: reader.read("trino", "trino_queued_queries", sel, 0), check=lambda r: r.stale
        )
        assert stale.series is None
        assert "503" in stale.error


async def test_an_unreachable_api_is_a_missing_metric_not_a_crash() -> None:
    async with ExternalApiReader(client("http://127.0.0.1:9"), timeout_seconds=0.5) as reader:
        reading = await reader.read("trino", "trino_queued_queries", parse_selector(""), 0)
    assert reading.series is None
    assert not reading.stale
    assert "unreachable" in reading.error


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"kind": "Status"}, "not an ExternalMetricValueList"),
        ({"kind": "ExternalMetricValueList", "items": {}}, "items is not a list"),
        ({"kind": "ExternalMetricValueList", "items": [{"value": "x1"}]}, "bad value"),
        ({"kind": "ExternalMetricValueList", "items": [{"value": "1", "metricLabels": []}]}, "metricLabels"),
    ],
)
def test_malformed_metric_lists_are_refused(doc: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_metric_list(doc)


def test_metric_list_values_are_quantities() -> None:
    doc = {
        "kind": "ExternalMetricValueList",
        "items": [{"metricName": "m", "metricLabels": {"a": "b"}, "value": "1500m"}, {"value": "2k"}],
    }
    assert [(dict(s.labels), s.value) for s in parse_metric_list(doc)] == [({"a": "b"}, 1.5), ({}, 2000.0)]


async def test_observation_of_a_trino_policy() -> None:
    async with running_adapter([adhoc_source()]) as (_, poller):
        reader = StoreReader(poller.store)
        now = await fresh_now(reader)
        observed = await observe(trino_policy(), reader, now, current_replicas=3, ready_replicas=2)
    obs = observed.observation
    assert obs.current_replicas == 3
    assert obs.ready_replicas == 2
    assert obs.trino is not None
    assert (obs.trino.queued, obs.trino.running, obs.trino.required_workers) == (12, 8, 0)
    groups = {g.id: g for g in obs.trino.groups}
    assert groups["global.bi"].limit_bound
    assert not groups["global.etl"].limit_bound
    # This source has no query counters: the snapshot says so, and an optional figure is no problem.
    assert (obs.trino.started_total, obs.trino.completed_total) == (None, None)
    # The External metric (index 2) is the HPA's sum of trino_queued_queries{cluster=adhoc}.
    assert obs.values[2] is not None
    assert obs.values[2].value == 12
    assert observed.problems == ()


async def test_observation_carries_the_trino_query_counters() -> None:
    counters = {"trino_started_queries_total": 1200.0, "trino_completed_queries_total": 1195.0}
    source = ScriptedSource("adhoc", [*TRINO_METRICS, *counters])
    gauges = adhoc_source().answer
    assert isinstance(gauges, list)
    source.answer = [*gauges, *(Sample(name, {}, value) for name, value in counters.items())]
    async with running_adapter([source]) as (_, poller):
        reader = StoreReader(poller.store)
        now = await fresh_now(reader)
        observed = await observe(trino_policy(), reader, now, current_replicas=3, ready_replicas=2)
    trino = observed.observation.trino
    assert trino is not None
    assert (trino.started_total, trino.completed_total) == (1200.0, 1195.0)
    assert (trino.queued, trino.running) == (12, 8)
    assert observed.problems == ()


async def test_observation_with_a_dead_source_is_missing_not_zero() -> None:
    source = adhoc_source()
    source.answer = SourceError("down")
    async with running_adapter([source]) as (_, poller):
        reader = StoreReader(poller.store)
        await eventually(lambda: _attempted(poller), check=bool)
        observed = await observe(trino_policy(), reader, 1e12, current_replicas=3, ready_replicas=3)
    assert observed.observation.trino is not None
    assert observed.observation.trino.stale
    assert observed.problems


async def _attempted(poller: Any) -> bool:
    return bool(poller.store.all_attempted())


def queue_wait_policy() -> ScalingPolicy:
    return ScalingPolicy.model_validate(
        {
            "apiVersion": "queuescale.io/v1alpha1",
            "kind": "ScalingPolicy",
            "metadata": {"name": "adhoc-workers", "namespace": "trino"},
            "spec": {
                "target": {
                    "kind": "TrinoWorkers",
                    "workload": {"kind": "Deployment", "name": "trino-worker"},
                    "trino": {
                        "cluster": "adhoc",
                        "coordinatorUrl": "http://trino:8080",
                        "version": 478,
                        "slotsPerWorker": 4,
                    },
                },
                "minReplicas": 1,
                "maxReplicas": 20,
                "metrics": [{"type": "QueueWait", "queueWait": {"targetSeconds": 10, "percentile": 95}}],
            },
        }
    )


async def test_live_path_learns_the_service_time_from_trino_counters() -> None:
    # Coordinator /metrics -> TrinoSource -> cache -> observe -> decide, on the sandbox's virtual clock:
    # the controller now sizes the queue on a service time measured by Little's law over the counters.
    rng = random.Random(7)
    # A history point every pass: 5 s polls catch queries of a few seconds in the running count.
    config = EngineConfig(loop_seconds=5, rate_sample_seconds=5)
    policy, state = queue_wait_policy(), EngineState()
    groups = [ResourceGroupSpec("global", hard_concurrency_limit=1000, max_queued=1000)]
    async with trino_sandbox(478, workers=2, groups=groups) as sb:
        cluster = sb.cluster
        source = TrinoSource(trino_settings(sb))
        store = SampleStore(DEFAULT_CATALOG)
        poller = Poller([source], store, SelfMetrics(), clock=lambda: cluster.now)
        reader = StoreReader(store)
        queries: list[Query] = []
        arrival = rng.expovariate(0.4)
        try:
            for step in range(1, 121):
                now = step * 5.0
                # Poisson arrivals at 0.4/s of 16 worker-seconds on 8 processors: about 80 % busy.
                while arrival <= now:
                    cluster.advance(arrival)
                    queries.append(cluster.submit("global", 16.0))
                    arrival += rng.expovariate(0.4)
                cluster.advance(now)
                assert await poller.poll_once(source)
                observed = await observe(policy, reader, now, current_replicas=2, ready_replicas=2)
                decision, state = decide(policy, observed.observation, state, config)
        finally:
            await source.close()
    trino = observed.observation.trino
    assert trino is not None
    assert trino.started_total == cluster.started_queries
    assert trino.completed_total == cluster.completed_queries
    (proposal,) = decision.proposals
    assert "rates from start counter" in proposal.reason
    # What the window really held: the mean time in RUNNING of the queries that ended in it.
    window = [
        q.ended_at - q.running_since
        for q in queries
        if q.ended_at is not None
        and q.running_since is not None
        and q.ended_at >= now - config.rate_window_seconds
    ]
    assert len(window) > 50
    assert state.learned_service_seconds == pytest.approx(sum(window) / len(window), rel=0.15)
    assert f"S={state.learned_service_seconds:.3g}s" in proposal.reason


# ---------------------------------------------------------------- policy files


POLICY = """\
apiVersion: queuescale.io/v1alpha1
kind: ScalingPolicy
metadata:
  name: {name}
spec:
  target:
    kind: TrinoWorkers
    workload: {{kind: Deployment, name: {workload}}}
    trino: {{cluster: adhoc, coordinatorUrl: "http://trino:8080", version: 478}}
  minReplicas: 1
  maxReplicas: {max}
  metrics:
    - type: External
      external:
        metric: {{name: trino_queued_queries, selector: {{matchLabels: {{cluster: adhoc}}}}}}
        target: {{type: AverageValue, averageValue: "4"}}
"""


def test_file_source_reads_valid_and_reports_invalid_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POLICY.format(name="a", workload="w", max=10))
    (tmp_path / "b.yaml").write_text(POLICY.format(name="b", workload="w2", max=0))
    (tmp_path / "notes.txt").write_text("ignored")
    source = FilePolicySource([tmp_path], default_namespace="trino")
    snap = source.snapshot()
    assert snap[("trino", "a")].policy is not None
    assert snap[("trino", "a")].policy.metadata.namespace == "trino"
    bad = next(e for e in snap.values() if e.policy is None)
    assert "b.yaml:" in bad.error
    assert "maxReplicas" in bad.error
    # A change takes effect on the next snapshot.
    import os

    path = tmp_path / "a.yaml"
    path.write_text(POLICY.format(name="a", workload="w", max=7))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    changed = source.snapshot()[("trino", "a")].policy
    assert changed is not None
    assert changed.spec.max_replicas == 7


# ---------------------------------------------------------------- status and events


def test_conditions_keep_their_transition_time_until_they_flip() -> None:
    first = build_status(
        None, [Cond("Ready", "True", "Valid")], 1000.0, generation=1, current=2, desired=3, reason="r"
    )
    again = build_status(
        first, [Cond("Ready", "True", "Valid")], 2000.0, generation=1, current=2, desired=3, reason="r"
    )
    assert again["conditions"][0]["lastTransitionTime"] == first["conditions"][0]["lastTransitionTime"]
    flipped = build_status(again, [Cond("Ready", "False", "TargetNotFound")], 3000.0, generation=1)
    assert flipped["conditions"][0]["lastTransitionTime"] != first["conditions"][0]["lastTransitionTime"]
    # Only the decision time moved: not worth a write until the refresh interval.
    assert not status_changed(first, again, 1030.0, refresh_seconds=60)
    assert status_changed(first, again, 2000.0, refresh_seconds=60)
    assert status_changed(again, flipped, 3000.0, refresh_seconds=60)
    scaled = build_status(first, [Cond("Ready", "True", "Valid")], 1500.0, generation=1, scaled=True)
    assert scaled["lastScaleTime"] == "1970-01-01T00:25:00Z"
    ScalingPolicyStatus = __import__(
        "autoscaler.policy.models", fromlist=["ScalingPolicyStatus"]
    ).ScalingPolicyStatus
    ScalingPolicyStatus.model_validate(flipped)
    ScalingPolicyStatus.model_validate(scaled)


@pytest.mark.parametrize("version", ["1.30", "1.33"])
def test_events_are_valid_core_v1_events(version: str) -> None:
    entry = PolicyEntry(("trino", "adhoc-workers"), None, uid="1234", from_cluster=True)
    body = event_body(
        entry, ActuatorEvent("DrainStarted", "worker-0 DRAINING", "Normal"), 1.7e9, instance="pod-x"
    )
    kubernetes_validate.validate(body, version, strict=True)
    assert body["involvedObject"]["kind"] == "ScalingPolicy"


# ---------------------------------------------------------------- the loop


class RecordingActuator:
    """Holds a replica count; ``apply`` sets it (unless dry run) and records every call."""

    def __init__(self, replicas: int, *, broken: bool = False) -> None:
        self.replicas = replicas
        self.broken = broken
        self.applied: list[tuple[int, bool]] = []
        self.closed = False

    async def observe(self, now: float) -> TargetState:
        if self.broken:
            raise ActuatorError("get_scale", "403 Forbidden")
        return TargetState(self.replicas, self.replicas)

    async def apply(self, desired: int, now: float, *, dry_run: bool = False) -> Outcome:
        self.applied.append((desired, dry_run))
        if dry_run or desired == self.replicas:
            return Outcome(detail="dry run" if dry_run else "")
        self.replicas = desired
        return Outcome(replicas=desired)

    async def close(self) -> None:
        self.closed = True


async def test_loop_decides_acts_and_survives_a_broken_target(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(POLICY.format(name="good", workload="w", max=10))
    (tmp_path / "broken.yaml").write_text(POLICY.format(name="broken", workload="w2", max=10))
    (tmp_path / "invalid.yaml").write_text(POLICY.format(name="invalid", workload="w3", max=0))
    actuators: dict[str, RecordingActuator] = {}

    def make(policy: ScalingPolicy) -> RecordingActuator:
        act = RecordingActuator(2, broken=policy.metadata.name == "broken")
        actuators[policy.metadata.name] = act
        return act

    async with running_adapter([adhoc_source()]) as (_, poller):
        reader = StoreReader(poller.store)
        await fresh_now(reader)
        controller = Controller(
            source=FilePolicySource([tmp_path], "trino"), reader=reader, make_actuator=make
        )
        import time

        reports = await controller.reconcile(time.time())
        good = reports[("trino", "good")]
        # 12 queued at 4 per replica → 3 replicas, written once.
        assert good.decision is not None
        assert good.decision.replicas == 3
        assert actuators["good"].replicas == 3
        assert good.acted
        assert "target unreadable" in reports[("trino", "broken")].skipped
        invalid = [r for k, r in reports.items() if k[1].endswith("invalid.yaml")]
        assert invalid
        assert invalid[0].skipped.startswith("invalid policy")
        text = controller.metrics.exposition().decode()
        assert (
            'queuescale_controller_scale_actions_total{direction="up",namespace="trino",policy="good"} 1.0'
            in text
        )
        assert (
            'queuescale_controller_actuator_errors_total{namespace="trino",operation="get_scale",policy="broken"} 1.0'
            in text
        )
        # A deleted policy's actuator is closed and its gauges dropped.
        (tmp_path / "good.yaml").unlink()
        await controller.reconcile(time.time())
        assert actuators["good"].closed
        assert 'queuescale_controller_desired_replicas{namespace="trino",policy="good"}' not in (
            controller.metrics.exposition().decode()
        )


async def test_standby_and_dry_run_change_nothing(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY.format(name="p", workload="w", max=10))
    made: list[RecordingActuator] = []

    def make(policy: ScalingPolicy) -> RecordingActuator:
        made.append(RecordingActuator(2))
        return made[-1]

    leader = False
    async with running_adapter([adhoc_source()]) as (_, poller):
        reader = StoreReader(poller.store)
        await fresh_now(reader)
        import time

        standby = Controller(
            source=FilePolicySource([tmp_path], "trino"),
            reader=reader,
            make_actuator=make,
            is_leader=lambda: leader,
        )
        report = (await standby.reconcile(time.time()))[("trino", "p")]
        assert report.decision is not None
        assert report.decision.replicas == 3
        assert not report.acted
        assert made[0].applied == []
        dry = Controller(
            source=FilePolicySource([tmp_path], "trino"), reader=reader, make_actuator=make, dry_run=True
        )
        await dry.reconcile(time.time())
        assert made[1].applied == [(3, True)]
        assert made[1].replicas == 2


async def test_run_stops_when_asked(tmp_path: Path) -> None:
    controller = Controller(
        source=FilePolicySource([tmp_path]),
        reader=StoreReader(__import__("adapter.store", fromlist=["SampleStore"]).SampleStore(())),
        make_actuator=lambda p: RecordingActuator(1),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(controller.run(stop, period_seconds=0.01))
    await eventually(lambda: _passes(controller), check=lambda n: n >= 2)
    stop.set()
    await asyncio.wait_for(task, 5)


async def _passes(controller: Controller) -> float:
    for metric in controller.metrics.registry.collect():
        if metric.name == "queuescale_controller_loop_duration_seconds":
            for sample in metric.samples:
                if sample.name.endswith("_count"):
                    return sample.value
    return 0.0


async def test_an_unreadable_target_is_backed_off_and_retried(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(POLICY.format(name="broken", workload="w", max=10))
    made: list[RecordingActuator] = []

    def make(policy: ScalingPolicy) -> RecordingActuator:
        made.append(RecordingActuator(2, broken=True))
        return made[-1]

    from adapter.store import SampleStore

    controller = Controller(
        source=FilePolicySource([tmp_path], "trino"), reader=StoreReader(SampleStore(())), make_actuator=make
    )
    key = ("trino", "broken")
    assert "target unreadable" in (await controller.reconcile(1000.0))[key].skipped
    # The API failed: the next passes within 15 s do not call it again...
    assert "backing off after 1" in (await controller.reconcile(1005.0))[key].skipped
    assert "target unreadable" in (await controller.reconcile(1015.0))[key].skipped
    # ...and the wait doubles while it keeps failing.
    assert "backing off after 2" in (await controller.reconcile(1040.0))[key].skipped
    made[0].broken = False
    report = (await controller.reconcile(1046.0))[key]
    assert report.decision is not None
    assert (await controller.reconcile(1047.0))[key].decision is not None


def test_spread_intervals_are_stable_and_spread_over_half_again() -> None:
    spread = [spread_interval(60.0, "ns", f"policy-{i}") for i in range(1000)]
    assert all(60.0 <= s < 90.0 for s in spread)
    assert spread == [spread_interval(60.0, "ns", f"policy-{i}") for i in range(1000)]
    # Passes 15 s apart: every 15 s band of the 30 s spread holds a good share of the targets.
    assert 350 < sum(s < 75.0 for s in spread) < 650


async def test_live_path_sizes_on_the_cpu_seconds_trino_counts() -> None:
    # Coordinator /metrics (QueryManager ConsumedCpuTimeSecs) -> TrinoSource -> observe -> decide with
    # QueueWait sizing Work: the engine measures the CPU of a query from the counters it was served.
    rng = random.Random(11)
    config = EngineConfig(loop_seconds=5, rate_sample_seconds=5)
    doc = queue_wait_policy().model_dump(by_alias=True, exclude_none=True)
    doc["spec"]["target"]["trino"]["coresPerWorker"] = 4
    doc["spec"]["metrics"][0]["queueWait"]["sizing"] = "Work"
    policy, state = ScalingPolicy.model_validate(doc), EngineState()
    groups = [ResourceGroupSpec("global", hard_concurrency_limit=20, max_queued=1000)]
    async with trino_sandbox(478, workers=2, groups=groups) as sb:
        cluster = sb.cluster
        source = TrinoSource(trino_settings(sb))
        store = SampleStore(DEFAULT_CATALOG)
        poller = Poller([source], store, SelfMetrics(), clock=lambda: cluster.now)
        reader = StoreReader(store)
        arrival = rng.expovariate(0.3)
        try:
            for step in range(1, 121):
                now = step * 5.0
                while arrival <= now:
                    cluster.advance(arrival)
                    cluster.submit("global", 16.0)
                    arrival += rng.expovariate(0.3)
                cluster.advance(now)
                assert await poller.poll_once(source)
                observed = await observe(policy, reader, now, current_replicas=2, ready_replicas=2)
                decision, state = decide(policy, observed.observation, state, config)
        finally:
            await source.close()
    trino = observed.observation.trino
    assert trino is not None
    assert trino.cpu_seconds_total == cluster.consumed_cpu_seconds > 0
    (proposal,) = decision.proposals
    assert proposal.reason.startswith("work: λ="), proposal.reason
    assert state.learned_cpu_per_query is not None
    # Whole seconds per ended query, as Trino counts them: at most the query's work, less than a second short.
    assert 0 < state.learned_cpu_per_query <= 16.0 + 1e-6
