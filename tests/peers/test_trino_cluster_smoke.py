"""A real Trino 476 answers the basics the adapter and the controller rely on."""

from __future__ import annotations

import time

import pytest

from tests.peers.trino_cluster import ADMIN, MONITOR, USER, TrinoCluster

pytestmark = [pytest.mark.real_trino, pytest.mark.timeout(600)]


def test_every_node_started_active_and_is_476(real_trino: TrinoCluster) -> None:
    for node in real_trino.nodes:
        info = real_trino.info(node)
        assert info["starting"] is False
        assert info["nodeVersion"]["version"] == "476"
        assert info["coordinator"] is node.coordinator
        assert real_trino.get_state(node) == "ACTIVE"
    assert real_trino.active_workers() == ["worker-1", "worker-2"]


def test_a_query_runs_on_the_workers(real_trino: TrinoCluster) -> None:
    assert real_trino.query("SELECT count(*) FROM tpch.tiny.nation") == [[25]]


def test_metrics_need_a_user_with_read_rights(real_trino: TrinoCluster) -> None:
    coordinator, worker = real_trino.coordinator, real_trino.workers[0]
    assert real_trino.metrics(coordinator, user=None).status == 401
    assert real_trino.metrics(coordinator, user=USER).status == 403
    text = real_trino.metrics(coordinator, user=MONITOR).text
    assert text.rstrip().endswith("# EOF")
    assert "trino_execution_name_QueryManager_RunningQueries " in text
    assert "trino_memory_name_ClusterMemoryManager_ClusterMemoryBytes " in text
    assert "# TYPE trino_execution_name_QueryManager_StartedQueries counter" in text
    worker_text = real_trino.metrics(worker, user=MONITOR).text
    assert (
        "trino_execution_executor_dedicated_name_ThreadPerDriverTaskExecutor_TotalRunningSplits "
        in worker_text
    )


def test_only_admin_may_change_a_node_state(real_trino: TrinoCluster) -> None:
    worker = real_trino.workers[1]
    assert real_trino.set_state(worker, "DRAINING", user=USER).status == 403
    resp = real_trino.set_state(worker, "DRAINED")
    assert (resp.status, resp.text) == (400, "Error 400 Bad Request: Invalid state transition to DRAINED")
    assert real_trino.get_state(worker) == "ACTIVE"


def test_an_idle_worker_drains_and_comes_back(real_trino: TrinoCluster) -> None:
    worker = real_trino.workers[1]
    assert real_trino.set_state(worker, "DRAINING", user=ADMIN).status == 200
    deadline = time.monotonic() + 60
    while real_trino.get_state(worker) != "DRAINED":
        assert time.monotonic() < deadline, "not DRAINED within 60 s"
        time.sleep(0.2)
    assert real_trino.set_state(worker, "ACTIVE").status == 200
    assert real_trino.get_state(worker) == "ACTIVE"
