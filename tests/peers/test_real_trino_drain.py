"""The controller's Trino actuator drains real Trino 476 workers (tests/peers/real_trino_kube.py puts them
behind the pods of a Deployment). Long queries scan a blackhole table whose pages take seconds, so work runs
on every worker while the drain goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoscaler.controller.targets.trino_workers.plan import DRAIN_KEPT_ANNOTATION
from autoscaler.policy.models import SecretKeyRef, TrinoWorkerTls
from tests.peers.real_trino_kube import NAMESPACE, actuator, long_queries, passes, real_workers_on_kube
from tests.peers.trino_cluster import ADMIN, PASSWORDS, TrinoCluster, start_trino_cluster

pytestmark = [pytest.mark.real_trino, pytest.mark.timeout(900)]


async def test_scale_down_drains_the_least_busy_worker_and_fails_no_query(real_trino: TrinoCluster) -> None:
    async with real_workers_on_kube(real_trino) as world:
        queries = long_queries(real_trino, "drain_slow", "12s")
        tasks = {node.name: world.tasks(node) for node in real_trino.workers}
        act = actuator(world)
        try:
            outcomes = await passes(act, 1, 120, lambda o: o.replicas is not None)
        finally:
            await act.close()
        assert outcomes[-1].replicas == 1, [o.errors or o.detail for o in outcomes]
        assert all(not o.errors for o in outcomes), [o.errors for o in outcomes]
        assert await world.replicas() == 1
        deadline = time.monotonic() + 30
        while not world.removals:
            assert time.monotonic() < deadline, "the Deployment removed no pod"
            await asyncio.sleep(0.1)
        # Removed only once DRAINED, and the worker chosen was the one with the least work then.
        (removal,) = world.removals
        assert (removal.state, removal.tasks) == ("DRAINED", 0)
        assert tasks[removal.worker] == min(t or 0 for t in tasks.values()), tasks
        assert [e.outcome for o in outcomes for e in o.drains_ended] == ["completed"]
        # Zero queries failed.
        for q in queries:
            assert q.result(120) == [[2 * len(real_trino.workers)]]


async def test_load_returning_mid_drain_puts_the_worker_back(real_trino: TrinoCluster) -> None:
    async with real_workers_on_kube(real_trino) as world:
        queries = long_queries(real_trino, "return_slow", "60s")
        act = actuator(world)
        try:
            first = await act.apply(1, time.time())
            assert (first.drains_started, first.replicas) == (1, None)
            draining = [n for n in real_trino.workers if real_trino.get_state(n) == "DRAINING"]
            assert len(draining) == 1
            back = await act.apply(2, time.time())
        finally:
            await act.close()
        assert [e.outcome for e in back.drains_ended] == ["aborted"]
        assert real_trino.get_state(draining[0]) == "ACTIVE"
        assert await world.replicas() == 2
        assert world.removals == []
        for q in queries:
            q.cancel()


async def test_a_drain_that_cannot_finish_in_time_leaves_the_worker_serving(real_trino: TrinoCluster) -> None:
    async with real_workers_on_kube(real_trino) as world:
        queries = long_queries(real_trino, "stuck_slow", "60s")
        act = actuator(world, timeout=8, on_timeout="Abort")
        try:
            outcomes = await passes(act, 1, 40, lambda o: bool(o.drains_ended))
        finally:
            await act.close()
        (ended,) = [e for o in outcomes for e in o.drains_ended]
        assert ended.outcome == "timeout_kept"
        # The worker that could not drain serves again, and the outcome says so (a Warning Event); the
        # controller may go on to try the other worker, whose drain is as undoable.
        (kept,) = [
            world.by_pod[name]
            for name in await world.pods()
            if DRAIN_KEPT_ANNOTATION
            in (world.kube.sandbox.get_object("", "v1", "pods", NAMESPACE, name) or {})
            .get("metadata", {})
            .get("annotations", {})
        ]
        assert real_trino.get_state(kept) == "ACTIVE"
        assert "kept ACTIVE (onTimeout: Abort)" in outcomes[-1].detail
        assert any(e.reason == "DrainTimedOut" and e.type == "Warning" for e in outcomes[-1].events)
        assert await world.replicas() == 2
        assert world.removals == []
        for q in queries:
            q.cancel()


async def test_credentials_the_worker_refuses_are_reported_and_it_keeps_serving(
    real_trino: TrinoCluster, tmp_path: Path
) -> None:
    # A password over plain HTTP: Trino refuses it (401 "Password not allowed for insecure authentication").
    password = tmp_path / "password"
    password.write_text("not-used-over-http")
    async with real_workers_on_kube(real_trino) as world:
        act = actuator(world, password_file=password)
        try:
            outcome = await act.apply(1, time.time())
        finally:
            await act.close()
        assert outcome.errors, outcome
        assert any("401" in str(e) for e in outcome.errors), outcome.errors
        assert all(real_trino.get_state(n) == "ACTIVE" for n in real_trino.workers)
        assert await world.replicas() == 2
        assert world.removals == []


@pytest.fixture(scope="module")
def https_trino(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrinoCluster]:
    """Workers behind HTTPS with the password-file authenticator: passwords only over HTTPS."""
    cluster = start_trino_cluster(tmp_path_factory.mktemp("trino-https"), workers=2, https=True)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.parametrize(
    ("password", "drains"),
    [
        # the password file's admin: the drain call authenticates as the real server demands
        (PASSWORDS[ADMIN], True),
        # a wrong password: 401 Invalid credentials, reported, and the worker keeps serving
        ("wrong-password", False),
    ],
)
async def test_drains_over_https_with_the_password_authenticator(
    https_trino: TrinoCluster, password: str, drains: bool
) -> None:
    assert https_trino.ca_file is not None
    async with real_workers_on_kube(https_trino) as world:
        world.put_secret("trino-admin", {"password": password})
        world.put_secret("trino-ca", {"ca.crt": https_trino.ca_file.read_text()})
        act = actuator(
            world,
            credentials=SecretKeyRef(name="trino-admin", key="password"),
            # The pods are reached by IP; the certificate is checked for the name it carries.
            worker_tls=TrinoWorkerTls(
                ca_secret=SecretKeyRef(name="trino-ca", key="ca.crt"), server_name="localhost"
            ),
        )
        try:
            outcomes = await passes(act, 1, 60, lambda o: o.replicas is not None or bool(o.errors))
        finally:
            await act.close()
        if drains:
            assert outcomes[-1].replicas == 1, [o.errors or o.detail for o in outcomes]
            deadline = time.monotonic() + 30
            while not world.removals:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            (removal,) = world.removals
            assert removal.state == "DRAINED"
        else:
            errors = [str(e) for o in outcomes for e in o.errors]
            assert any("401" in e for e in errors), errors
            assert all(https_trino.get_state(n) == "ACTIVE" for n in https_trino.workers)
            assert await world.replicas() == 2
