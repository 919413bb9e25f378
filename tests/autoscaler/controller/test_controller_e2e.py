"""The controller end to end: ScalingPolicy custom resources in the Kubernetes sandbox, metrics from the real
adapter over ``external.metrics.k8s.io``, Trino workers drained through their REST API, status and Events
written back; every object written is checked against the official schemas.

Time is the world's manual clock: each pass is ``controller.reconcile(world.now)`` after the world moved,
so drains and stabilisation windows are exact and the test does not sleep for them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kubernetes.client
import kubernetes_validate

from adapter.sources.trino import TrinoSource
from autoscaler.controller.factory import ActuatorFactoryImpl
from autoscaler.controller.loop import Controller, HpaIndex, PassReport
from autoscaler.controller.policies import CrdPolicySource
from autoscaler.controller.readings import ExternalApiReader
from autoscaler.controller.status import EventRecorder, StatusWriter
from autoscaler.policy.models import ScalingPolicyStatus
from tests.helpers.adapter import running_adapter
from tests.helpers.kube import call
from tests.helpers.trino import trino_settings
from tests.helpers.trino_kube import NAMESPACE, WORKLOAD, TrinoKubeWorld, trino_on_kube
from tests.helpers.wait import eventually

GROUP, VERSION, PLURAL = "queuescale.io", "v1alpha1", "scalingpolicies"


def policy(name: str = "workers", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ScalingPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "target": {
                "kind": "TrinoWorkers",
                "workload": {"kind": "Deployment", "name": WORKLOAD},
                "trino": {"cluster": "adhoc", "coordinatorUrl": "http://unused:8080", "version": 478},
                "startupSeconds": 0,
            },
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": "trino_running_queries",
                            "selector": {"matchLabels": {"cluster": "adhoc"}},
                        },
                        "target": {"type": "AverageValue", "averageValue": "2"},
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
            "drain": {"gracePeriodSeconds": 0, "timeoutSeconds": 600},
        },
    }
    body["spec"].update(spec)
    return body


class Rig:
    """The controller wired as ``queuescale controller`` wires it, on one world."""

    def __init__(self, world: TrinoKubeWorld, adapter_url: str) -> None:
        self.world = world
        api = world.kube.api
        config = kubernetes.client.Configuration()
        config.host = adapter_url
        self.source = CrdPolicySource(api, [NAMESPACE], retry_seconds=0.1)
        self.events = EventRecorder(api, "e2e")
        # Pods and workloads from watch caches, as `queuescale controller` reads them.
        factory = ActuatorFactoryImpl(api, cache=True)
        self.reader = ExternalApiReader(kubernetes.client.ApiClient(config))
        self.controller = Controller(
            source=self.source,
            reader=self.reader,
            make_actuator=factory,
            on_pass_start=factory.ops.begin_pass,
            on_close=factory.ops.close,
            events=self.events,
            status=StatusWriter(api),
            hpas=HpaIndex(api),
            status_refresh_seconds=3600,
        )

    async def synced(self, count: int) -> None:
        await eventually(lambda: _snapshot_size(self.source), check=lambda n: n >= count)

    async def pass_(self, name: str = "workers") -> PassReport:
        return (await self.controller.reconcile(self.world.now))[(NAMESPACE, name)]

    async def close(self) -> None:
        await self.controller.close()
        await self.reader.close()


async def _snapshot_size(source: CrdPolicySource) -> int:
    return len(source.snapshot())


async def running(world: TrinoKubeWorld, adapter_url: str, count: int) -> None:
    """Wait until the adapter serves ``count`` running queries (it polls the coordinator on its own)."""
    from core.selectors import parse_selector

    async with ExternalApiReader(_client(adapter_url)) as reader:
        await eventually(
            lambda: reader.read(NAMESPACE, "trino_running_queries", parse_selector("cluster=adhoc"), 0),
            check=lambda r: r.total == count,
        )


def _client(url: str) -> kubernetes.client.ApiClient:
    config = kubernetes.client.Configuration()
    config.host = url
    return kubernetes.client.ApiClient(config)


async def read_policy(world: TrinoKubeWorld, name: str = "workers") -> dict[str, Any]:
    custom = kubernetes.client.CustomObjectsApi(world.kube.api)
    obj = await call(custom.get_namespaced_custom_object, GROUP, VERSION, NAMESPACE, PLURAL, name)
    assert isinstance(obj, dict)
    return obj


async def create_policy(world: TrinoKubeWorld, body: dict[str, Any]) -> None:
    custom = kubernetes.client.CustomObjectsApi(world.kube.api)
    await call(custom.create_namespaced_custom_object, GROUP, VERSION, NAMESPACE, PLURAL, body)


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}


async def test_scale_up_on_load_then_drain_down_without_killing_a_query() -> None:
    async with trino_on_kube(478, replicas=1) as world:
        settings = trino_settings(world.trino, name="adhoc")
        async with running_adapter([TrinoSource(settings)]) as (server, _):
            rig = Rig(world, server.url)
            try:
                await create_policy(world, policy())
                await rig.synced(1)
                world.cluster.submit_many("global", 6, 40.0)
                await running(world, server.url, 6)
                up = await rig.pass_()
                assert up.decision is not None
                assert up.decision.replicas == 3, up.decision.reasons
                assert up.outcome is not None
                assert up.outcome.replicas == 3
                await world.advance(1)
                assert await world.replicas() == 3
                # New work lands on the new workers too; then the load ends.
                world.cluster.submit_many("global", 3, 20.0)
                await world.advance(1)
                steps = 0
                while await world.replicas() > 1 and steps < 200:
                    await world.advance(5)
                    await running(world, server.url, world.cluster.running_queries())
                    await rig.pass_()
                    steps += 1
                assert await world.replicas() == 1
                assert world.cluster.killed_queries == 0
                assert world.exited_early == []
                reasons = [e["reason"] for e in rig.events.written]
                assert "ScaledUp" in reasons
                assert "ScaledDown" in reasons
                assert any(r.startswith("Drain") for r in reasons), reasons
                for event in rig.events.written:
                    kubernetes_validate.validate(event, "1.33", strict=True)
                obj = await read_policy(world)
                status = ScalingPolicyStatus.model_validate(obj["status"])
                assert status.current_replicas is not None
                assert status.last_scale_time is not None
                assert conditions(obj)["Ready"]["status"] == "True"
                assert conditions(obj)["ScalingActive"]["status"] == "True"
                text = rig.controller.metrics.exposition().decode()
                labels = 'namespace="trino",policy="workers"'
                for series in (
                    f'queuescale_controller_scale_actions_total{{direction="up",{labels}}}',
                    f'queuescale_controller_scale_actions_total{{direction="down",{labels}}}',
                    'queuescale_controller_drains_finished_total{namespace="trino",outcome="completed",policy="workers"}',
                ):
                    assert _value(text, series) >= 1, series
            finally:
                await rig.close()


async def test_a_restarted_controller_does_not_scale_needlessly() -> None:
    async with (
        trino_on_kube(478, replicas=1) as world,
        running_adapter([TrinoSource(trino_settings(world.trino, name="adhoc"))]) as (server, _),
    ):
        first = Rig(world, server.url)
        try:
            await create_policy(world, policy(behavior={"scaleDown": {"stabilizationWindowSeconds": 300}}))
            await first.synced(1)
            world.cluster.submit_many("global", 4, 3600.0)
            await running(world, server.url, 4)
            assert (await first.pass_()).outcome is not None
            await world.advance(1)
            assert await world.replicas() == 2
        finally:
            await first.close()
        # The same steady load: a new controller holds, with no write and no Event of a scale.
        second = Rig(world, server.url)
        try:
            await second.synced(1)
            for _ in range(5):
                await world.advance(10)
                report = await second.pass_()
                assert report.decision is not None
                assert report.decision.replicas == 2, report.decision.reasons
                assert report.outcome is not None
                assert report.outcome.replicas is None
            assert not [e for e in second.events.written if e["reason"].startswith("Scaled")]
        finally:
            await second.close()


async def test_an_hpa_on_the_same_workload_is_not_fought() -> None:
    async with (
        trino_on_kube(478, replicas=1) as world,
        running_adapter([TrinoSource(trino_settings(world.trino, name="adhoc"))]) as (server, _),
    ):
        rig = Rig(world, server.url)
        try:
            hpa = kubernetes.client.AutoscalingV2Api(world.kube.api)
            body = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "cpu", "namespace": NAMESPACE},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": WORKLOAD},
                    "minReplicas": 1,
                    "maxReplicas": 10,
                },
            }
            await call(hpa.create_namespaced_horizontal_pod_autoscaler, NAMESPACE, body)
            await create_policy(world, policy())
            await rig.synced(1)
            world.cluster.submit_many("global", 6, 600.0)
            await running(world, server.url, 6)
            report = await rig.pass_()
            assert "HorizontalPodAutoscaler cpu" in report.skipped
            await world.advance(1)
            assert await world.replicas() == 1
            obj = await read_policy(world)
            active = conditions(obj)["ScalingActive"]
            assert (active["status"], active["reason"]) == ("False", "ConflictingHPA")
            warnings = [e for e in rig.events.written if e["type"] == "Warning"]
            assert [e["reason"] for e in warnings] == ["ConflictingHPA"]
            # Reported once, not on every pass.
            await rig.pass_()
            assert len([e for e in rig.events.written if e["type"] == "Warning"]) == 1
        finally:
            await rig.close()


async def test_an_invalid_policy_gets_a_condition_and_an_event_not_a_crash() -> None:
    async with (
        trino_on_kube(478, replicas=1) as world,
        running_adapter([TrinoSource(trino_settings(world.trino, name="adhoc"))]) as (server, _),
    ):
        rig = Rig(world, server.url)
        try:
            # Valid for the CRD's structural schema, refused by the models: min above max.
            await create_policy(world, policy("broken", minReplicas=5, maxReplicas=2))
            await create_policy(world, policy())
            await rig.synced(2)
            world.cluster.submit_many("global", 4, 600.0)
            await running(world, server.url, 4)
            reports = await rig.controller.reconcile(world.now)
            assert reports[(NAMESPACE, "broken")].skipped.startswith("invalid policy")
            assert reports[(NAMESPACE, "workers")].acted
            obj = await read_policy(world, "broken")
            ready = conditions(obj)["Ready"]
            assert (ready["status"], ready["reason"]) == ("False", "InvalidPolicy")
            assert "minReplicas" in ready["message"]
            assert [e["reason"] for e in rig.events.written if e["type"] == "Warning"] == ["InvalidPolicy"]
        finally:
            await rig.close()


async def test_policy_changes_take_effect_on_the_next_pass() -> None:
    async with (
        trino_on_kube(478, replicas=1) as world,
        running_adapter([TrinoSource(trino_settings(world.trino, name="adhoc"))]) as (server, _),
    ):
        rig = Rig(world, server.url)
        try:
            await create_policy(world, policy())
            await rig.synced(1)
            world.cluster.submit_many("global", 8, 600.0)
            await running(world, server.url, 8)
            first = await rig.pass_()
            assert first.decision is not None
            assert first.decision.replicas == 4
            obj = await read_policy(world)
            obj["spec"]["maxReplicas"] = 2
            custom = kubernetes.client.CustomObjectsApi(world.kube.api)
            await call(
                custom.replace_namespaced_custom_object, GROUP, VERSION, NAMESPACE, PLURAL, "workers", obj
            )
            await eventually(lambda: _max_replicas(rig.source), check=lambda m: m == 2)
            await world.advance(1)
            second = await rig.pass_()
            assert second.decision is not None
            assert second.decision.max_replicas == 2
            # A change of metadata alone (no new generation) is taken too, unlike a status write.
            patch = {"metadata": {"annotations": {"team": "bi"}}}
            await call(
                custom.patch_namespaced_custom_object, GROUP, VERSION, NAMESPACE, PLURAL, "workers", patch
            )
            await eventually(lambda: _annotations(rig.source), check=lambda a: a.get("team") == "bi")
        finally:
            await rig.close()


def _value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _annotations(source: CrdPolicySource) -> dict[str, str]:
    await asyncio.sleep(0)
    entry = source.snapshot().get((NAMESPACE, "workers"))
    return dict(entry.policy.metadata.annotations) if entry and entry.policy else {}


async def _max_replicas(source: CrdPolicySource) -> int | None:
    await asyncio.sleep(0)
    entry = source.snapshot().get((NAMESPACE, "workers"))
    return entry.policy.spec.max_replicas if entry and entry.policy else None


async def test_a_scale_down_rate_limit_does_not_undo_drains() -> None:
    # One pod per minute at most, as the examples limit it: the engine must decide for the workers that
    # stay, or the limit reads drained workers as "not removed yet" and the drains are undone every pass.
    behavior = {
        "scaleDown": {
            "stabilizationWindowSeconds": 0,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        }
    }
    async with (
        trino_on_kube(478, replicas=1) as world,
        running_adapter([TrinoSource(trino_settings(world.trino, name="adhoc"))]) as (server, _),
    ):
        rig = Rig(world, server.url)
        try:
            await create_policy(world, policy(behavior=behavior))
            await rig.synced(1)
            world.cluster.submit_many("global", 8, 30.0)
            await running(world, server.url, 8)
            await rig.pass_()
            await world.advance(1)
            assert await world.replicas() == 4
            seen = [4]
            for _ in range(80):
                await world.advance(5)
                await running(world, server.url, world.cluster.running_queries())
                await rig.pass_()
                seen.append(await world.replicas())
                if seen[-1] == 1:
                    break
            assert seen[-1] == 1, seen
            assert seen == sorted(seen, reverse=True), seen
            reasons = [e["reason"] for e in rig.events.written]
            assert "DrainAborted" not in reasons
            assert world.cluster.killed_queries == 0
        finally:
            await rig.close()
