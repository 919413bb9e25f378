"""Start an emulated Trino in one line, and the small helpers tests of Trino clients share.

    async with trino_sandbox(478, workers=2) as sb:
        source = TrinoSource(trino_settings(sb, resource_groups=["global"]))

By default time only moves when the test says so (``sb.cluster.advance(t)``, then ``await sb.sync()`` if
workers joined or left), the coordinator sees node states at once and grace periods are short, so numbers
set in the model are exactly what the servers answer.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from adapter.samples import Sample
from adapter.sources.http import HttpEndpoint
from adapter.sources.trino import TrinoSettings
from lab.sandbox.tls import SelfSigned
from lab.sandbox.trino import (
    LoadPattern,
    ResourceGroupSpec,
    TrinoAuth,
    TrinoCluster,
    TrinoSandbox,
)

ADMIN = "admin"


def small_groups() -> list[ResourceGroupSpec]:
    """``global`` (limit 20) over ``adhoc`` (limit 2, memory 100%) and ``etl`` (limit 3, memory 50%)."""
    return [
        ResourceGroupSpec(
            "global",
            hard_concurrency_limit=20,
            max_queued=100,
            sub_groups=(
                ResourceGroupSpec("adhoc", hard_concurrency_limit=2, max_queued=10),
                ResourceGroupSpec("etl", hard_concurrency_limit=3, max_queued=10, soft_memory_limit="50%"),
            ),
        )
    ]


@asynccontextmanager
async def trino_sandbox(
    version: int = 478,
    *,
    workers: int = 2,
    groups: Sequence[ResourceGroupSpec] | None = None,
    auth: TrinoAuth | None = None,
    tick_seconds: float | None = None,
    speedup: float = 1.0,
    load: Sequence[LoadPattern] = (),
    grace_period: float = 10.0,
    node_refresh_seconds: float = 0.0,
    required_workers: int = 1,
    worker_processors: int = 4,
    worker_memory_bytes: int = 16 * 1024**3,
    https: bool | None = None,
    tls: SelfSigned | None = None,
) -> AsyncIterator[TrinoSandbox]:
    """A served cluster with the test-friendly defaults above; all servers stop on exit."""
    cluster = TrinoCluster(
        version,
        workers=workers,
        groups=groups if groups is not None else small_groups(),
        grace_period=grace_period,
        node_refresh_seconds=node_refresh_seconds,
        required_workers=required_workers,
        worker_processors=worker_processors,
        worker_memory_bytes=worker_memory_bytes,
    )
    async with TrinoSandbox(
        cluster, auth=auth, tick_seconds=tick_seconds, speedup=speedup, load=load, https=https, tls=tls
    ) as sandbox:
        yield sandbox


def trino_settings(
    sandbox: TrinoSandbox | str,
    *,
    name: str = "adhoc",
    resource_groups: Sequence[str] = (),
    user: str = "queuescale",
    timeout_seconds: float = 2.0,
    username: str | None = None,
    password_file: Path | None = None,
    bearer_token_file: Path | None = None,
    running_query_cpu: bool = False,
) -> TrinoSettings:
    """Source settings pointing at a sandbox coordinator (or any URL)."""
    url = sandbox if isinstance(sandbox, str) else sandbox.coordinator_url
    ca_file = None if isinstance(sandbox, str) else sandbox.ca_file
    return TrinoSettings(
        name=name,
        endpoint=HttpEndpoint(
            url=url,
            username=username,
            password_file=password_file,
            bearer_token_file=bearer_token_file,
            ca_file=ca_file,
        ),
        user=user,
        resource_groups=list(resource_groups),
        timeout_seconds=timeout_seconds,
        poll_interval_seconds=0.1,
        running_query_cpu=running_query_cpu,
    )


async def put_state(
    session: aiohttp.ClientSession, node_url: str, state: str, *, user: str = ADMIN
) -> tuple[int, str]:
    """``PUT /v1/info/state`` as the graceful-shutdown docs show it; returns (status, body)."""
    async with session.put(
        f"{node_url}/v1/info/state",
        data=json.dumps(state),
        headers={"Content-Type": "application/json", "X-Trino-User": user},
    ) as response:
        return response.status, await response.text()


async def get_state(session: aiohttp.ClientSession, node_url: str) -> str:
    async with session.get(f"{node_url}/v1/info/state") as response:
        response.raise_for_status()
        state = await response.json()
        assert isinstance(state, str)
        return state


def sample_value(samples: Sequence[Sample], metric: str, **labels: str) -> float:
    """The one value of ``metric`` whose labels include ``labels`` (fails unless exactly one matches)."""
    found = [
        s.value
        for s in samples
        if s.metric == metric and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, f"{metric} {labels}: {found}"
    return found[0]


def refused_url() -> str:
    """A loopback URL where nothing listens (the port was just free)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
