"""Leader election against the Kubernetes API sandbox over HTTP, with the official client.

Short durations (lease 2 s, renew deadline 1.5 s, retry 0.2 s) keep the tests fast; every wait is
bounded and every safety claim is checked on logged facts, never on how long something took.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import kubernetes.client
import pytest

from autoscaler.controller.leader import LeaseElector
from autoscaler.controller.metrics import ControllerMetrics
from lab.sandbox.kube import KubeSandbox, client_for
from lab.sandbox.serve import serve
from tests.helpers.kube import RunningKube, running_kube
from tests.helpers.wait import eventually

ROOT = Path(__file__).resolve().parents[3]
NS = "default"
LEASE = "queuescale-controller"
T = TypeVar("T")
FAST = {"lease_seconds": 2, "renew_deadline": 1.5, "retry_period": 0.2}


@pytest.fixture
async def kube() -> AsyncIterator[RunningKube]:
    async with running_kube() as k:
        yield k


def probe(read: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    async def once() -> T:
        return read()

    return once


def elector(api: kubernetes.client.ApiClient, identity: str, **kw: Any) -> LeaseElector:
    return LeaseElector(api, NS, LEASE, identity, **{**FAST, **kw})


async def read_lease(api: kubernetes.client.ApiClient) -> Any:
    return await asyncio.to_thread(kubernetes.client.CoordinationV1Api(api).read_namespaced_lease, LEASE, NS)


async def holder(api: kubernetes.client.ApiClient) -> str | None:
    try:
        lease = await read_lease(api)
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return str(lease.spec.holder_identity or "")


# ----- two processes: kill -9 the leader, the standby takes over, they never act at once -----


def acting_terms(path: Path) -> dict[tuple[str, int], tuple[float, float]]:
    """(identity, term) -> (first, last) moment the process saw itself leading (shared wall clock)."""
    terms: dict[tuple[str, int], tuple[float, float]] = {}
    if not path.exists():
        return terms
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue  # the last line of a killed process may be cut short
        key, at = (parts[0], int(parts[1])), float(parts[2])
        first, last = terms.get(key, (at, at))
        terms[key] = (min(first, at), max(last, at))
    return terms


def span(terms: dict[tuple[str, int], tuple[float, float]], identity: str) -> float:
    moments = [m for (who, _), pair in terms.items() if who == identity for m in pair]
    return max(moments) - min(moments) if moments else 0.0


def overlaps(terms: dict[tuple[str, int], tuple[float, float]]) -> list[tuple[Any, Any]]:
    found = []
    items = sorted(terms.items())
    for i, (key_a, (a0, a1)) in enumerate(items):
        for key_b, (b0, b1) in items[i + 1 :]:
            if key_a[0] != key_b[0] and a0 <= b1 and b0 <= a1:
                found.append(((key_a, a0, a1), (key_b, b0, b1)))
    return found


def test_overlap_check_sees_an_overlap() -> None:
    # The checker below must be able to fail: two identities acting during one shared moment.
    assert overlaps({("a", 1): (10.0, 12.0), ("b", 1): (11.9, 13.0)})
    assert not overlaps({("a", 1): (10.0, 12.0), ("b", 1): (12.1, 13.0), ("a", 2): (13.5, 14.0)})


def _open_for_child(path: Path) -> BinaryIO:
    return path.open("wb")


async def start_candidate(url: str, identity: str, log: Path, tmp: Path) -> asyncio.subprocess.Process:
    args = [
        *("--host", url, "--identity", identity, "--log", str(log), "--namespace", NS, "--name", LEASE),
        *("--lease-seconds", "2", "--renew-deadline", "1.5", "--retry-period", "0.2", "--tick", "0.01"),
    ]
    stderr = _open_for_child(tmp / f"{identity}.stderr")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "autoscaler.controller.leader",
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    finally:
        stderr.close()


async def test_killed_leader_is_replaced_and_they_never_act_together(
    kube: RunningKube, tmp_path: Path
) -> None:
    log = tmp_path / "acting.log"
    procs = {name: await start_candidate(kube.url, name, log, tmp_path) for name in ("a", "b")}
    try:
        first = await eventually(lambda: holder(kube.api), check=lambda h: h in procs, timeout=15)
        assert first is not None
        other = "b" if first == "a" else "a"
        # Let the leader act for a while with the standby campaigning next to it.
        await eventually(
            probe(lambda: acting_terms(log)),
            check=lambda t: span(t, first) > 1.0,
            timeout=10,
        )
        procs[first].kill()
        await procs[first].wait()
        # Bounded wait: the lease is 2 s; the standby must take over well within this.
        await eventually(lambda: holder(kube.api), check=lambda h: h == other, timeout=8)
        await eventually(
            probe(lambda: acting_terms(log)),
            check=lambda t: any(k[0] == other for k in t),
            timeout=5,
        )
        lease = await read_lease(kube.api)
        assert lease.spec.lease_transitions >= 1
        procs[other].send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(procs[other].wait(), 10) == 0
        # A clean stop released the Lease.
        assert await holder(kube.api) == ""
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    terms = acting_terms(log)
    assert {k[0] for k in terms} == {"a", "b"}, (tmp_path / f"{other}.stderr").read_text()
    assert overlaps(terms) == []


# ----- in one process -----


async def test_clean_release_hands_over_before_the_lease_could_expire(kube: RunningKube) -> None:
    # A 30 s lease: the standby can only get it this soon because the leader released it.
    slow = {"lease_seconds": 30, "renew_deadline": 20.0, "retry_period": 0.2}
    a, b = elector(kube.api, "a", **slow), elector(kube.api, "b", **slow)
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    run_a = asyncio.create_task(a.run(stop_a))
    await asyncio.wait_for(a.leading.wait(), 5)
    run_b = asyncio.create_task(b.run(stop_b))
    await eventually(probe(lambda: b.holder), check=lambda h: h == "a", timeout=5)
    assert not b.is_leader()
    stop_a.set()
    await run_a
    assert await a.release() is True
    assert not a.is_leader()
    await asyncio.wait_for(b.leading.wait(), 5)
    assert b.is_leader()
    assert await holder(kube.api) == "b"
    stop_b.set()
    await run_b
    assert await b.release() is True


async def test_release_by_a_non_holder_leaves_the_lease_alone(kube: RunningKube) -> None:
    a, b = elector(kube.api, "a"), elector(kube.api, "b")
    assert (await a.step()).action == "create"
    await b.observe()
    assert await b.release() is False
    assert await holder(kube.api) == "a"


async def test_create_race_leaves_exactly_one_leader(kube: RunningKube) -> None:
    a, b = elector(kube.api, "a"), elector(kube.api, "b")
    # Both see no Lease before either writes: both try to create it.
    assert (await a.observe()).record is None
    assert (await b.observe()).record is None
    assert (await a.act()).action == "create"
    lost = await b.act()
    assert lost.action == "wait"
    assert "conflict" in lost.reason
    assert a.is_leader()
    assert not b.is_leader()
    assert await holder(kube.api) == "a"


async def test_update_race_on_a_released_lease_leaves_exactly_one_leader(kube: RunningKube) -> None:
    a, b, c = elector(kube.api, "a"), elector(kube.api, "b"), elector(kube.api, "c")
    await a.step()
    assert await a.release() is True
    # b and c read the same resourceVersion; c writes first, b's write is stale and gets a 409.
    await b.observe()
    await c.observe()
    assert (await c.act()).action == "acquire"
    assert (await b.act()).action == "wait"
    assert (c.is_leader(), b.is_leader(), a.is_leader()) == (True, False, False)
    lease = await read_lease(kube.api)
    assert (lease.spec.holder_identity, lease.spec.lease_transitions) == ("c", 1)


async def test_many_candidates_at_once_elect_one(kube: RunningKube) -> None:
    candidates = [elector(kube.api, f"c{i}") for i in range(5)]
    for _ in range(3):
        await asyncio.gather(*(c.step() for c in candidates))
    leaders = [c.identity for c in candidates if c.is_leader()]
    assert len(leaders) == 1
    assert await holder(kube.api) == leaders[0]


async def test_a_cut_off_leader_stops_acting_and_reports_it() -> None:
    sandbox = KubeSandbox()
    served = await serve(sandbox.app())
    api = client_for(served.url)
    metrics = ControllerMetrics()
    changes: list[bool] = []
    e = elector(api, "a", on_change=changes.append, gauge=metrics.is_leader)
    stop = asyncio.Event()
    task = asyncio.create_task(e.run(stop))
    try:
        await asyncio.wait_for(e.leading.wait(), 5)
        assert metrics.registry.get_sample_value("queuescale_controller_leader") == 1
        await served.stop()  # the API server is gone: renewals fail from now on
        await eventually(probe(e.is_leader), check=lambda v: v is False, timeout=5)
        await eventually(probe(lambda: list(changes)), check=lambda c: c == [True, False], timeout=5)
        assert not e.leading.is_set()
        assert metrics.registry.get_sample_value("queuescale_controller_leader") == 0
    finally:
        stop.set()
        await task
        api.close()  # type: ignore[no-untyped-call]
