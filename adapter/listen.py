"""Bind the API server's socket."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from aiohttp import web


@dataclass
class Listening:
    runner: web.AppRunner
    host: str
    port: int
    scheme: str

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def listen(
    app: web.Application,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_request_line_bytes: int = 65536,
) -> Listening:
    """Start serving ``app``; port 0 picks a free one. Long request lines reach the app (and get a
    proper Status) up to ``max_request_line_bytes`` instead of a bare parser error."""
    runner = web.AppRunner(
        app,
        access_log=None,
        max_line_size=max_request_line_bytes,
        max_field_size=max_request_line_bytes,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    bound = port
    server = site._server
    for sock in getattr(server, "sockets", None) or []:
        bound = sock.getsockname()[1]
        break
    return Listening(runner, host, bound, "https" if ssl_context else "http")
