"""The emulated Trino: state machines, queries, resource groups and HTTP answers, against upstream's rules."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.controller.targets.trino_workers.worker_api import parse_tasks
from lab.sandbox.trino import (
    Burst,
    Fault,
    LoadPattern,
    NodeState,
    QueryState,
    ResourceGroupSpec,
    StateChangeRefused,
    TrinoAuth,
    TrinoCluster,
    drive_load,
    java_double,
    node_metric_families,
    render_openmetrics,
)
from tests.helpers.trino import get_state, put_state, trino_sandbox
from tests.helpers.wait import eventually

GRACE = 10.0
U = {"X-Trino-User": "reader"}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def _metrics(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with session.get(f"{url}/metrics", headers=U) as response:
        assert response.status == 200
        text = await response.text()
    assert text.endswith("# EOF\n")
    # Family names: the text parser calls a counter's sample ``<name>_total``.
    return {f.name: f.samples[0].value for f in text_string_to_metric_families(text)}


# ------------------------------------------------------------------ state machines

# (version, node, states to reach first, requested state, status, text in the answer, state afterwards)
STATE_CASES = [
    # 468+: asking for the current state again changes nothing
    pytest.param(478, "worker", [], "ACTIVE", 200, "", "ACTIVE", id="478-active-again"),
    # 468+: a worker starts draining
    pytest.param(478, "worker", [], "DRAINING", 200, "", "DRAINING", id="478-active-to-draining"),
    # 468+: graceful shutdown straight from ACTIVE
    pytest.param(478, "worker", [], "SHUTTING_DOWN", 200, "", "SHUTTING_DOWN", id="478-active-to-shutdown"),
    # 468+: DRAINED is reached by draining, never requested
    pytest.param(478, "worker", [], "DRAINED", 500, "internal state DRAINED", "ACTIVE", id="478-ask-drained"),
    # 468+: INACTIVE is internal as well
    pytest.param(
        478, "worker", [], "INACTIVE", 500, "internal state INACTIVE", "ACTIVE", id="478-ask-inactive"
    ),
    # 468+: draining twice is a no-op
    pytest.param(478, "worker", ["DRAINING"], "DRAINING", 200, "", "DRAINING", id="478-draining-again"),
    # 468+: a drain can be called off
    pytest.param(478, "worker", ["DRAINING"], "ACTIVE", 200, "", "ACTIVE", id="478-draining-to-active"),
    # 468+: a draining worker may be shut down
    pytest.param(
        478, "worker", ["DRAINING"], "SHUTTING_DOWN", 200, "", "SHUTTING_DOWN", id="478-draining-to-shutdown"
    ),
    # 468+: a drained worker can come back
    pytest.param(478, "worker", ["DRAINED"], "ACTIVE", 200, "", "ACTIVE", id="478-drained-to-active"),
    # 468+: DRAINED -> DRAINING is not an edge
    pytest.param(
        478,
        "worker",
        ["DRAINED"],
        "DRAINING",
        400,
        "Invalid state transition to DRAINING",
        "DRAINED",
        id="478-drained-to-draining",
    ),
    # 468+: DRAINED again is a no-op although DRAINED cannot be requested
    pytest.param(478, "worker", ["DRAINED"], "DRAINED", 200, "", "DRAINED", id="478-drained-again"),
    # 468+: shutting down a drained worker exits at once
    pytest.param(478, "worker", ["DRAINED"], "SHUTTING_DOWN", 200, "", "gone", id="478-drained-to-shutdown"),
    # 468+: SHUTTING_DOWN is one-way
    pytest.param(
        478,
        "worker",
        ["SHUTTING_DOWN"],
        "ACTIVE",
        400,
        "Invalid state transition to ACTIVE",
        "SHUTTING_DOWN",
        id="478-shutdown-to-active",
    ),
    # 468+: ... and cannot turn into a drain
    pytest.param(
        478,
        "worker",
        ["SHUTTING_DOWN"],
        "DRAINING",
        400,
        "Invalid state transition to DRAINING",
        "SHUTTING_DOWN",
        id="478-shutdown-to-draining",
    ),
    # 468+: shutting down again is a no-op
    pytest.param(
        478, "worker", ["SHUTTING_DOWN"], "SHUTTING_DOWN", 200, "", "SHUTTING_DOWN", id="478-shutdown-again"
    ),
    # 468+: a name outside the enum fails JSON binding
    pytest.param(478, "worker", [], "PAUSED", 400, "JSON_PARSING_ERROR", "ACTIVE", id="478-unknown-state"),
    # 468+: the coordinator refuses to drain
    pytest.param(
        478, "coordinator", [], "DRAINING", 500, "Cannot drain coordinator", "ACTIVE", id="478-coord-drain"
    ),
    # 468+: the coordinator refuses to shut down
    pytest.param(
        478,
        "coordinator",
        [],
        "SHUTTING_DOWN",
        500,
        "Cannot shutdown coordinator",
        "ACTIVE",
        id="478-coord-stop",
    ),
    # 468..476 share the state machine
    pytest.param(476, "worker", ["DRAINED"], "ACTIVE", 200, "", "ACTIVE", id="476-drained-to-active"),
    # < 468: ACTIVE is always refused, even when the node is ACTIVE
    pytest.param(
        467,
        "worker",
        [],
        "ACTIVE",
        400,
        "Invalid state transition to ACTIVE",
        "ACTIVE",
        id="467-active-again",
    ),
    # < 468: INACTIVE is refused
    pytest.param(
        467,
        "worker",
        [],
        "INACTIVE",
        400,
        "Invalid state transition to INACTIVE",
        "ACTIVE",
        id="467-inactive",
    ),
    # < 468: DRAINING does not exist yet
    pytest.param(467, "worker", [], "DRAINING", 400, "JSON_PARSING_ERROR", "ACTIVE", id="467-no-draining"),
    # < 468: the only way out
    pytest.param(467, "worker", [], "SHUTTING_DOWN", 200, "", "SHUTTING_DOWN", id="467-shutdown"),
    # < 468: asking again is harmless
    pytest.param(
        467, "worker", ["SHUTTING_DOWN"], "SHUTTING_DOWN", 200, "", "SHUTTING_DOWN", id="467-shutdown-again"
    ),
    # < 468: one-way
    pytest.param(
        467,
        "worker",
        ["SHUTTING_DOWN"],
        "ACTIVE",
        400,
        "Invalid state transition to ACTIVE",
        "SHUTTING_DOWN",
        id="467-shutdown-to-active",
    ),
    # < 468: the coordinator refuses too
    pytest.param(
        467,
        "coordinator",
        [],
        "SHUTTING_DOWN",
        500,
        "Cannot shutdown coordinator",
        "ACTIVE",
        id="467-coord-stop",
    ),
]


@pytest.mark.parametrize(("version", "node", "setup", "target", "status", "text", "after"), STATE_CASES)
async def test_state_transitions(
    session: aiohttp.ClientSession,
    version: int,
    node: str,
    setup: list[str],
    target: str,
    status: int,
    text: str,
    after: str,
) -> None:
    async with trino_sandbox(version, workers=1, grace_period=GRACE) as sb:
        node_id = "coordinator" if node == "coordinator" else "worker-1"
        url = sb.url(node_id)
        for step in setup:
            if step == "DRAINED":
                assert (await put_state(session, url, "DRAINING"))[0] == 200
                sb.cluster.advance(sb.cluster.now + 2 * GRACE)
                assert await get_state(session, url) == "DRAINED"
            else:
                assert (await put_state(session, url, step))[0] == 200
        got_status, body = await put_state(session, url, target)
        assert got_status == status
        assert text in body
        if after == "gone":
            assert not sb.cluster.node(node_id).alive
            await sb.sync()
            with pytest.raises(aiohttp.ClientConnectionError):
                await get_state(session, url)
        else:
            assert await get_state(session, url) == after


async def test_drain_waits_for_tasks_and_two_grace_periods(session: aiohttp.ClientSession) -> None:
    work, workers, processors = 160.0, 2, 4
    async with trino_sandbox(478, workers=workers, worker_processors=processors) as sb:
        cluster = sb.cluster
        query = cluster.submit("global.adhoc", work)
        url = sb.url("worker-1")
        assert (await put_state(session, url, "DRAINING"))[0] == 200
        tasks_done = work / (workers * processors)
        assert tasks_done > GRACE  # the second grace period starts when the tasks end
        cluster.advance(tasks_done + GRACE - 0.01)
        assert query.state is QueryState.FINISHED
        assert await get_state(session, url) == "DRAINING"
        cluster.advance(tasks_done + GRACE)
        assert await get_state(session, url) == "DRAINED"
        assert not query.killed


async def test_drain_without_tasks_still_takes_two_grace_periods() -> None:
    cluster = TrinoCluster(478, workers=1, grace_period=GRACE, node_refresh_seconds=0)
    cluster.request_state("worker-1", "DRAINING")
    cluster.advance(2 * GRACE - 0.01)
    assert cluster.node("worker-1").state is NodeState.DRAINING
    cluster.advance(2 * GRACE)
    assert cluster.node("worker-1").state is NodeState.DRAINED


async def test_reactivated_worker_does_not_finish_the_old_drain() -> None:
    cluster = TrinoCluster(478, workers=1, grace_period=GRACE, node_refresh_seconds=0)
    cluster.request_state("worker-1", "DRAINING")
    cluster.advance(GRACE / 2)
    cluster.request_state("worker-1", "ACTIVE")
    cluster.advance(5 * GRACE)
    assert cluster.node("worker-1").state is NodeState.ACTIVE


async def test_coordinator_keeps_scheduling_on_a_draining_worker_until_it_refreshes() -> None:
    refresh = 5.0
    cluster = TrinoCluster(478, workers=2, grace_period=GRACE, node_refresh_seconds=refresh)
    cluster.advance(1.0)
    cluster.request_state("worker-1", "DRAINING")
    before = cluster.submit("global.adhoc", 1000.0)
    cluster.advance(refresh)
    after = cluster.submit("global.adhoc", 1000.0)
    assert {t.node_id for t in before.tasks} == {"worker-1", "worker-2"}
    assert {t.node_id for t in after.tasks} == {"worker-2"}
    assert cluster.node_counts()[NodeState.DRAINING] == 1


@pytest.mark.parametrize("version", [467, 478])
async def test_graceful_shutdown_lets_queries_finish_then_leaves(
    session: aiohttp.ClientSession, version: int
) -> None:
    work = 160.0
    async with trino_sandbox(version, workers=2) as sb:
        cluster = sb.cluster
        query = cluster.submit("global.adhoc", work)
        url = sb.url("worker-1")
        assert (await put_state(session, url, "SHUTTING_DOWN"))[0] == 200
        leaves_at = work / (2 * cluster.worker_processors) + GRACE
        cluster.advance(leaves_at - 0.01)
        assert cluster.node("worker-1").alive
        assert await get_state(session, url) == "SHUTTING_DOWN"
        cluster.advance(leaves_at)
        await sb.sync()
        assert not cluster.node("worker-1").alive
        assert query.state is QueryState.FINISHED
        assert "worker-1" not in sb.worker_urls
        with pytest.raises(aiohttp.ClientConnectionError):
            await get_state(session, url)


async def test_abrupt_removal_kills_only_queries_with_tasks_there() -> None:
    cluster = TrinoCluster(478, workers=2, node_refresh_seconds=0, groups=[ResourceGroupSpec("global")])
    older = cluster.submit("global", 1000.0)
    cluster.add_worker(node_id="spot")
    newer = cluster.submit("global", 1000.0)
    killed = cluster.remove_worker("spot")
    assert killed == [newer]
    assert newer.state is QueryState.FAILED
    assert newer.killed
    assert newer.error_name == "REMOTE_HOST_GONE"
    assert older.state is QueryState.RUNNING
    assert cluster.killed_queries == 1
    assert all(task.node_id != "spot" for task in older.tasks)


# ------------------------------------------------------------------ queries and groups


async def test_queries_wait_for_required_workers_not_in_a_queue(session: aiohttp.ClientSession) -> None:
    async with trino_sandbox(478, workers=0, required_workers=2) as sb:
        cluster = sb.cluster
        query = cluster.submit("global.adhoc", 80.0)
        assert query.state is QueryState.WAITING_FOR_RESOURCES
        values = await _metrics(session, sb.coordinator_url)
        assert values["trino_execution_name_ClusterSizeMonitor_RequiredWorkers"] == 2
        assert values["trino_execution_name_QueryManager_QueuedQueries"] == 0
        assert values["trino_execution_name_QueryManager_RunningQueries"] == 0
        await sb.add_worker()
        assert query.state is QueryState.WAITING_FOR_RESOURCES
        await sb.add_worker()
        assert query.state is QueryState.RUNNING
        assert (await _metrics(session, sb.coordinator_url))[
            "trino_execution_name_ClusterSizeMonitor_RequiredWorkers"
        ] == 0
        cluster.advance(cluster.now + 80.0 / (2 * cluster.worker_processors))
        assert query.state is QueryState.FINISHED


async def test_waiting_for_workers_times_out() -> None:
    cluster = TrinoCluster(478, workers=0, required_workers=1, required_workers_max_wait=60.0)
    query = cluster.submit("global.adhoc", 1.0)
    cluster.advance(59.0)
    assert query.state is QueryState.WAITING_FOR_RESOURCES
    cluster.advance(60.0)
    assert query.state is QueryState.FAILED
    assert query.error_message is not None
    assert "Insufficient active worker nodes" in query.error_message


async def test_hard_limit_queues_fifo_and_max_queued_rejects() -> None:
    limit, max_queued = 2, 3
    groups = [
        ResourceGroupSpec(
            "global",
            sub_groups=(ResourceGroupSpec("adhoc", hard_concurrency_limit=limit, max_queued=max_queued),),
        )
    ]
    cluster = TrinoCluster(478, workers=2, groups=groups, node_refresh_seconds=0)
    queries = [cluster.submit("global.adhoc", 8.0 * (i + 1)) for i in range(limit + max_queued + 1)]
    states = [q.state for q in queries]
    assert states.count(QueryState.RUNNING) == limit
    assert states.count(QueryState.QUEUED) == max_queued
    rejected = queries[-1]
    assert rejected.state is QueryState.FAILED
    assert rejected.error_message == 'Too many queued queries for "global.adhoc"'
    first_done = queries[0].work_seconds / (2 * cluster.worker_processors * 1.0) * limit
    cluster.advance(first_done)
    assert queries[0].state is QueryState.FINISHED
    assert queries[limit].state is QueryState.RUNNING  # the oldest queued query goes first
    assert queries[limit + 1].state is QueryState.QUEUED


@pytest.mark.parametrize(("version", "running"), [(478, 1), (430, 1), (429, 0)])
async def test_blocked_queries_make_no_progress_and_count_as_running_since_430(
    version: int, running: int
) -> None:
    cluster = TrinoCluster(version, workers=1, node_refresh_seconds=0)
    query = cluster.submit("global.adhoc", 40.0)
    cluster.set_blocked(query.query_id)
    # QueryManager.RunningQueries counts fully blocked queries since 430 (ProgressingQueries does not).
    assert (cluster.running_queries(), cluster.progressing_queries(), cluster.blocked_queries()) == (
        running,
        0,
        1,
    )
    cluster.advance(100.0)
    assert query.state is QueryState.RUNNING
    assert query.remaining_work == 40.0
    cluster.set_blocked(query.query_id, False)
    cluster.advance(100.0 + 40.0 / cluster.worker_processors)
    assert query.state is QueryState.FINISHED


async def test_percentage_memory_limit_grows_with_the_cluster() -> None:
    gib = 1024**3
    groups = [ResourceGroupSpec("global", soft_memory_limit="50%")]
    # ClusterMemoryBytes counts the coordinator too (6 GiB here): past 50% of 38 GiB after two 10 GiB queries.
    cluster = TrinoCluster(
        478,
        workers=2,
        groups=groups,
        worker_memory_bytes=16 * gib,
        coordinator_memory_bytes=6 * gib,
        node_refresh_seconds=0,
    )
    queries = [cluster.submit("global", 1000.0, memory_bytes=10 * gib) for _ in range(3)]
    assert [q.state for q in queries] == [QueryState.RUNNING, QueryState.RUNNING, QueryState.QUEUED]
    cluster.add_worker()
    cluster.add_worker()
    assert queries[2].state is QueryState.RUNNING


async def test_workers_added_mid_query_only_serve_new_queries() -> None:
    cluster = TrinoCluster(478, workers=1, node_refresh_seconds=0)
    early = cluster.submit("global.adhoc", 100.0)
    cluster.add_worker(node_id="late")
    later = cluster.submit("global.adhoc", 100.0)
    assert {t.node_id for t in early.tasks} == {"worker-1"}
    assert {t.node_id for t in later.tasks} == {"worker-1", "late"}


# ------------------------------------------------------------------ HTTP shapes

RESOURCE_GROUP_FIELDS = {
    "id",
    "state",
    "schedulingPolicy",
    "schedulingWeight",
    "softMemoryLimit",
    "softConcurrencyLimit",
    "hardConcurrencyLimit",
    "maxQueuedQueries",
    "memoryUsage",
    "cpuUsage",
    "numQueuedQueries",
    "numRunningQueries",
    "numEligibleSubGroups",
    "subGroups",
    "runningQueries",
}


async def test_resource_group_state_matches_upstream_shape(session: aiohttp.ClientSession) -> None:
    async with trino_sandbox(478) as sb:
        sb.cluster.submit_many("global.adhoc", 5, 100.0)
        async with session.get(f"{sb.coordinator_url}/v1/resourceGroupState/global", headers=U) as response:
            assert response.status == 200
            root = await response.json()
        assert set(root) == RESOURCE_GROUP_FIELDS
        assert root["id"] == ["global"]
        assert (root["numQueuedQueries"], root["numRunningQueries"]) == (3, 2)
        # Only sub-groups with queries are listed, as summaries without their own lists.
        assert [g["id"] for g in root["subGroups"]] == [["global", "adhoc"]]
        summary = root["subGroups"][0]
        assert set(summary) == RESOURCE_GROUP_FIELDS
        assert summary["subGroups"] is None
        assert summary["runningQueries"] is None
        assert summary["state"] == "CAN_QUEUE"
        assert len(root["runningQueries"]) == 2
        async with session.get(
            f"{sb.coordinator_url}/v1/resourceGroupState/global/adhoc", headers=U
        ) as response:
            leaf = await response.json()
        assert leaf["subGroups"] == []
        assert leaf["hardConcurrencyLimit"] == 2
        for missing in ("global/nope", "nope", "global//adhoc"):
            async with session.get(
                f"{sb.coordinator_url}/v1/resourceGroupState/{missing}", headers=U
            ) as response:
                assert response.status == 404, missing


async def test_info_shape_by_version(session: aiohttp.ClientSession) -> None:
    for version, with_state in ((476, False), (478, True)):
        async with trino_sandbox(version, workers=1) as sb:
            async with session.get(f"{sb.url('worker-1')}/v1/info") as response:
                info = await response.json()
            assert info["nodeVersion"] == {"version": str(version)}
            assert info["coordinator"] is False
            assert ("state" in info) is with_state
            assert ("nodeId" in info) is with_state


@pytest.mark.parametrize(
    ("version", "prefix", "states"),
    [
        # before 468 the node manager knows no drain states
        (467, "trino_metadata_name_DiscoveryNodeManager_", ["Active", "Inactive", "ShuttingDown"]),
        # 468..476: drain states, old domain
        (
            476,
            "trino_metadata_name_DiscoveryNodeManager_",
            ["Active", "Inactive", "Draining", "Drained", "ShuttingDown"],
        ),
        # 477+: CoordinatorNodeManager in trino.node
        (
            478,
            "trino_node_name_CoordinatorNodeManager_",
            ["Active", "Inactive", "Draining", "Drained", "ShuttingDown"],
        ),
    ],
)
async def test_metric_names_by_era(
    session: aiohttp.ClientSession, version: int, prefix: str, states: list[str]
) -> None:
    async with trino_sandbox(version, workers=3) as sb:
        sb.cluster.submit_many("global.adhoc", 4, 100.0)
        values = await _metrics(session, sb.coordinator_url)
        node_counts = {name[len(prefix) : -len("NodeCount")] for name in values if name.startswith(prefix)}
        assert node_counts == set(states)
        assert values[prefix + "ActiveNodeCount"] == 1 + len(sb.cluster.workers())
        assert values["trino_execution_name_QueryManager_QueuedQueries"] == sb.cluster.queued_queries()
        # The coordinator's memory counts, whether it schedules work or not (a real 476: TRINO_FACTS.md §8).
        assert values["trino_memory_name_ClusterMemoryManager_ClusterMemoryBytes"] == (
            sb.cluster.coordinator.memory_bytes + sum(w.memory_bytes for w in sb.cluster.workers())
        )
        other = "trino_node_name_" if "metadata" in prefix else "trino_metadata_name_"
        assert not any(name.startswith(other) for name in values)
        worker = await _metrics(session, sb.url("worker-1"))
        assert "trino_execution_name_QueryManager_QueuedQueries" not in worker
        # The default executor since 438 (ThreadPerDriverTaskExecutor), as a real 476 names it.
        dedicated = "trino_execution_executor_dedicated_name_ThreadPerDriverTaskExecutor_"
        assert worker[dedicated + "Tasks"] == worker[dedicated + "TotalRunningSplits"] == 2
        # Before 477 every node exports its DiscoveryNodeManager's view of the cluster.
        assert (prefix + "ActiveNodeCount" in worker) is (version < 477)


async def test_metrics_filter_and_counter_without_total(session: aiohttp.ClientSession) -> None:
    async with trino_sandbox(478) as sb:
        sb.cluster.submit("global.adhoc", 1.0)
        name = "trino_execution_name_QueryManager_SubmittedQueries"
        async with session.get(
            f"{sb.coordinator_url}/metrics", params={"name[]": name}, headers=U
        ) as response:
            text = await response.text()
        assert text == f"# TYPE {name} counter\n{name} 1\n# EOF\n"


async def test_query_counters_follow_query_manager_stats(session: aiohttp.ClientSession) -> None:
    qm = "trino_execution_name_QueryManager_"
    async with trino_sandbox(478) as sb:
        adhoc = sb.cluster.group("global.adhoc")
        # adhoc runs 2 and queues 10: of 14 queries, 2 run, 10 queue and 2 are rejected at once.
        sb.cluster.submit_many("global.adhoc", 14, 10.0)
        assert (adhoc.running_count(), adhoc.queued_count(), sb.cluster.rejected_queries) == (2, 10, 2)
        values = await _metrics(session, sb.coordinator_url)
        assert values[qm + "SubmittedQueries"] == 14
        # Started: reached RUNNING. Completed: every query that ended, the rejected ones included.
        assert values[qm + "StartedQueries"] == 2
        assert values[qm + "CompletedQueries"] == 2
        assert values[qm + "FailedQueries"] == 2

        sb.cluster.advance(3600.0)
        assert sb.cluster.queries(QueryState.RUNNING) == []
        values = await _metrics(session, sb.coordinator_url)
        assert values[qm + "StartedQueries"] == 12
        assert values[qm + "CompletedQueries"] == 14
        assert values[qm + "FailedQueries"] == 2
        assert values[qm + "SubmittedQueries"] == 14


def test_consumed_cpu_counts_whole_seconds_of_every_ended_query() -> None:
    cluster = TrinoCluster(476, workers=2, worker_processors=1, grace_period=1.0)
    # Rejected, never ran: nothing. Finished: floor of its CPU. Killed mid-run: the CPU it had used.
    short = cluster.submit("global.adhoc", 0.6)
    long = cluster.submit("global.adhoc", 5.5)
    cluster.advance(2.0)
    assert short.state is QueryState.FINISHED
    assert cluster.consumed_cpu_seconds == 0
    cluster.advance(4.0)  # model time, not a step: the long query ends at 3.05
    assert long.state is QueryState.FINISHED
    assert cluster.consumed_cpu_seconds == 5
    doomed = cluster.submit("global.adhoc", 100.0)
    cluster.advance(8.25)
    # One processor per worker: 2 CPU-seconds per second for 4.25 s.
    assert doomed.cpu_seconds == pytest.approx(8.5)
    cluster.remove_worker("worker-1")
    assert doomed.state is QueryState.FAILED
    assert cluster.consumed_cpu_seconds == 13
    values = {f.name: f for f in node_metric_families(cluster, cluster.coordinator)}
    family = values["trino_execution_name_QueryManager_ConsumedCpuTimeSecs"]
    assert (family.type, family.value) == ("counter", 13)
    assert "ConsumedCpuTimeSecs" not in render_openmetrics(
        node_metric_families(cluster, cluster.node("worker-2"))
    )


AUTH_CASES = [
    # insecure: no user at all
    pytest.param(TrinoAuth(), {}, 401, 'Basic realm="Trino"', id="insecure-no-user"),
    # insecure: X-Trino-User is enough to read
    pytest.param(TrinoAuth(), {"X-Trino-User": "anyone"}, 200, None, id="insecure-header"),
    # insecure: a Basic user without password works too
    pytest.param(TrinoAuth(), {"Authorization": "Basic YW55b25lOg=="}, 200, None, id="insecure-basic"),
    # insecure: a password is refused outright
    pytest.param(
        TrinoAuth(), {"Authorization": "Basic YW55b25lOnB3"}, 401, 'Basic realm="Trino"', id="insecure-pw"
    ),
    # read restricted to some users
    pytest.param(
        TrinoAuth(read_users=frozenset({"ops"})), {"X-Trino-User": "dev"}, 403, None, id="not-reader"
    ),
    # password: the right one (queuescale:s3cret)
    pytest.param(
        TrinoAuth(mode="password", passwords={"queuescale": "s3cret"}),
        {"Authorization": "Basic cXVldWVzY2FsZTpzM2NyZXQ="},
        200,
        None,
        id="password-ok",
    ),
    # password: wrong password (queuescale:nope)
    pytest.param(
        TrinoAuth(mode="password", passwords={"queuescale": "s3cret"}),
        {"Authorization": "Basic cXVldWVzY2FsZTpub3Bl"},
        401,
        'Basic realm="Trino"',
        id="password-wrong",
    ),
    # password: X-Trino-User alone is not a credential
    pytest.param(
        TrinoAuth(mode="password", passwords={"queuescale": "s3cret"}),
        {"X-Trino-User": "queuescale"},
        401,
        'Basic realm="Trino"',
        id="password-header-only",
    ),
    # password: naming another user is impersonation, refused by the default access control
    pytest.param(
        TrinoAuth(mode="password", passwords={"queuescale": "s3cret"}),
        {"Authorization": "Basic cXVldWVzY2FsZTpzM2NyZXQ=", "X-Trino-User": "admin"},
        403,
        None,
        id="password-impersonation",
    ),
    # jwt: a known token
    pytest.param(
        TrinoAuth(mode="jwt", tokens={"tok": "queuescale"}),
        {"Authorization": "Bearer tok"},
        200,
        None,
        id="jwt-ok",
    ),
    # jwt: an unknown token
    pytest.param(
        TrinoAuth(mode="jwt", tokens={"tok": "queuescale"}),
        {"Authorization": "Bearer other"},
        401,
        'Bearer realm="Trino"',
        id="jwt-wrong",
    ),
]


@pytest.mark.parametrize(("auth", "headers", "status", "challenge"), AUTH_CASES)
async def test_metrics_authentication(
    session: aiohttp.ClientSession,
    auth: TrinoAuth,
    headers: dict[str, str],
    status: int,
    challenge: str | None,
) -> None:
    async with (
        trino_sandbox(478, workers=0, auth=auth) as sb,
        session.get(
            f"{sb.coordinator_url}/metrics", headers=headers, ssl=sb.client_ssl() or True
        ) as response,
    ):
        assert response.status == status
        assert response.headers.get("WWW-Authenticate") == challenge


@pytest.mark.parametrize("mode", ["password", "jwt"])
async def test_authentication_over_plain_http_is_refused(session: aiohttp.ClientSession, mode: str) -> None:
    # As a real 476 with password authentication answers on its HTTP port (tests/peers/TRINO_FACTS.md §6).
    auth = TrinoAuth(mode=mode, passwords={"queuescale": "s3cret"}, tokens={"tok": "queuescale"})  # type: ignore[arg-type]
    async with trino_sandbox(478, workers=0, auth=auth, https=False) as sb:
        assert sb.coordinator_url.startswith("http://")
        for headers in (
            {"Authorization": "Basic cXVldWVzY2FsZTpzM2NyZXQ="},
            {"X-Trino-User": "queuescale"},
            {},
        ):
            async with session.get(f"{sb.coordinator_url}/metrics", headers=headers) as response:
                assert response.status == 403
                assert await response.text() == "Authentication over HTTP is not enabled"


async def test_state_changes_need_write_permission(session: aiohttp.ClientSession) -> None:
    async with trino_sandbox(478, workers=1, auth=TrinoAuth(write_users=frozenset({"ops"}))) as sb:
        url = sb.url("worker-1")
        assert (await put_state(session, url, "DRAINING", user="admin"))[0] == 403
        async with session.put(f"{url}/v1/info/state", json="DRAINING") as response:
            assert response.status == 401
        assert await get_state(session, url) == "ACTIVE"
        assert (await put_state(session, url, "DRAINING", user="ops"))[0] == 200


ODD_REQUESTS = [
    # wrong method on a known path
    pytest.param("POST", "/v1/info", {}, None, 405, id="post-info"),
    # DELETE is not a state change
    pytest.param("DELETE", "/v1/info/state", U, None, 405, id="delete-state"),
    # unknown path
    pytest.param("GET", "/v1/nothing-here", U, None, 404, id="unknown-path"),
    # @Consumes(application/json)
    pytest.param(
        "PUT", "/v1/info/state", {**U, "Content-Type": "text/plain"}, '"DRAINING"', 415, id="text-body"
    ),
    # body that is not JSON
    pytest.param(
        "PUT",
        "/v1/info/state",
        {"X-Trino-User": "admin", "Content-Type": "application/json"},
        "{",
        400,
        id="bad-json",
    ),
    # JSON null reaches requireNonNull
    pytest.param(
        "PUT",
        "/v1/info/state",
        {"X-Trino-User": "admin", "Content-Type": "application/json"},
        "null",
        500,
        id="null",
    ),
    # @Produces(openmetrics) only
    pytest.param("GET", "/metrics", {**U, "Accept": "text/plain"}, None, 406, id="metrics-accept"),
    # QueryState.valueOf fails inside the resource
    pytest.param("GET", "/v1/query?state=bogus", U, None, 500, id="bad-query-state"),
    # an empty group id does not match the route
    pytest.param("GET", "/v1/resourceGroupState/", U, None, 404, id="empty-group"),
    # the coordinator says so
    pytest.param("GET", "/v1/info/coordinator", {}, None, 200, id="is-coordinator"),
    # the Web UI API needs a UI session
    pytest.param("GET", "/ui/api/stats", U, None, 401, id="ui-without-login"),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status"), ODD_REQUESTS)
async def test_odd_requests(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    headers: dict[str, str],
    body: str | None,
    status: int,
) -> None:
    async with (
        trino_sandbox(478, workers=0) as sb,
        session.request(method, sb.coordinator_url + path, headers=headers, data=body) as response,
    ):
        assert response.status == status


async def test_worker_has_no_coordinator_endpoints(session: aiohttp.ClientSession) -> None:
    async with trino_sandbox(478, workers=1) as sb:
        for path in ("/v1/query", "/v1/resourceGroupState/global", "/ui/api/stats", "/v1/info/coordinator"):
            async with session.get(sb.url("worker-1") + path, headers=U) as response:
                assert response.status == 404, path


async def test_ui_stats_after_form_login() -> None:
    # The UI cookie is set by a loopback IP address, which the default cookie jar refuses to keep.
    async with (
        trino_sandbox(478, workers=2) as sb,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session,
    ):
        cluster = sb.cluster
        queries = cluster.submit_many("global.adhoc", 4, 100.0)
        cluster.set_blocked(queries[0].query_id)
        async with session.post(
            f"{sb.coordinator_url}/ui/login",
            data={"username": "viewer", "password": ""},
            allow_redirects=False,
        ) as response:
            assert response.status == 303
        async with session.get(f"{sb.coordinator_url}/ui/api/stats") as response:
            assert response.status == 200
            stats = await response.json()
        expected = {
            "runningQueries": sum(1 for q in queries if q.state is QueryState.RUNNING and not q.blocked),
            "blockedQueries": 1,
            "queuedQueries": sum(1 for q in queries if q.state is QueryState.QUEUED),
            "activeWorkers": len(cluster.workers()),
        }
        assert {k: stats[k] for k in expected} == expected


async def test_query_list_filters_by_state_and_viewer(session: aiohttp.ClientSession) -> None:
    auth = TrinoAuth(view_all_users=frozenset({"ops"}))
    async with trino_sandbox(478, auth=auth) as sb:
        mine = sb.cluster.submit("global.adhoc", 100.0, user="alice")
        sb.cluster.submit_many("global.adhoc", 3, 100.0, user="bob")
        url = f"{sb.coordinator_url}/v1/query"
        async with session.get(url, params={"state": "queued"}, headers={"X-Trino-User": "ops"}) as response:
            listed = await response.json()
        assert {q["state"] for q in listed} == {"QUEUED"}
        assert len(listed) == sb.cluster.queued_queries()
        async with session.get(url, headers={"X-Trino-User": "alice"}) as response:
            assert [q["queryId"] for q in await response.json()] == [mine.query_id]


async def test_faults_replace_answers(session: aiohttp.ClientSession) -> None:
    async with trino_sandbox(478, workers=0) as sb:
        sb.faults().set("/metrics", Fault(status=503, body="busy"))
        async with session.get(f"{sb.coordinator_url}/metrics", headers=U) as response:
            assert (response.status, await response.text()) == (503, "busy")
        sb.faults().clear()
        async with session.get(f"{sb.coordinator_url}/metrics", headers=U) as response:
            assert response.status == 200


# ------------------------------------------------------------------ load and runner


def test_load_arrivals_do_not_depend_on_how_time_is_sliced() -> None:
    pattern = LoadPattern("global.adhoc", rate=2.0, amplitude=0.5, period_seconds=60.0, seed=7)
    whole = pattern.arrivals(0.0, 120.0)
    sliced = [a for t in range(0, 120, 7) for a in pattern.arrivals(float(t), float(min(t + 7, 120)))]
    assert [(a.at, a.work_seconds) for a in whole] == [(a.at, a.work_seconds) for a in sliced]
    assert all(0.0 <= a.at < 120.0 for a in whole)


def test_load_rate_follows_wave_and_bursts() -> None:
    base = LoadPattern("global.adhoc", rate=1.0, amplitude=0.9, period_seconds=400.0, seed=3)
    crest = len(base.arrivals(50.0, 150.0))  # sin > 0.7 here
    trough = len(base.arrivals(250.0, 350.0))
    assert crest > 3 * trough
    bursty = LoadPattern(
        "global.adhoc", rate=1.0, bursts=(Burst(start=1000.0, duration=100.0, rate=5.0),), seed=3
    )
    assert len(bursty.arrivals(1000.0, 1100.0)) > 3 * len(bursty.arrivals(2000.0, 2100.0))


def test_drive_load_submits_in_time_order() -> None:
    cluster = TrinoCluster(478, workers=2, node_refresh_seconds=0)
    patterns = [LoadPattern("global.adhoc", rate=1.0, seed=1), LoadPattern("global.etl", rate=1.0, seed=2)]
    queries = drive_load(cluster, patterns, 0.0, 30.0)
    created = [q.created_at for q in queries]
    assert created == sorted(created)
    assert len(queries) == cluster.submitted_queries > 0


async def test_runner_advances_on_the_wall_clock(session: aiohttp.ClientSession) -> None:
    load = [LoadPattern("global.adhoc", rate=2.0, mean_work_seconds=1.0, seed=5)]
    async with trino_sandbox(478, tick_seconds=0.02, speedup=50.0, load=load) as sb:
        query = sb.cluster.submit("global.adhoc", 8.0)

        async def state() -> QueryState:
            return query.state

        await eventually(state, check=lambda s: s is QueryState.FINISHED)

        async def submitted() -> float:
            values = await _metrics(session, sb.coordinator_url)
            return values["trino_execution_name_QueryManager_SubmittedQueries"]

        await eventually(submitted, check=lambda n: n > 1)


def test_java_double_rendering() -> None:
    cases = [
        (3.0, "3.0"),  # integral gauges keep one decimal
        (0.5, "0.5"),  # plain decimal
        (68719476736.0, "6.8719476736E10"),  # large values switch to E notation at 10^7
        (1e7, "1.0E7"),  # the threshold itself
        (1.5e-4, "1.5E-4"),  # small values too
        (float("nan"), "NaN"),  # idle timers
    ]
    for value, text in cases:
        assert java_double(value) == text
    assert json.loads(json.dumps(java_double(2.0))) == "2.0"


# ----- version rules the real 476 showed, or that upstream has beyond it (issue 12)


@pytest.mark.parametrize(("version", "status"), [(476, 400), (468, 400), (477, 500), (478, 500)])
def test_putting_an_internal_state_by_version(version: int, status: int) -> None:
    # A real 476 answers 400 "Invalid state transition to DRAINED"; 477+ NodeStateManager: 500.
    cluster = TrinoCluster(version, workers=1, node_refresh_seconds=0)
    for target in ("DRAINED", "INACTIVE"):
        with pytest.raises(StateChangeRefused) as refused:
            cluster.request_state("worker-1", target)
        assert refused.value.status == status
    assert cluster.node("worker-1").state is NodeState.ACTIVE


@pytest.mark.parametrize(("version", "killed"), [(474, 1), (475, 1), (476, 0), (473, 0)])
def test_shutdown_of_474_and_475_does_not_wait_for_tasks(version: int, killed: int) -> None:
    # trinodb/trino#25690: 474-475 exit one grace period after SHUTTING_DOWN, tasks or not (fixed in 476).
    cluster = TrinoCluster(version, workers=2, grace_period=10.0, node_refresh_seconds=0)
    query = cluster.submit("global.adhoc", 1000.0)
    cluster.request_state("worker-1", "SHUTTING_DOWN")
    cluster.advance(10.5)
    assert cluster.killed_queries == killed
    assert cluster.node("worker-1").alive is (killed == 0)
    assert (query.state is QueryState.FAILED) is (killed == 1)


@pytest.mark.parametrize(("version", "inactive"), [(478, 1), (477, 1), (476, 0)])
def test_a_new_worker_is_inactive_until_the_coordinator_reads_it(version: int, inactive: int) -> None:
    cluster = TrinoCluster(version, workers=1, node_refresh_seconds=5.0)
    cluster.advance(5.0)
    cluster.add_worker(node_id="late")
    counts = cluster.node_counts()
    assert (counts[NodeState.INACTIVE], counts[NodeState.ACTIVE]) == (inactive, 2)
    cluster.advance(10.0)
    assert cluster.node_counts()[NodeState.INACTIVE] == 0
    assert cluster.node_counts()[NodeState.ACTIVE] == 3


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        (480, ["FullyBlockedQueries", "ActiveWorkerCount"], []),
        (479, ["FullyBlockedQueries"], ["ActiveWorkerCount"]),
        (470, ["FullyBlockedQueries"], ["ActiveWorkerCount"]),
        (469, [], ["FullyBlockedQueries", "ActiveWorkerCount"]),
    ],
)
async def test_coordinator_gauges_by_version(
    session: aiohttp.ClientSession, version: int, present: list[str], absent: list[str]
) -> None:
    async with trino_sandbox(version, workers=2) as sb:
        names = {name.rsplit("_", 1)[-1] for name in await _metrics(session, sb.coordinator_url)}
        assert set(present) <= names
        assert not set(absent) & names


@pytest.mark.parametrize(
    ("version", "executor"),
    [
        (478, "trino_execution_executor_dedicated_name_ThreadPerDriverTaskExecutor_Tasks"),
        (438, "trino_execution_executor_dedicated_name_ThreadPerDriverTaskExecutor_Tasks"),
        (437, "trino_execution_executor_timesharing_name_TimeSharingTaskExecutor_Tasks"),
        (424, "trino_execution_executor_timesharing_name_TimeSharingTaskExecutor_Tasks"),
        (423, "trino_execution_executor_name_TaskExecutor_Tasks"),
    ],
)
async def test_worker_task_executor_by_version(
    session: aiohttp.ClientSession, version: int, executor: str
) -> None:
    async with trino_sandbox(version, workers=1) as sb:
        sb.cluster.submit("global.adhoc", 100.0)
        values = await _metrics(session, sb.url("worker-1"))
        assert values[executor] == 1
        assert (
            parse_tasks(render_openmetrics(node_metric_families(sb.cluster, sb.cluster.node("worker-1"))))
            == 1
        )
