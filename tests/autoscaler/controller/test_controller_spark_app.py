"""The spark-operator actuator against the Kubernetes API sandbox: next-run sizing of SparkApplications
and ScheduledSparkApplications, never an edit of a submitted application.

What is written is checked field by field against kubeflow/spark-operator's Go types
(``api/v1beta2/sparkapplication_types.go``), the fields the CRD schema derives from: the test-side
schema below covers exactly the fields this actuator writes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp import web

from autoscaler.controller.kube_ops import KubeOps
from autoscaler.controller.targets.spark_application.actuator import SparkApplicationActuator
from autoscaler.decision.engine import EngineState, decide
from autoscaler.decision.signals import Observation, SparkSnapshot
from autoscaler.decision.spark_sizing import AppDemand
from autoscaler.policy.models import ScalingPolicy
from lab.sandbox.kube import KubeSandbox, client_for
from lab.sandbox.serve import serve

GROUP, VERSION = "sparkoperator.k8s.io", "v1beta2"
NS = "jobs"
Obj = dict[str, Any]

# ExecutorSpec.Instances *int32 (+kubebuilder:validation:Minimum=1); DynamicAllocation.{Enabled bool,
# InitialExecutors, MinExecutors, MaxExecutors *int32}: the SparkApplicationSpec fields written here.
INT32 = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
SIZING_FIELDS: Obj = {
    "type": "object",
    "properties": {
        "executor": {"type": "object", "properties": {"instances": {**INT32, "minimum": 1}}},
        "dynamicAllocation": {
            "type": "object",
            "properties": {
                "enabled": {"type": "boolean"},
                "initialExecutors": INT32,
                "minExecutors": INT32,
                "maxExecutors": INT32,
            },
        },
    },
}
# A patch writes nothing else: ObjectMeta.ResourceVersion (string) guards it.
PATCH_ONLY: Obj = {
    "type": "object",
    "required": ["metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "required": ["resourceVersion"],
            "properties": {"resourceVersion": {"type": "string", "minLength": 1}},
        },
        "spec": {"type": "object"},
    },
}
ONLY_SIZING: Obj = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "executor": {"type": "object", "additionalProperties": False, "properties": {"instances": {}}},
        "dynamicAllocation": {
            "type": "object",
            "additionalProperties": False,
            "properties": {k: {} for k in ("initialExecutors", "minExecutors", "maxExecutors")},
        },
    },
}


def check_patch(patch: object, scheduled: bool) -> None:
    jsonschema.validate(patch, PATCH_ONLY)
    assert isinstance(patch, dict)
    fragment = patch["spec"]["template"] if scheduled else patch["spec"]
    if scheduled:
        assert set(patch["spec"]) == {"template"}
    jsonschema.validate(fragment, ONLY_SIZING)
    jsonschema.validate(fragment, SIZING_FIELDS)


def app_spec(**extra: Any) -> Obj:
    """A SparkApplicationSpec with the CRD's required fields (driver, executor, mainApplicationFile,
    sparkVersion, type)."""
    spec: Obj = {
        "type": "Python",
        "sparkVersion": "4.0.0",
        "mode": "cluster",
        "mainApplicationFile": "local:///opt/spark/examples/src/main/python/pi.py",
        "driver": {"cores": 1, "memory": "512m"},
        "executor": {"cores": 2, "memory": "1g"},
    }
    spec.update(extra)
    return spec


def policy(kind: str, name: str, dry_run: bool = False) -> ScalingPolicy:
    return ScalingPolicy.model_validate(
        {
            "apiVersion": "queuescale.io/v1alpha1",
            "kind": "ScalingPolicy",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "target": {
                    "kind": kind,
                    "application": {"name": name},
                    "spark": {"pool": "p", "executorCores": 2},
                },
                "minReplicas": 1,
                "maxReplicas": 40,
                "metrics": [{"type": "SparkExecutors", "sparkExecutors": {}}],
                "dryRun": dry_run,
            },
        }
    )


def put_app(sandbox: KubeSandbox, name: str, spec: Obj, state: str | None) -> Obj:
    body: Obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SparkApplication", "metadata": {"name": name}}
    body["spec"] = spec
    if state is not None:
        body["status"] = {"applicationState": {"state": state}, "driverInfo": {}}
    return sandbox.put_object(GROUP, VERSION, "sparkapplications", NS, body)


def put_scheduled(sandbox: KubeSandbox, name: str, template: Obj) -> Obj:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ScheduledSparkApplication",
        "metadata": {"name": name},
        "spec": {"schedule": "@every 1h", "concurrencyPolicy": "Forbid", "template": template},
        "status": {"scheduleState": "Scheduled", "lastRunName": f"{name}-1"},
    }
    return sandbox.put_object(GROUP, VERSION, "scheduledsparkapplications", NS, body)


def read(sandbox: KubeSandbox, plural: str, name: str) -> Obj:
    obj = sandbox.get_object(GROUP, VERSION, plural, NS, name)
    assert obj is not None
    return obj


@contextlib.asynccontextmanager
async def api(sandbox: KubeSandbox, before_patch: Callable[[], None] | None = None) -> AsyncIterator[KubeOps]:
    """A client of the sandbox; with ``before_patch``, through a front that runs it before forwarding
    each PATCH (the operator acting between the actuator's read and its write)."""
    served = await serve(sandbox.app())
    front = None
    url = served.url
    if before_patch is not None:
        session_key = web.AppKey("session", aiohttp.ClientSession)

        async def forward(request: web.Request) -> web.Response:
            if request.method == "PATCH":
                before_patch()
            async with request.app[session_key].request(
                request.method,
                served.url + request.path_qs,
                data=await request.read(),
                headers=request.headers,
            ) as upstream:
                return web.Response(
                    status=upstream.status, body=await upstream.read(), content_type="application/json"
                )

        async def session_ctx(app: web.Application) -> AsyncIterator[None]:
            app[session_key] = aiohttp.ClientSession()
            yield
            await app[session_key].close()

        app = web.Application()
        app.cleanup_ctx.append(session_ctx)
        app.router.add_route("*", "/{tail:.*}", forward)
        front = await serve(app)
        url = front.url
    client = client_for(url)
    try:
        yield KubeOps(client)
    finally:
        await asyncio.to_thread(client.close)
        if front is not None:
            await front.stop()
        await served.stop()


@pytest.mark.parametrize("state", [None, "", "PENDING_RERUN"])
async def test_not_submitted_application_is_sized(state: str | None) -> None:
    sandbox = KubeSandbox()
    put_app(sandbox, "etl", app_spec(), state)
    async with api(sandbox) as ops:
        actuator = SparkApplicationActuator(policy("SparkApplication", "etl"), ops)
        before = await actuator.observe(0.0)
        outcome = await actuator.apply(6, 0.0)
        after = await actuator.observe(0.0)
    assert (before.found, before.replicas) == (True, 2)  # Spark's default spark.executor.instances
    assert outcome.replicas == 6
    assert outcome.errors == ()
    (patch,) = outcome.written.values()
    check_patch(patch, scheduled=False)
    obj = read(sandbox, "sparkapplications", "etl")
    jsonschema.validate(obj["spec"], SIZING_FIELDS)
    assert obj["spec"]["executor"] == {"cores": 2, "memory": "1g", "instances": 6}
    assert after.replicas == 6
    # Sized already: no second write.
    async with api(sandbox) as ops:
        again = await SparkApplicationActuator(policy("SparkApplication", "etl"), ops).apply(6, 1.0)
    assert again.written == {}
    assert "already gets 6 executors" in again.detail


@pytest.mark.parametrize(
    "state",
    ["SUBMITTED", "RUNNING", "SUCCEEDING", "COMPLETED", "FAILED", "SUBMISSION_FAILED", "INVALIDATING"],
)
async def test_submitted_application_is_never_written(state: str) -> None:
    sandbox = KubeSandbox()
    stored = put_app(sandbox, "etl", app_spec(executor={"cores": 2, "instances": 3}), state)
    async with api(sandbox) as ops:
        outcome = await SparkApplicationActuator(policy("SparkApplication", "etl"), ops).apply(9, 0.0)
    assert outcome.replicas is None
    assert outcome.written == {}
    assert "sized on its next creation or resubmission: 9 executors" in outcome.detail
    assert "INVALIDATING" in outcome.detail
    after = read(sandbox, "sparkapplications", "etl")
    assert after == stored  # same resourceVersion: not even a no-op write


async def test_submission_between_read_and_write_is_respected() -> None:
    sandbox = KubeSandbox()
    stored = put_app(sandbox, "etl", app_spec(), None)
    submitted: list[str] = []

    def operator_submits() -> None:
        if not submitted:
            obj = read(sandbox, "sparkapplications", "etl")
            obj["status"] = {"applicationState": {"state": "SUBMITTED"}, "driverInfo": {}}
            submitted.append(put_app(sandbox, "etl", obj["spec"], "SUBMITTED")["metadata"]["resourceVersion"])

    async with api(sandbox, before_patch=operator_submits) as ops:
        outcome = await SparkApplicationActuator(policy("SparkApplication", "etl"), ops).apply(6, 0.0)
    # The patch carried the old resourceVersion, got 409, and the fresh read showed it submitted.
    assert submitted
    assert outcome.written == {}
    assert outcome.replicas is None
    assert "it is SUBMITTED" in outcome.detail
    after = read(sandbox, "sparkapplications", "etl")
    assert after["spec"] == stored["spec"]
    assert after["metadata"]["resourceVersion"] == submitted[0]


async def test_dynamic_allocation_bounds_are_sized() -> None:
    sandbox = KubeSandbox()
    da = {"enabled": True, "minExecutors": 8, "initialExecutors": 8, "maxExecutors": 30}
    put_app(sandbox, "etl", app_spec(dynamicAllocation=da, suspend=True), "SUSPENDED")
    async with api(sandbox) as ops:
        actuator = SparkApplicationActuator(policy("SparkApplication", "etl"), ops)
        assert (await actuator.observe(0.0)).replicas == 30
        outcome = await actuator.apply(5, 0.0)
    check_patch(outcome.written["sparkapplications/etl"], scheduled=False)
    spec = read(sandbox, "sparkapplications", "etl")["spec"]
    jsonschema.validate(spec, SIZING_FIELDS)
    assert spec["dynamicAllocation"] == {
        "enabled": True,
        "minExecutors": 5,
        "initialExecutors": 5,
        "maxExecutors": 5,
    }
    assert spec["suspend"] is True


async def test_scheduled_template_is_sized_and_runs_are_left_alone() -> None:
    sandbox = KubeSandbox()
    put_scheduled(sandbox, "nightly", app_spec(executor={"cores": 2, "instances": 4}))
    run = put_app(sandbox, "nightly-1", app_spec(executor={"cores": 2, "instances": 4}), "RUNNING")
    async with api(sandbox) as ops:
        actuator = SparkApplicationActuator(policy("ScheduledSparkApplication", "nightly"), ops)
        assert (await actuator.observe(0.0)).replicas == 4
        outcome = await actuator.apply(12, 0.0)
    assert outcome.replicas == 12
    check_patch(outcome.written["scheduledsparkapplications/nightly"], scheduled=True)
    obj = read(sandbox, "scheduledsparkapplications", "nightly")
    jsonschema.validate(obj["spec"]["template"], SIZING_FIELDS)
    assert obj["spec"]["template"]["executor"]["instances"] == 12
    assert obj["spec"]["schedule"] == "@every 1h"
    assert obj["status"]["lastRunName"] == "nightly-1"
    assert read(sandbox, "sparkapplications", "nightly-1") == run


async def test_engine_sizes_the_next_run_from_the_last_run_peak() -> None:
    """The engine's next-run count (the peak the last run needed) lands in the template."""
    sandbox = KubeSandbox()
    template = app_spec(dynamicAllocation={"enabled": True, "maxExecutors": 4})
    put_scheduled(sandbox, "nightly", template)
    the_policy = policy("ScheduledSparkApplication", "nightly")
    state = EngineState()
    async with api(sandbox) as ops:
        actuator = SparkApplicationActuator(the_policy, ops)
        # A run with 14 remaining tasks on 2-core executors (7 executors), then fewer, then none.
        for now, remaining in ((0.0, 14), (15.0, 6), (30.0, None), (45.0, None)):
            target = await actuator.observe(now)
            apps = () if remaining is None else (AppDemand("run-1", remaining, executor_cores=2),)
            obs = Observation(now=now, current_replicas=target.replicas, spark=SparkSnapshot(apps=apps))
            decision, state = decide(the_policy, obs, state)
            outcome = await actuator.apply(decision.replicas, now)
            for patch in outcome.written.values():
                check_patch(patch, scheduled=True)
    spec = read(sandbox, "scheduledsparkapplications", "nightly")["spec"]["template"]
    assert spec["dynamicAllocation"] == {"enabled": True, "maxExecutors": 7, "initialExecutors": 7}


async def test_dry_run_and_missing_target() -> None:
    sandbox = KubeSandbox()
    stored = put_app(sandbox, "etl", app_spec(), None)
    async with api(sandbox) as ops:
        dry = await SparkApplicationActuator(policy("SparkApplication", "etl", dry_run=True), ops).apply(
            3, 0.0, dry_run=True
        )
        missing = SparkApplicationActuator(policy("SparkApplication", "gone"), ops)
        observed = await missing.observe(0.0)
        applied = await missing.apply(3, 0.0)
    assert dry.written == {}
    assert "dry run, would size" in dry.detail
    assert read(sandbox, "sparkapplications", "etl") == stored
    assert (observed.found, observed.reason) == (False, "SparkApplication jobs/gone not found")
    assert [e.operation for e in applied.errors] == ["get_application"]


async def test_zero_executors_is_one() -> None:
    sandbox = KubeSandbox()
    put_app(sandbox, "etl", app_spec(), None)
    async with api(sandbox) as ops:
        outcome = await SparkApplicationActuator(policy("SparkApplication", "etl"), ops).apply(0, 0.0)
    assert outcome.replicas == 1
    assert "at least 1 executor" in outcome.detail
    assert read(sandbox, "sparkapplications", "etl")["spec"]["executor"]["instances"] == 1


async def test_endless_conflicts_are_reported() -> None:
    sandbox = KubeSandbox()
    put_app(sandbox, "etl", app_spec(), None)
    writes: list[int] = []

    def someone_else_writes() -> None:
        obj = read(sandbox, "sparkapplications", "etl")
        obj["metadata"].setdefault("labels", {})["touched"] = str(len(writes))
        writes.append(1)
        sandbox.put_object(GROUP, VERSION, "sparkapplications", NS, obj)

    async with api(sandbox, before_patch=someone_else_writes) as ops:
        outcome = await SparkApplicationActuator(policy("SparkApplication", "etl"), ops).apply(6, 0.0)
    assert len(writes) == 5
    assert [e.operation for e in outcome.errors] == ["patch_application"]
    assert outcome.replicas is None
    assert "instances" not in read(sandbox, "sparkapplications", "etl")["spec"]["executor"]


async def test_apply_uses_what_observe_read_and_a_change_since_is_a_conflict() -> None:
    sandbox = KubeSandbox()
    put_app(sandbox, "etl", app_spec(), None)
    async with api(sandbox) as ops:
        actuator = SparkApplicationActuator(policy("SparkApplication", "etl"), ops)
        await actuator.observe(5.0)
        assert (await actuator.apply(4, 5.0)).replicas == 4
        before = len(sandbox.authorizations)
        assert (await actuator.observe(20.0)).replicas == 4
        steady = await actuator.apply(4, 20.0)
        # One read for the pass: apply decided on the object observe read.
        assert len(sandbox.authorizations) - before == 1
        assert "already gets 4 executors" in steady.detail
        # The operator submits it between the next pass's observe and apply.
        await actuator.observe(35.0)
        obj = read(sandbox, "sparkapplications", "etl")
        submitted = put_app(sandbox, "etl", obj["spec"], "SUBMITTED")
        outcome = await actuator.apply(6, 35.0)
    assert outcome.written == {}
    assert outcome.replicas is None
    assert "it is SUBMITTED" in outcome.detail
    after = read(sandbox, "sparkapplications", "etl")
    assert after["metadata"]["resourceVersion"] == submitted["metadata"]["resourceVersion"]
