"""The API server's connection limits over real sockets: the hostile-input probe's cases (issue 11).

Before the guard, aiohttp kept a connection that sent nothing, or half a request, for an hour; any number
of them; and refused more than 128 header lines with a plain-text 400. Deadlines are driven by a clock
the test moves (the guard's ``sweep`` is called directly), so no case waits for real time to pass,
except the TLS handshake deadline, which asyncio itself enforces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from adapter.connections import ConnectionGuard, ConnectionLimits
from adapter.listen import Listening, listen
from tests.helpers.certs import CertFactory

LIMITS = ConnectionLimits(
    max_connections=3, header_read_timeout=5.0, idle_timeout=30.0, max_header_bytes=65536
)
REQUEST = b"GET /ok HTTP/1.1\r\nHost: test\r\n\r\n"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Served:
    server: Listening
    guard: ConnectionGuard
    clock: Clock
    release: asyncio.Event
    closed: list[str] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def connect(self, **tls: object) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port, **tls)  # type: ignore[arg-type]
        self.writers.append(writer)
        return reader, writer

    async def close_clients(self) -> None:
        for writer in self.writers:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        self.guard.sweep()


def _app(release: asyncio.Event) -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text=f"ok {len(request.raw_headers)} headers")

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="slow")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/slow", slow)
    return app


@contextlib.asynccontextmanager
async def served(
    limits: ConnectionLimits = LIMITS, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Served]:
    clock = Clock()
    closed: list[str] = []
    guard = ConnectionGuard(limits, tls=ssl_context, on_close=closed.append, clock=clock)
    release = asyncio.Event()
    server = await listen(_app(release), "127.0.0.1", 0, ssl_context=ssl_context, guard=guard)
    s = Served(server, guard, clock, release, closed)
    try:
        yield s
    finally:
        release.set()
        await s.close_clients()
        await server.stop()


async def is_closed(reader: asyncio.StreamReader, within: float = 5.0) -> bool:
    """True when the server closed the connection (EOF or reset) within ``within`` seconds."""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), within)
            if not chunk:
                return True
    except TimeoutError:
        return False
    except (ConnectionResetError, ssl.SSLError):
        return True


async def answered(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes = REQUEST
) -> bytes:
    writer.write(request)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[
            1
        ]
    )
    return head + await asyncio.wait_for(reader.readexactly(length), 5)


async def still_open(reader: asyncio.StreamReader) -> bool:
    return not await is_closed(reader, within=0.2)


@pytest.mark.parametrize(
    ("sent", "wait", "closed", "reason"),
    [
        # the probe: a connection that never sends a byte was kept for the keep-alive default (~1 h)
        (b"", 4.9, False, None),
        (b"", 5.1, True, "header_timeout"),
        # the probe: partial headers, never finished (slowloris)
        (b"GET /ok HTTP/1.1\r\nHost: test\r\nX-A: 1\r\n", 5.1, True, "header_timeout"),
        # a complete request answered; the connection is then idle: the header deadline no longer applies
        (REQUEST, 29.0, False, None),
        (REQUEST, 30.5, True, "idle_timeout"),
    ],
)
async def test_deadlines(sent: bytes, wait: float, closed: bool, reason: str | None) -> None:
    async with served() as s:
        reader, writer = await s.connect()
        if sent == REQUEST:
            assert b"200 OK" in await answered(reader, writer)
        elif sent:
            writer.write(sent)
            await writer.drain()
        await asyncio.sleep(0.05)
        s.advance(wait)
        assert await is_closed(reader, within=2.0 if closed else 0.2) is closed
        assert s.closed == ([reason] if reason else [])
        assert s.guard.open_connections() == (0 if closed else 1)
        writer.close()


async def test_the_next_request_gets_its_own_header_deadline() -> None:
    async with served() as s:
        reader, writer = await s.connect()
        await answered(reader, writer)
        s.advance(20)  # idle, under the idle timeout
        writer.write(b"GET /ok HTTP/1.1\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        s.advance(4.0)  # 24 s idle in all, 4 s into the headers
        assert await still_open(reader)
        s.advance(1.5)
        assert await is_closed(reader)
        assert s.closed == ["header_timeout"]


async def test_a_busy_request_is_never_cut_by_a_deadline() -> None:
    async with served() as s:
        reader, writer = await s.connect()
        writer.write(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        s.advance(100)
        assert await still_open(reader)
        s.release.set()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        writer.close()


async def test_at_the_limit_the_oldest_idle_connection_makes_room(caplog: pytest.LogCaptureFixture) -> None:
    async with served() as s:
        conns = []
        for _ in range(3):
            reader, writer = await s.connect()
            await answered(reader, writer)
            conns.append((reader, writer))
            s.clock.now += 1
        reader, writer = await s.connect()
        assert b"200 OK" in await answered(reader, writer)
        assert await is_closed(conns[0][0])
        assert all([await still_open(r) for r, _ in conns[1:]])
        assert s.closed == ["evicted"]
        assert s.guard.open_connections() == 3
        assert "server.max_connections=3" in caplog.text


async def test_at_the_limit_with_every_connection_busy_a_new_one_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with served() as s:
        busy = []
        for _ in range(3):
            reader, writer = await s.connect()
            writer.write(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
            await writer.drain()
            busy.append((reader, writer))
        await asyncio.sleep(0.1)
        reader, _ = await s.connect()
        assert await is_closed(reader)
        assert s.closed == ["refused"]
        assert "refusing new connections" in caplog.text
        s.release.set()
        for r, _ in busy:
            assert (await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    ("groups", "group_bytes", "expected"),
    [
        # kube-apiserver sends one X-Remote-Group line per group: 130 groups were a plain-text 400
        (130, 30, b"HTTP/1.1 200"),
        (1000, 30, b"HTTP/1.1 200"),
        # past the total header size (64 KiB here, 1 MiB by default, as Go's): 431 before parsing
        (3000, 30, b"HTTP/1.1 431"),
        (10, 8000, b"HTTP/1.1 431"),
    ],
)
async def test_header_lines_and_their_total_size(groups: int, group_bytes: int, expected: bytes) -> None:
    async with served() as s:
        reader, writer = await s.connect()
        lines = b"".join(
            b"X-Remote-Group: " + str(i).encode().rjust(group_bytes, b"g") + b"\r\n" for i in range(groups)
        )
        writer.write(b"GET /ok HTTP/1.1\r\nHost: test\r\nX-Remote-User: hpa\r\n" + lines + b"\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(expected), head[:100]
        if expected.endswith(b"200"):
            body = await reader.read(100)
            assert f"ok {groups + 2} headers".encode() in body
        else:
            assert await is_closed(reader)
            assert s.closed == ["headers_too_large"]


def _tls_pair(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    certs = CertFactory(directory)
    ca = certs.ca("ca")
    serving = certs.serving(ca)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(serving.cert_file, serving.key_file)
    client = ssl.create_default_context(cafile=ca.cert_file)
    return server, client


async def test_tls_handshake_deadline_and_count(tmp_path: Path) -> None:
    server_ctx, client_ctx = _tls_pair(tmp_path)
    limits = ConnectionLimits(
        max_connections=10, header_read_timeout=0.5, idle_timeout=30, max_header_bytes=65536
    )
    async with served(limits, server_ctx) as s:
        # A bare TCP connection to the TLS port: counted at once, closed by asyncio's handshake timeout.
        reader, writer = await s.connect()
        await asyncio.sleep(0.05)
        assert s.guard.counts()["handshake"] == 1
        assert await is_closed(reader, within=10)
        writer.close()
        s.advance(2.0)
        assert s.guard.open_connections() == 0
        # A real client completes the handshake and is answered.
        tls_reader, tls_writer = await s.connect(ssl=client_ctx, server_hostname="localhost")
        assert b"200 OK" in await answered(tls_reader, tls_writer)
        assert s.guard.counts()["idle"] == 1
        assert s.closed == ["handshake_failed"]


async def test_connections_in_their_handshake_make_room_too(tmp_path: Path) -> None:
    # Bare TCP connections to the TLS port hold the limit while they never handshake; the guard owns
    # them from the accept, so a real client still gets in by closing the oldest.
    server_ctx, client_ctx = _tls_pair(tmp_path)
    limits = ConnectionLimits(
        max_connections=2, header_read_timeout=30, idle_timeout=30, max_header_bytes=65536
    )
    async with served(limits, server_ctx) as s:
        first, _ = await s.connect()
        s.clock.now += 1
        second, _ = await s.connect()
        await asyncio.sleep(0.05)
        assert s.guard.counts()["handshake"] == 2
        reader, writer = await s.connect(ssl=client_ctx, server_hostname="localhost")
        assert b"200 OK" in await answered(reader, writer)
        assert await is_closed(first)
        assert await still_open(second)
        assert s.closed == ["evicted"]


async def test_malformed_requests_log_one_throttled_line_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with served(ConnectionLimits(max_connections=100)) as s:
        for _ in range(20):
            reader, writer = await s.connect()
            writer.write(b"GET /ok HTTP/1.1\r\nHost: test\r\nBad Header Line\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert b" 400 Bad Request" in head.split(b"\r\n")[0]
            writer.close()
    records = [r for r in caplog.records if r.name == "adapter.http"]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert records[0].exc_info is None
    assert "Traceback" not in caplog.text
