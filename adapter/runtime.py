"""Assemble the adapter from its settings and run it until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import kubernetes.client

from adapter.app import AdapterParts, create_app
from adapter.auth import AllowAll, Anonymous, Authenticator, Authorizer
from adapter.auth.delegated import DelegatedPathAuth, TokenReviewAuthenticator
from adapter.auth.frontproxy import FrontProxyAuthenticator, FrontProxyProvider
from adapter.auth.sar import SubjectAccessReviewAuthorizer
from adapter.auth.tls import ServingTLS
from adapter.connections import ConnectionGuard
from adapter.kube import api_client
from adapter.listen import Listening, listen
from adapter.poller import Poller, PollerThread
from adapter.selfmetrics import SelfMetrics
from adapter.settings import Settings, split_host_port
from adapter.sources.registry import build_sources, catalog_for
from adapter.store import SampleStore
from core.errors import ConfigError

log = logging.getLogger(__name__)

INSECURE_BANNER = """
################################################################################
# queuescale adapter: PLAIN HTTP, NO AUTHENTICATION, NO AUTHORIZATION.
# Anyone who reaches {listen} can read every metric.
# For development on loopback only; never register this as an APIService.
################################################################################"""


def tune_gc() -> None:
    """Collect young objects less often.

    A poll allocates one object per series; with CPython's default threshold (700) a 10,000-series
    collection triggers dozens of collections, some full, which pause the serving thread too (p99 of the
    metric GET went from 1.7 ms to 19 ms in benchmarks/adapter_bench.py). Objects that survive start-up
    are frozen out of the collector's walk altogether.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def _read_token(path: Path) -> str:
    """The KEDA token as it is now; "" (which nothing matches) when the file is unreadable or empty."""
    try:
        token = path.read_text().strip()
    except OSError as exc:
        log.error("cannot read keda.bearer_token_file %s: %s", path, exc.strerror)
        return ""
    if not token:
        log.error("keda.bearer_token_file %s is empty: every KEDA request is refused", path)
    return token


def _keda_token(settings: Settings) -> Callable[[], str | None] | None:
    """What the KEDA endpoint checks against; an unusable token file stops the start."""
    if not settings.keda.enabled:
        return None
    token_file = settings.keda.bearer_token_file
    if token_file is None:
        return lambda: None
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"keda.bearer_token_file: cannot read {token_file}: {exc.strerror}") from exc
    if not token:
        # An empty token would let requests without any Authorization header through.
        raise ConfigError(f"keda.bearer_token_file: {token_file} is empty or only whitespace")
    if any(c.isspace() for c in token):
        raise ConfigError(f"keda.bearer_token_file: the token in {token_file} contains whitespace")
    return lambda: _read_token(token_file)


@dataclass
class Running:
    """A started adapter: its address, its cache (for in-process readers) and its poller."""

    server: Listening
    store: SampleStore
    poller: Poller

    @property
    def url(self) -> str:
        return self.server.url


@contextlib.asynccontextmanager
async def start_adapter(
    settings: Settings, *, clock: Callable[[], float] = time.time
) -> AsyncIterator[Running]:
    """Build everything from ``settings``, serve, poll; tear it all down on exit."""
    tune_gc()
    kube: Callable[[], kubernetes.client.ApiClient] = functools.cache(lambda: api_client(settings.kube))
    catalog = catalog_for(settings)
    store = SampleStore(catalog)
    metrics = SelfMetrics()
    metrics.watch_store(store, clock)
    poller = Poller(build_sources(settings, kube), store, metrics, clock=clock)

    keda_token = _keda_token(settings)
    authenticator: Authenticator = Anonymous()
    authorizer: Authorizer = AllowAll()
    metrics_guard: DelegatedPathAuth | None = None
    provider: FrontProxyProvider | None = None
    ssl_context = None
    if settings.auth.mode == "front-proxy":
        provider = FrontProxyProvider.from_settings(
            settings.auth, None if settings.auth.requestheader_client_ca_file else kube()
        )
        await provider.refresh()
        front_proxy = FrontProxyAuthenticator(provider.current)
        reviews = SubjectAccessReviewAuthorizer.from_settings(kube(), settings.auth)
        authenticator, authorizer = front_proxy, reviews
        tokens = TokenReviewAuthenticator(
            kube(),
            settings.auth.sar_cache_seconds,
            max_entries=settings.auth.sar_cache_entries,
            timeout_seconds=settings.auth.sar_timeout_seconds,
        )
        metrics_guard = DelegatedPathAuth(tokens, reviews, front_proxy)
    if not settings.server.insecure_http:
        cert, key = settings.server.tls_cert_file, settings.server.tls_key_file
        if cert is None or key is None:
            raise ConfigError("server.tls_cert_file and server.tls_key_file are required")
        ssl_context = ServingTLS(cert, key, provider.client_ca if provider else lambda: None).context()

    parts = AdapterParts(
        store=store,
        metrics=metrics,
        authenticator=authenticator,
        authorizer=authorizer,
        keda_token=keda_token,
        metrics_guard=metrics_guard,
        clock=clock,
    )
    host, port = split_host_port(settings.server.listen)
    guard = ConnectionGuard(
        settings.server.connection_limits(), tls=ssl_context, on_close=metrics.connection_closed
    )
    metrics.watch_connections(guard)
    app = create_app(
        parts,
        selector_cache_bytes=settings.server.selector_cache_bytes,
        response_cache_bytes=settings.server.response_cache_bytes,
    )
    server = await listen(
        app,
        host,
        port,
        ssl_context=ssl_context,
        max_request_line_bytes=settings.server.max_request_line_bytes,
        max_header_fields=settings.server.max_header_fields,
        guard=guard,
    )
    if settings.server.insecure_http:
        log.warning(INSECURE_BANNER.format(listen=server.url))
    if provider is not None:
        await provider.start()
    polling = PollerThread(poller)
    polling.start()
    log.info("adapter serving on %s with %d sources", server.url, len(poller.sources))
    try:
        yield Running(server=server, store=store, poller=poller)
    finally:
        await polling.stop()
        if provider is not None:
            await provider.stop()
        await server.stop()


async def run_until_stopped(settings: Settings, stop: asyncio.Event) -> None:
    async with start_adapter(settings):
        await stop.wait()
