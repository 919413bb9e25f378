"""Run the Kubernetes API sandbox on loopback for a test, with an official-client ``ApiClient`` for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import kubernetes.client

from lab.sandbox.kube import KubeSandbox, client_for
from lab.sandbox.serve import Served, serve

T = TypeVar("T")


@dataclass
class RunningKube:
    sandbox: KubeSandbox
    served: Served
    api: kubernetes.client.ApiClient

    @property
    def url(self) -> str:
        return self.served.url


@asynccontextmanager
async def running_kube(sandbox: KubeSandbox | None = None) -> AsyncIterator[RunningKube]:
    sb = sandbox if sandbox is not None else KubeSandbox()
    served = await serve(sb.app())
    api = client_for(served.url)
    try:
        yield RunningKube(sb, served, api)
    finally:
        api.close()  # type: ignore[no-untyped-call]
        await served.stop()


@dataclass
class ManualClock:
    """A clock that moves only when told to, for the sandbox's pod start-up and termination delays."""

    now: float = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking official-client call off the loop that serves the sandbox."""
    return await asyncio.to_thread(fn, *args, **kwargs)
