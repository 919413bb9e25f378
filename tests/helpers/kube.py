"""Run the Kubernetes API sandbox on loopback for a test, with an official-client ``ApiClient`` for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import kubernetes.client

from autoscaler.sandbox.kube import KubeSandbox, client_for
from autoscaler.sandbox.serve import Served, serve


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
        api.close()
        await served.stop()
