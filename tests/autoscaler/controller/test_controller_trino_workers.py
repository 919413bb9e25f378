"""The Trino worker calls of the actuator against the emulated Trino, and the pod-reading helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from autoscaler.controller.actuator import DRAIN_STARTED_ANNOTATION, POD_DELETION_COST, ActuatorError
from autoscaler.controller.pods import pod_view
from autoscaler.controller.targets.trino_workers.actuator import pod_ordinal, worker_url, worker_view
from autoscaler.controller.targets.trino_workers.plan import DRAIN_KEPT_ANNOTATION
from autoscaler.controller.targets.trino_workers.worker_api import (
    TrinoWorkerClient,
    auth_headers,
    parse_tasks,
)
from lab.sandbox.trino import Fault, TrinoAuth
from tests.helpers.trino import refused_url, trino_sandbox

ADMIN = auth_headers("admin", None)


@pytest.fixture
async def client() -> AsyncIterator[TrinoWorkerClient]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        yield TrinoWorkerClient(session)


# (metrics text, tasks)
TASK_CASES = [
    # 438 on (the default ThreadPerDriverTaskExecutor), as a real 476 worker sends them under a query;
    # the unused time-sharing queue's gauges are there too, at zero (tests/peers/TRINO_FACTS.md §3)
    (
        "# TYPE trino_execution_executor_dedicated_name_ThreadPerDriverTaskExecutor_Tasks gauge\n"
        "trino_execution_executor_dedicated_name_ThreadPerDriverTaskExecutor_Tasks 2.0\n"
        "trino_execution_executor_dedicated_name_ThreadPerDriverTaskExecutor_TotalRunningSplits 5.0\n"
        "trino_execution_executor_timesharing_name_MultilevelSplitQueue_Level0Time 0.0\n# EOF\n",
        2,
    ),
    # only the dedicated executor's split gauge
    ("trino_execution_executor_dedicated_name_ThreadPerDriverTaskExecutor_TotalRunningSplits 4.0\n", 4),
    # an unused executor at zero never hides the one in use
    (
        "trino_execution_executor_timesharing_name_TimeSharingTaskExecutor_Tasks 0.0\n"
        "trino_execution_executor_dedicated_name_ThreadPerDriverTaskExecutor_Tasks 3.0\n",
        3,
    ),
    # 424-437, or configured: the time-sharing executor's Tasks gauge
    ("trino_execution_executor_timesharing_name_TimeSharingTaskExecutor_Tasks 3.0\n# EOF\n", 3),
    # older releases: TaskExecutor's Tasks gauge
    (
        "# TYPE trino_execution_executor_name_TaskExecutor_Tasks gauge\ntrino_execution_executor_name_TaskExecutor_Tasks 2.0\n",
        2,
    ),
    # a build with split gauges only: running + blocked + waiting
    (
        "trino_execution_executor_name_TaskExecutor_RunningSplits 2.0\n"
        "trino_execution_executor_name_TaskExecutor_BlockedSplits 1.0\n"
        "trino_execution_executor_name_TaskExecutor_WaitingSplits 4.0\n",
        7,
    ),
    # Tasks wins over splits when both are there
    (
        "trino_execution_executor_name_TaskExecutor_Tasks 1.0\n"
        "trino_execution_executor_name_TaskExecutor_RunningSplits 9.0\n",
        1,
    ),
    # nothing about the executor: unknown, not zero
    ("jvm_memory_bytes 1.0\n# EOF\n", None),
    # garbage values are skipped
    ("trino_execution_executor_name_TaskExecutor_Tasks NaN-ish\n", None),
]


@pytest.mark.parametrize(("text", "tasks"), TASK_CASES)
def test_parse_tasks(text: str, tasks: int | None) -> None:
    assert parse_tasks(text) == tasks


def test_auth_headers() -> None:
    assert auth_headers("admin", None) == {"X-Trino-User": "admin"}
    # admin:s3cret
    assert auth_headers("admin", "s3cret")["Authorization"] == "Basic YWRtaW46czNjcmV0"


def _pod(name: str = "w-1", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": status.pop("annotations", {})},
        "spec": {
            "containers": [
                {"name": "side", "ports": [{"name": "metrics", "containerPort": 9000}]},
                {"name": "trino", "ports": [{"name": "http", "containerPort": 8081}]},
            ]
        },
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.7",
            "conditions": [{"type": "Ready", "status": "True"}],
            **status,
        },
    }


def test_worker_url_from_the_named_port() -> None:
    assert worker_url(pod_view(_pod())) == "http://10.0.0.7:8081"
    # https coordinator: the port named https, 8443 when none is
    assert worker_url(pod_view(_pod()), "https") == "https://10.0.0.7:8443"
    # no IP yet: no URL
    assert worker_url(pod_view(_pod(podIP=None))) is None
    # IPv6 pod addresses are bracketed
    assert worker_url(pod_view(_pod(podIP="fd00::5"))) == "http://[fd00::5]:8081"


def test_worker_url_default_port() -> None:
    pod = _pod()
    pod["spec"]["containers"] = [{"name": "trino"}]
    assert worker_url(pod_view(pod)) == "http://10.0.0.7:8080"


@pytest.mark.parametrize(
    ("name", "ordinal"),
    [
        ("trino-worker-0", 0),
        ("trino-worker-12", 12),
        ("trino-worker-01", None),
        ("other-3", None),
        ("trino-worker-", None),
    ],
)
def test_pod_ordinal(name: str, ordinal: int | None) -> None:
    assert pod_ordinal(name, "trino-worker") == ordinal


def test_worker_view_reads_the_annotations() -> None:
    pod = _pod(
        annotations={
            DRAIN_STARTED_ANNOTATION: "1700000000.250",
            POD_DELETION_COST: "-1000",
            DRAIN_KEPT_ANNOTATION: "1699999000",
        }
    )
    view = worker_view(pod_view(pod), "DRAINING", 2, 1, now=1700000100.0)
    assert (view.pod, view.ordinal, view.running, view.ready, view.state, view.work) == (
        "w-1",
        1,
        True,
        True,
        "DRAINING",
        2,
    )
    assert (view.drain_started, view.deletion_cost, view.kept_at, view.started_invalid) == (
        1700000000.25,
        -1000,
        1699999000.0,
        False,
    )


def test_worker_view_unreadable_start_counts_from_now() -> None:
    view = worker_view(
        pod_view(_pod(annotations={DRAIN_STARTED_ANNOTATION: "yesterday"})), "DRAINING", 0, None, now=5.0
    )
    assert (view.drain_started, view.started_invalid) == (5.0, True)


def test_worker_view_pending_pod_has_no_trino() -> None:
    pod = _pod(phase="Pending", podIP=None, conditions=[])
    view = worker_view(pod_view(pod), None, None, None, now=0.0)
    assert (view.running, view.ready, view.state, view.work) == (False, False, None, 0)


@pytest.mark.parametrize("version", [478, 460])
async def test_state_tasks_and_put(client: TrinoWorkerClient, version: int) -> None:
    async with trino_sandbox(version, workers=2) as sb:
        url = next(iter(sb.worker_urls.values()))
        assert await client.state(url, ADMIN) == "ACTIVE"
        sb.cluster.submit_many("global.etl", 2, 100.0)
        assert await client.tasks(url, ADMIN) == 2
        target = "DRAINING" if version >= 468 else "SHUTTING_DOWN"
        await client.put_state(url, target, ADMIN, "w")
        assert await client.state(url, ADMIN) == target
        # the same state again is a no-op
        await client.put_state(url, target, ADMIN, "w")


async def test_put_refusals_are_errors(client: TrinoWorkerClient) -> None:
    async with trino_sandbox(460, workers=1) as sb:
        url = next(iter(sb.worker_urls.values()))
        # Trino < 468 has no DRAINING
        with pytest.raises(ActuatorError, match="HTTP 400") as refused:
            await client.put_state(url, "DRAINING", ADMIN, "w-0")
        assert refused.value.operation == "trino_state"
        # writing needs "write system information"
        with pytest.raises(ActuatorError, match="HTTP 403"):
            await client.put_state(url, "SHUTTING_DOWN", auth_headers("someone", None), "w-0")
        # the coordinator refuses to shut down
        with pytest.raises(ActuatorError, match="HTTP 500"):
            await client.put_state(sb.coordinator_url, "SHUTTING_DOWN", ADMIN, "coordinator")


async def test_password_authentication(client: TrinoWorkerClient) -> None:
    auth = TrinoAuth(mode="password", passwords={"admin": "s3cret"})
    async with trino_sandbox(478, workers=1, auth=auth) as sb:
        # Passwords go over HTTPS only: the client trusts the sandbox's certificate.
        client = TrinoWorkerClient(client.session, ssl=sb.client_ssl() or True)
        url = next(iter(sb.worker_urls.values()))
        sb.cluster.submit("global.etl", 50.0)
        # without the password the metrics are unreadable and the PUT is refused
        assert await client.tasks(url, ADMIN) is None
        with pytest.raises(ActuatorError, match="HTTP 401"):
            await client.put_state(url, "DRAINING", ADMIN, "w-0")
        with_password = auth_headers("admin", "s3cret")
        assert await client.tasks(url, with_password) == 1
        await client.put_state(url, "DRAINING", with_password, "w-0")
        assert await client.state(url, with_password) == "DRAINING"


async def test_unreachable_worker(client: TrinoWorkerClient) -> None:
    url = refused_url()
    assert await client.state(url, ADMIN) is None
    assert await client.tasks(url, ADMIN) is None
    with pytest.raises(ActuatorError, match="PUT DRAINING on w-9"):
        await client.put_state(url, "DRAINING", ADMIN, "w-9")


async def test_faulty_answers_are_unknown(client: TrinoWorkerClient) -> None:
    async with trino_sandbox(478, workers=1) as sb:
        node, url = next(iter(sb.worker_urls.items()))
        sb.faults(node).set(
            "/v1/info/state", Fault(status=200, body="not json", content_type="application/json")
        )
        sb.faults(node).set("/metrics", Fault(status=503))
        assert await client.state(url, ADMIN) is None
        assert await client.tasks(url, ADMIN) is None
