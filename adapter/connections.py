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
  that is not being answered (idle, or still sending headers); when every one is busy it is refused.

Connections are counted from the moment they are accepted, before the TLS handshake, because that is
when asyncio allocates their buffers. A connection whose handshake fails or times out is never shown to
the application protocol; asyncio closes it after ``ssl_handshake_timeout`` (set to the header
deadline), and it leaves the count then.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
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
    HANDSHAKE = "handshake"  # accepted; TLS not done yet (the application protocol is not called)
    IDLE = "idle"  # kept alive after a response, waiting for the first byte of the next request
    HEADERS = "headers"  # new, or a request has started arriving: its headers are not complete
    BUSY = "busy"  # a request is being answered
    CLOSED = "closed"


class _Guarded(asyncio.Protocol):
    """Sits between asyncio and aiohttp's request handler, watching what the connection does."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol, refused: bool) -> None:
        self.guard = guard
        self.inner = inner
        self.refused = refused
        self.state = _State.HANDSHAKE
        self.since = guard.now()
        self.received = 0
        self.transport: asyncio.Transport | None = None
        self._made = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.refused:
            self.state = _State.CLOSED
            transport.abort()
            return
        self.guard._made(self)
        self._made = True
        self.inner.connection_made(transport)

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
        return self.inner.eof_received() if self._made else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = _State.CLOSED
        self.guard._forget(self)
        if self._made:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def peer(self) -> str:
        if self.transport is None:
            return "?"
        address = self.transport.get_extra_info("peername")
        return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)


class ConnectionGuard:
    """Counts, times and closes the server's connections; wrap the server's protocol factory with it."""

    def __init__(
        self,
        limits: ConnectionLimits,
        *,
        on_close: Callable[[str], None] = lambda reason: None,
        tls: bool = False,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` defaults to the event loop's; tests pass their own and call :meth:`sweep`."""
        self.limits = limits
        self.tls = tls
        self._clock = clock
        self._on_close = on_close
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
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

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
        conn.state = _State.HEADERS
        self._open[conn] = None
        self._by_transport[conn.transport] = conn

    def _forget(self, conn: _Guarded) -> None:
        self._open.pop(conn, None)
        if conn.transport is not None:
            self._by_transport.pop(conn.transport, None)

    def _close(self, conn: _Guarded, reason: str, *, graceful: bool = False) -> None:
        transport = conn.transport
        conn.state = _State.CLOSED
        self._forget(conn)
        self._on_close(reason)
        if transport is not None:
            if graceful:
                transport.close()
            else:
                transport.abort()

    def _make_room(self) -> bool:
        """Close the oldest connection nobody is being answered on; False when all are busy."""
        candidates = [c for c in self._open if c.state in (_State.IDLE, _State.HEADERS)]
        if not candidates:
            self._on_close("refused")
            self._throttled.log(
                "refused",
                "connection limit reached (server.max_connections=%d, all busy or in TLS handshakes): "
                "refusing new connections",
                self.limits.max_connections,
            )
            return False
        oldest = min(candidates, key=lambda c: c.since)
        self._throttled.log(
            "evicted",
            "connection limit reached (server.max_connections=%d): closing the oldest idle connection "
            "(from %s) to accept a new one",
            self.limits.max_connections,
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
        transport = conn.transport
        conn.state = _State.CLOSED
        self._forget(conn)
        self._on_close("headers_too_large")
        if transport is not None:
            transport.write(_TOO_LARGE)
            transport.close()

    def sweep(self) -> None:
        """Close every connection past its deadline (run about four times per header deadline)."""
        now = self.now()
        limits = self.limits
        # A handshake that fails or times out never reaches the application protocol: asyncio closes
        # it after the handshake timeout, and it leaves the count a moment later here.
        handshake_gone = limits.header_read_timeout + 1.0
        for conn in list(self._open):
            age = now - conn.since
            if conn.state is _State.HANDSHAKE and age > handshake_gone:
                self._forget(conn)
            elif conn.state is _State.HEADERS and age > limits.header_read_timeout:
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
