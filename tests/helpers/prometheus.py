"""A real Prometheus server on loopback for tests, and small HTTP fronts to put before it.

:func:`running_prometheus` starts the ``prometheus`` binary (Debian package ``prometheus``) with a temp
config scraping the given targets every second and a temp TSDB, waits until it is ready and its targets
are up, and stops it by pid at the end. :func:`auth_proxy` and :func:`slow_server` are aiohttp apps on
loopback for the credential, TLS and timeout paths a bare Prometheus does not have.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

DEBIAN_PACKAGE = "prometheus"


def prometheus_binary() -> str | None:
    found = shutil.which("prometheus")
    if found:
        return found
    return "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query straight over HTTP, for readiness checks independent of the code under test."""
        body = _get_json(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(
        self, promql: str, check: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Poll ``promql`` until ``check`` holds on its result (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if check(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql!r} never met the condition; last result {result}")
            time.sleep(0.2)

    def log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def _config(targets: Sequence[str], scrape_interval: str) -> str:
    # JSON is valid YAML; no YAML writer needed.
    scrape_configs = (
        [{"job_name": "exporter", "static_configs": [{"targets": list(targets)}]}] if targets else []
    )
    return json.dumps(
        {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "scrape_configs": scrape_configs,
        }
    )


def _start(workdir: Path, targets: Sequence[str], scrape_interval: str, timeout: float) -> PrometheusServer:
    binary = prometheus_binary()
    if binary is None:
        raise RuntimeError(
            f"the prometheus binary is missing: install the Debian package {DEBIAN_PACKAGE!r} "
            f"(apt-get install {DEBIAN_PACKAGE})"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(_config(targets, scrape_interval))
    for attempt in range(3):
        port = _free_port()
        data = workdir / f"tsdb-{attempt}"
        log_file = workdir / f"prometheus-{attempt}.log"
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = PrometheusServer(url=f"http://127.0.0.1:{port}", process=process, log_file=log_file)
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return server
            except OSError:
                pass
            time.sleep(0.1)
        server.stop()
        # The free port may have been taken between the probe and the bind: try another one.
        if "address already in use" not in server.log_tail():
            break
    raise RuntimeError(f"prometheus did not become ready; log:\n{server.log_tail()}")


@contextmanager
def running_prometheus(
    workdir: Path, targets: Sequence[str], *, scrape_interval: str = "1s", timeout: float = 30.0
) -> Iterator[PrometheusServer]:
    """A ready Prometheus whose every target has been scraped successfully at least once."""
    server = _start(workdir, targets, scrape_interval, timeout)
    try:
        if targets:
            server.wait_for(
                f'count(up{{job="exporter"}} == 1) == {len(targets)}', lambda result: bool(result), timeout
            )
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------------------
# HTTP fronts


@asynccontextmanager
async def _serve(app: web.Application, ssl_context: ssl.SSLContext | None) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def auth_proxy(
    upstream: str, authorization: Callable[[], str], ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[str]:
    """Forwards /api/v1/query to ``upstream`` when the Authorization header is ``authorization()``.

    Anything else gets a 401 with an HTML body, the way a real auth proxy answers.
    """

    async def query(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != authorization():
            return web.Response(status=401, text="<html><body>login required</body></html>")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{upstream}/api/v1/query", params=request.query) as resp,
        ):
            return web.Response(status=resp.status, body=await resp.read(), content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/api/v1/query", query)
    async with _serve(app, ssl_context) as url:
        yield url


@asynccontextmanager
async def slow_server(delay: float) -> AsyncIterator[str]:
    """Answers every query with an empty vector, but only after ``delay`` seconds."""
    # Released on exit, so shutting the server down never waits for a request the client gave up on.
    done = asyncio.Event()

    async def query(request: web.Request) -> web.Response:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), delay)
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": []}})

    app = web.Application()
    app.router.add_route("*", "/api/v1/query", query)
    async with _serve(app, None) as url:
        try:
            yield url
        finally:
            done.set()
