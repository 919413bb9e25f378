"""A server process for the adapter benchmark: the real adapter app, or a bare aiohttp handler.

    python -m benchmarks.bench_server adapter SERIES
    python -m benchmarks.bench_server bare SERIES

Prints ``READY <url>`` once it serves. The adapter is fed by a synthetic source of SERIES resource-group
series, polled by the real poller every 2 s: the benchmark measures the server, not a backend.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping, Sequence

from aiohttp import web

from adapter import apidocs
from adapter.app import AdapterParts, create_app
from adapter.auth import AllowAll, Anonymous
from adapter.listen import listen
from adapter.poller import Poller, PollerThread
from adapter.runtime import tune_gc
from adapter.samples import Sample
from adapter.selfmetrics import SelfMetrics
from adapter.sources.base import SourceSettings
from adapter.store import Item, SampleStore
from core.catalog import DEFAULT_CATALOG
from core.metric_names import TRINO_RESOURCE_GROUP_QUEUED_QUERIES

METRIC = TRINO_RESOURCE_GROUP_QUEUED_QUERIES
SELECTOR = "cluster=bench,resource_group=rg-7"
PATH = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/default/{METRIC}"


class SyntheticSource:
    def __init__(self, series: int) -> None:
        self._settings = SourceSettings(name="bench", poll_interval_seconds=2.0)
        self.series = series
        self.round = 0

    @property
    def settings(self) -> SourceSettings:
        return self._settings

    def identity(self) -> Mapping[str, str]:
        return {"cluster": "bench"}

    def served_metrics(self) -> Sequence[str]:
        return [METRIC]

    async def collect(self, now: float) -> list[Sample]:
        self.round += 1
        return [Sample(METRIC, {"resource_group": f"rg-{i}"}, float(i % 50 + 1)) for i in range(self.series)]

    async def close(self) -> None:
        return None


def bare_body() -> bytes:
    item = Item(METRIC, {"cluster": "bench", "resource_group": "rg-7"}, 8.0, 1_700_000_000)
    return json.dumps(apidocs.value_list([item]), separators=(",", ":")).encode()


async def main(kind: str, series: int) -> None:
    tune_gc()
    if kind == "adapter":
        store = SampleStore(DEFAULT_CATALOG)
        metrics = SelfMetrics()
        metrics.watch_store(store)
        poller = Poller([SyntheticSource(series)], store, metrics)
        app = create_app(AdapterParts(store, metrics, Anonymous(), AllowAll()))
        # The first poll runs here so the benchmark starts on a full store, then the thread takes over.
        await poller.poll_once(poller.sources[0])
        PollerThread(poller).start()
    else:
        body = bare_body()

        async def handler(request: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        app = web.Application()
        app.router.add_get(PATH, handler)
    server = await listen(app, "127.0.0.1", 0)
    print(f"READY {server.url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
