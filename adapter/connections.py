"""Connection limits: what keeps a client that never authenticates from holding the adapter's memory.

The adapter is a cluster-wide APIService; if it falls over, HPAs stop scaling and namespace deletion
blocks. An unauthenticated client can still open connections, so every connection is bounded before any
request is read, the way kube-apiserver bounds its own (k8s.io/apiserver ``secure_serving.go``: a header
read deadline, an idle timeout and 1 MiB of headers):

- the TLS handshake and the request headers must arrive within ``header_read_timeout`` of the
  connection's start, or of the first byte of the next request on a kept-alive connection;
- a kept-alive connection waiting for its next request is closed after ``idle_timeout``;
- the request line and headers of one request may total ``max_header_bytes``; past that the client gets
  ``431`` and the connection closes before the rest is parsed;
- at most ``max_connections`` are open. A new connection at the limit takes the place of the oldest one
  that is not being answered (in its handshake, idle, or still sending headers); when every one is busy
  the new one is refused.

The guard sits at the TCP level and does the TLS handshake itself (``loop.start_tls``), so a connection
is counted, timed and can be closed from its accept on, before the handshake allocates anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from adapter.throttled_log import ThrottledLog

log = logging.getLogger(__name__)

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    b"431 Request Header Fields Too Large"
)


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 512
    header_read_timeout: float = 10.0
    idle_timeout: float = 60.0
    max_header_bytes: int = 1 << 20


class _State(enum.Enum):
    HANDSHAKE = "handshake"  # accepted, TLS handshake under way
    IDLE = "idle"  # kept alive after a response, waiting for the first byte of the next request
    HEADERS = "headers"  # new, or a request has started arriving: its headers are not complete
    BUSY = "busy"  # a request is being answered
    CLOSED = "closed"


_EVICTABLE = (_State.HANDSHAKE, _State.IDLE, _State.HEADERS)


class _Guarded(asyncio.Protocol):
    """The server's protocol: watches one connection and hands it to aiohttp's request handler (after
    the TLS handshake, when the server speaks TLS)."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol, refused: bool) -> None:
        self.guard = guard
        self.inner = inner
        self.refused = refused
        self.state = _State.HEADERS
        self.since = guard.now()
        self.received = 0
        self.raw: asyncio.Transport | None = None
        self.transport: asyncio.Transport | None = None
        self._handshake: asyncio.Task[None] | None = None

    # ----- the TCP connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.raw = transport
        if self.refused:
            self.state = _State.CLOSED
            transport.abort()
            return
        context = self.guard.tls
        if context is None:
            self._serve(transport)
            return
        # Nothing may be read before the TLS layer takes the connection over.
        transport.pause_reading()
        self.state = _State.HANDSHAKE
        self._handshake = asyncio.get_running_loop().create_task(self._start_tls(transport, context))

    async def _start_tls(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        try:
            # After this, asyncio's TLS layer is the TCP protocol and this object its application
            # protocol: it gets the decrypted data, and connection_lost once the handshake is done.
            tls = await loop.start_tls(
                raw,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self.guard.limits.header_read_timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError, RuntimeError):
            # Refused certificates, protocol errors, asyncio's handshake deadline, a peer that left.
            if self.state is _State.HANDSHAKE:
                self.guard._gone(self, "handshake_failed")
            raw.abort()
            return
        if tls is None or self.state is not _State.HANDSHAKE:
            raw.abort()
            return
        self.state = _State.HEADERS
        self._serve(tls)

    def _serve(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.guard._made(self)
        self.inner.connection_made(transport)

    # ----- the (decrypted) byte stream

    def data_received(self, data: bytes) -> None:
        if self.state is _State.CLOSED:
            return
        if self.state is _State.IDLE:
            self.state, self.since, self.received = _State.HEADERS, self.guard.now(), 0
        if self.state is _State.HEADERS:
            self.received += len(data)
            if self.received > self.guard.limits.max_header_bytes:
                self.guard._too_large(self)
                return
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.transport is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = _State.CLOSED
        self.guard._forget(self)
        if self.transport is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # ----- the guard's side

    def close(self, *, graceful: bool) -> None:
        """Close the connection; a handshake under way is abandoned."""
        self.state = _State.CLOSED
        if self._handshake is not None and not self._handshake.done():
            self._handshake.cancel()
        if graceful and self.transport is not None:
            self.transport.close()
        elif self.raw is not None:
            self.raw.abort()

    def peer(self) -> str:
        transport = self.raw or self.transport
        address = transport.get_extra_info("peername") if transport is not None else None
        return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else "?"


class ConnectionGuard:
    """Counts, times and closes the server's connections; its protocol factory wraps aiohttp's."""

    def __init__(
        self,
        limits: ConnectionLimits,
        *,
        tls: ssl.SSLContext | None = None,
        on_close: Callable[[str], None] = lambda reason: None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``tls``: the serving context, the handshake then done here; ``clock`` defaults to the event
        loop's (tests pass their own and call :meth:`sweep`)."""
        self.limits = limits
        self.tls = tls
        self._on_close = on_close
        self._clock = clock
        self._open: dict[_Guarded, None] = {}
        self._by_transport: dict[asyncio.BaseTransport, _Guarded] = {}
        self._throttled = ThrottledLog(log)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def now(self) -> float:
        if self._clock is not None:
            return self._clock()
        loop = self._loop or asyncio.get_running_loop()
        return loop.time()

    # ------------------------------------------------------------------ wiring

    def protocol_factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        def make() -> asyncio.Protocol:
            refused = len(self._open) >= self.limits.max_connections and not self._make_room()
            conn = _Guarded(self, inner(), refused)
            if not refused:
                self._open[conn] = None
            return conn

        return make

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="connection-deadlines")

    async def stop(self) -> None:
        """Stop the deadlines and close what is left (handshakes under way) once the server is done."""
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for conn in list(self._open):
            conn.close(graceful=False)
            self._forget(conn)
        await asyncio.sleep(0)

    def open_connections(self) -> int:
        return len(self._open)

    def counts(self) -> dict[str, int]:
        """Open connections by state, for the adapter's own metrics."""
        out = {s.value: 0 for s in _State if s is not _State.CLOSED}
        for conn in self._open:
            if conn.state is not _State.CLOSED:
                out[conn.state.value] += 1
        return out

    # ------------------------------------------------------------------ requests

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Marks the connection busy while its request is answered (``adapter.listen`` installs it)."""
        transport = request.transport
        self.request_started(transport)
        try:
            return await handler(request)
        finally:
            self.request_finished(transport)

    def request_started(self, transport: asyncio.BaseTransport | None) -> None:
        conn = self._by_transport.get(transport) if transport is not None else None
        if conn is not None and conn.state is not _State.CLOSED:
            conn.state, conn.since = _State.BUSY, self.now()

    def request_finished(self, transport: asyncio.BaseTransport | None) -> None:
        conn = self._by_transport.get(transport) if transport is not None else None
        if conn is not None and conn.state is _State.BUSY:
            conn.state, conn.since, conn.received = _State.IDLE, self.now(), 0

    # ------------------------------------------------------------------ internals

    def _made(self, conn: _Guarded) -> None:
        assert conn.transport is not None
        # The first request's headers are due within the deadline from the accept, handshake included.
        self._open[conn] = None
        self._by_transport[conn.transport] = conn

    def _forget(self, conn: _Guarded) -> None:
        self._open.pop(conn, None)
        if conn.transport is not None:
            self._by_transport.pop(conn.transport, None)

    def _gone(self, conn: _Guarded, reason: str) -> None:
        conn.state = _State.CLOSED
        self._forget(conn)
        if reason:
            self._on_close(reason)

    def _close(self, conn: _Guarded, reason: str, *, graceful: bool = False) -> None:
        self._gone(conn, reason)
        conn.close(graceful=graceful)

    def _make_room(self) -> bool:
        """Close the oldest connection nobody is being answered on; False when all are busy."""
        candidates = [c for c in self._open if c.state in _EVICTABLE]
        if not candidates:
            self._on_close("refused")
            self._throttled.log(
                "refused",
                "connection limit reached (server.max_connections=%d, every connection busy): "
                "refusing new connections",
                self.limits.max_connections,
            )
            return False
        oldest = min(candidates, key=lambda c: c.since)
        self._throttled.log(
            "evicted",
            "connection limit reached (server.max_connections=%d): closing the oldest connection not "
            "being answered (%s, from %s) to accept a new one",
            self.limits.max_connections,
            oldest.state.value,
            oldest.peer(),
        )
        self._close(oldest, "evicted")
        return True

    def _too_large(self, conn: _Guarded) -> None:
        self._throttled.log(
            "too-large",
            "request from %s closed: its headers passed server.max_header_bytes (%d bytes)",
            conn.peer(),
            self.limits.max_header_bytes,
        )
        self._gone(conn, "headers_too_large")
        transport = conn.transport
        if transport is not None:
            transport.write(_TOO_LARGE)
            transport.close()

    def sweep(self) -> None:
        """Close every connection past its deadline (run about four times per header deadline)."""
        now = self.now()
        limits = self.limits
        for conn in list(self._open):
            age = now - conn.since
            if conn.state in (_State.HEADERS, _State.HANDSHAKE) and age > limits.header_read_timeout:
                self._throttled.log(
                    "header-timeout",
                    "closed a connection from %s: no complete request headers within "
                    "server.header_read_timeout_seconds (%gs)",
                    conn.peer(),
                    limits.header_read_timeout,
                )
                self._close(conn, "header_timeout")
            elif conn.state is _State.IDLE and age > limits.idle_timeout:
                self._close(conn, "idle_timeout", graceful=True)

    async def _sweep_forever(self) -> None:
        period = min(1.0, self.limits.header_read_timeout / 4)
        while True:
            await asyncio.sleep(period)
            self.sweep()
