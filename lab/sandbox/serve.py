"""Run an emulated service's aiohttp application on a loopback port."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from aiohttp import web


@dataclass
class Served:
    """A running application; ``url`` has no trailing slash."""

    runner: web.AppRunner
    url: str
    port: int

    async def stop(self, grace_seconds: float = 0.05) -> None:
        """Stop once the connections clients just closed are gone (at most ``grace_seconds``).

        aiohttp leaks the socket of a connection whose client hung up just before the server stopped
        (a ResourceWarning later), so give it a few loop turns to see the hang-up first.
        """
        server = self.runner.server
        step = 0.005
        for _ in range(max(1, round(grace_seconds / step))):
            if server is None or not server.connections:
                break
            await asyncio.sleep(step)
        await self.runner.cleanup()


async def serve(
    app: web.Application, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
) -> Served:
    """Serve ``app`` on ``host:port`` (0 picks a free port), over HTTPS with ``ssl_context``; return where."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the sandbox only listens on loopback")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert server is not None
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    scheme = "https" if ssl_context is not None else "http"
    return Served(runner=runner, url=f"{scheme}://{host}:{bound}", port=bound)
