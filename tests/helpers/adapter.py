"""Start the real API server over loopback HTTP on parts a test chooses."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

from adapter.app import AdapterParts, create_app
from adapter.auth import AllowAll, Anonymous
from adapter.listen import Listening, listen
from adapter.poller import Poller, PollerThread
from adapter.selfmetrics import SelfMetrics
from adapter.sources.base import Source
from adapter.store import SampleStore
from core.catalog import DEFAULT_CATALOG


@contextlib.asynccontextmanager
async def running_adapter(
    sources: Sequence[Source],
    *,
    keda_token: str | Callable[[], str | None] | None = None,
    keda: bool = True,
    poll: bool = True,
    selector_cache_bytes: int = 8 << 20,
    response_cache_bytes: int = 16 << 20,
) -> AsyncIterator[tuple[Listening, Poller]]:
    store = SampleStore(DEFAULT_CATALOG)
    metrics = SelfMetrics()
    metrics.watch_store(store)
    poller = Poller(sources, store, metrics)
    parts = AdapterParts(
        store=store,
        metrics=metrics,
        authenticator=Anonymous(),
        authorizer=AllowAll(),
        keda_token=(keda_token if callable(keda_token) else lambda: keda_token) if keda else None,
    )
    app = create_app(
        parts, selector_cache_bytes=selector_cache_bytes, response_cache_bytes=response_cache_bytes
    )
    server = await listen(app, "127.0.0.1", 0)
    polling = PollerThread(poller)
    if poll:
        polling.start()
    try:
        yield server, poller
    finally:
        await polling.stop()
        await server.stop()
