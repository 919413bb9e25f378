"""Bind the API server's socket, with the connection limits of ``adapter.connections`` in front of it."""

from __future__ import annotations

import asyncio
import ssl
from asyncio import sslproto
from dataclasses import dataclass

from aiohttp import web

from adapter.connections import ConnectionGuard, ConnectionLimits
from adapter.throttled_log import ClientErrorLogger

# asyncio gives every TLS connection a read buffer of this size, allocated and zeroed at accept: at its
# default of 256 KiB, 1,000 connections that never send a byte held 250 MB. Any size works (received
# bytes are queued in OpenSSL's BIO until a whole record is there); 16 KiB holds a request of the size
# the API gets and halves the rest of a connection's cost (measured: benchmarks/adapter_hostile.py).
# The setting is per process: the adapter is the only server in its own.
TLS_READ_BUFFER_BYTES = 16 * 1024


@dataclass
class Listening:
    runner: web.AppRunner
    host: str
    port: int
    scheme: str
    guard: ConnectionGuard

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    async def stop(self) -> None:
        # aiohttp first: it finishes the requests under way; the guard then drops what is left.
        await self.runner.cleanup()
        await self.guard.stop()


class _GuardedSite(web.BaseSite):
    """aiohttp's TCPSite with every accepted connection passed through a :class:`ConnectionGuard`."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        guard: ConnectionGuard,
        *,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._guard = guard
        self.bound_port = port

    @property
    def name(self) -> str:
        scheme = "https" if self._guard.tls else "http"
        return f"{scheme}://{self._host}:{self.bound_port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        if self._guard.tls is not None:
            sslproto.SSLProtocol.max_size = min(sslproto.SSLProtocol.max_size, TLS_READ_BUFFER_BYTES)
        # Plain TCP: the guard does the TLS handshake itself, so it holds every connection from its accept.
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocol_factory(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
        )
        sockets = self._server.sockets
        if sockets:
            self.bound_port = sockets[0].getsockname()[1]


async def listen(
    app: web.Application,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_request_line_bytes: int = 65536,
    max_header_fields: int = 4096,
    limits: ConnectionLimits | None = None,
    guard: ConnectionGuard | None = None,
) -> Listening:
    """Start serving ``app``; port 0 picks a free one.

    Long request lines reach the app (and get a proper Status) up to ``max_request_line_bytes`` instead
    of a bare parser error. kube-apiserver sends one ``X-Remote-Group`` line per group, so the count of
    header fields is generous; their total size is bounded by ``limits.max_header_bytes``. The guard's
    middleware is put in front of the application's own."""
    if guard is None:
        guard = ConnectionGuard(limits or ConnectionLimits(), tls=ssl_context)
    elif guard.tls is not ssl_context:
        raise ValueError("the connection guard must be built with the server's TLS context")
    limits = guard.limits
    # Outermost, so a request is "busy" for the guard for as long as any middleware works on it.
    app.middlewares.insert(0, guard.middleware)
    runner = web.AppRunner(
        app,
        access_log=None,
        max_line_size=max_request_line_bytes,
        max_field_size=max_request_line_bytes,
        max_headers=max_header_fields,
        # aiohttp's own timer (from the accept or the last answer to a complete request) only backs up
        # the guard's finer deadlines.
        keepalive_timeout=limits.idle_timeout + limits.header_read_timeout,
        logger=ClientErrorLogger("adapter.http"),
    )
    await runner.setup()
    site = _GuardedSite(runner, host, port, guard)
    await site.start()
    guard.start()
    return Listening(runner, host, site.bound_port, "https" if ssl_context else "http", guard)
