"""Adapter under hostile input: resident memory against the same adapter at rest, measured in one run.

    python -m benchmarks.adapter_hostile [--connections 1000] [--selectors 2500] [--body-mb 100]
                                         [--ref GIT-REV]

The adapter runs as deployed, in its own process (``python -m queuescale adapter``): HTTPS, front-proxy trust from a
CA file, two Trino sources on loopback — "healthy" (an emulated coordinator) and "big" (a relay of the
same coordinator until its phase, then a ``--body-mb`` MB ``/metrics``). Each phase runs against a fresh
adapter process that has polled both for a few seconds (its RSS "at rest"):

- ``--connections`` TLS connections that finish their handshake and send nothing (the probe: ~256 KiB
  each, kept for an hour);
- as many bare TCP connections that never handshake, and whether they are still open 12 s later;
- ``--selectors`` requests with distinct ~9 KB label selectors, authenticated as kube-apiserver's front
  proxy would (system:masters, so no SubjectAccessReview is asked);
- the big backend's body: peak RSS over ``--body-seconds`` of its polls, and the share of checks in which
  the healthy cluster's metric answered 200 meanwhile (the probe: 503 in half of them).

Each phase starts a fresh adapter process and prints its RSS at rest and under the phase; ``--ref``
runs the same phases against another commit of the adapter (a scratch ``git worktree``) in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

from lab.sandbox.serve import serve
from tests.helpers.certs import CertFactory, Issued
from tests.helpers.trino import trino_sandbox

ROOT = Path(__file__).resolve().parent.parent
METRIC = "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/trino_queued_queries"
MIB = 1 << 20


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass
class BigBackend:
    """A Trino coordinator until ``huge`` is set (it relays ``upstream``), then a body of ``size`` bytes
    streamed on every GET."""

    size: int
    upstream: str = ""
    huge: bool = False
    bytes_sent: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self.huge:
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    self.upstream + request.path_qs,
                    headers={k: v for k, v in request.headers.items() if k.startswith("X-")},
                ) as upstream,
            ):
                return web.Response(
                    status=upstream.status, body=await upstream.read(), content_type=upstream.content_type
                )
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        chunk = (b"# " + b"x" * 1021 + b"\n") * 256
        sent = 0
        with contextlib.suppress(ConnectionError):
            while sent < self.size:
                await response.write(chunk)
                sent += len(chunk)
                self.bytes_sent += len(chunk)
        return response


@contextlib.asynccontextmanager
async def serve_big(big: BigBackend) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/{tail:.*}", big.handle)
    served = await serve(app)
    try:
        yield served.url
    finally:
        await served.stop()


@dataclass
class Pki:
    serving_ca: Issued
    serving: Issued
    proxy_ca: Issued
    proxy: Issued

    @classmethod
    def create(cls, directory: Path) -> Pki:
        f = CertFactory(directory)
        serving_ca, proxy_ca = f.ca("serving-ca"), f.ca("front-proxy-ca")
        return cls(serving_ca, f.serving(serving_ca), proxy_ca, f.client(proxy_ca, "proxy"))

    def client(self, with_certificate: bool) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.serving_ca.cert_file)
        if with_certificate:
            ctx.load_cert_chain(self.proxy.cert_file, self.proxy.key_file)
        return ctx


@dataclass
class Row:
    adapter: str
    phase: str
    rest: float
    loaded: float
    note: str = ""


@dataclass
class Adapter:
    label: str
    proc: subprocess.Popen[bytes]
    url: str
    port: int


def write_config(directory: Path, pki: Pki, healthy: str, big: str, port: int) -> Path:
    config = {
        "server": {
            "listen": f"127.0.0.1:{port}",
            "tls_cert_file": str(pki.serving.cert_file),
            "tls_key_file": str(pki.serving.key_file),
        },
        "auth": {"mode": "front-proxy", "requestheader_client_ca_file": str(pki.proxy_ca.cert_file)},
        # Never called: system:masters needs no SubjectAccessReview.
        "kube": {"host": "http://127.0.0.1:9"},
        "trino": [
            {"name": "healthy", "endpoint": {"url": healthy}, "poll_interval_seconds": 2},
            {"name": "big", "endpoint": {"url": big}, "poll_interval_seconds": 2, "timeout_seconds": 10},
        ],
        "log_level": "warning",
    }
    path = directory / "adapter.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(label: str, source_root: Path, config: Path, port: int, log: Path) -> Adapter:
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    # Revisions before the queuescale package (the composition root) ran the adapter as ``python -m adapter``.
    command = ["queuescale", "adapter"] if (source_root / "queuescale").is_dir() else ["adapter"]
    proc = subprocess.Popen(
        [sys.executable, "-m", *command, "--config", str(config)],
        cwd=source_root,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Adapter(label, proc, f"https://127.0.0.1:{port}", port)


async def wait_ready(adapter: Adapter, pki: Pki) -> None:
    connector = aiohttp.TCPConnector(ssl=pki.client(False))
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(300):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(adapter.url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            if adapter.proc.poll() is not None:
                raise RuntimeError(f"{adapter.label} adapter exited with {adapter.proc.returncode}")
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{adapter.label} adapter did not become ready")


async def settle(pid: int, seconds: float = 2.0) -> float:
    await asyncio.sleep(seconds)
    return rss_mb(pid)


async def open_idle(adapter: Adapter, pki: Pki, count: int, tls: bool) -> list[asyncio.StreamWriter]:
    ctx = pki.client(False) if tls else None
    writers: list[asyncio.StreamWriter] = []

    async def one() -> None:
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    "127.0.0.1", adapter.port, ssl=ctx, server_hostname="localhost" if tls else None
                ),
                10,
            )
            writers.append(writer)

    for start_at in range(0, count, 100):
        await asyncio.gather(*(one() for _ in range(min(100, count - start_at))))
    return writers


async def still_open(writers: list[asyncio.StreamWriter]) -> int:
    await asyncio.sleep(0.5)
    return sum(not w.is_closing() and not w.transport.is_closing() and not _eof(w) for w in writers)


def _eof(writer: asyncio.StreamWriter) -> bool:
    reader = getattr(writer, "_protocol", None)
    stream = getattr(reader, "_stream_reader", None)
    return bool(stream is not None and stream.at_eof())


async def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.transport.abort()
    await asyncio.sleep(0.5)


def selector(i: int) -> str:
    # ~9 KB, matching every series of the healthy cluster, distinct per request.
    values = ",".join(f"v{i:05d}x{j:04d}" for j in range(800))
    return f"cluster=healthy,bench notin ({values})"


async def selectors(adapter: Adapter, pki: Pki, count: int) -> str:
    connector = aiohttp.TCPConnector(ssl=pki.client(True), limit=8)
    headers = {"X-Remote-User": "bench", "X-Remote-Group": "system:masters"}
    codes: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(i: int) -> None:
            async with session.get(adapter.url + METRIC, params={"labelSelector": selector(i)}) as resp:
                await resp.read()
                codes[resp.status] = codes.get(resp.status, 0) + 1

        for start_at in range(0, count, 50):
            await asyncio.gather(*(one(i) for i in range(start_at, min(count, start_at + 50))))
    return ", ".join(f"{n}x{code}" for code, n in sorted(codes.items()))


async def huge_body(adapter: Adapter, pki: Pki, big: BigBackend, seconds: float) -> tuple[float, str]:
    big.huge = True
    connector = aiohttp.TCPConnector(ssl=pki.client(True))
    headers = {"X-Remote-User": "bench", "X-Remote-Group": "system:masters"}
    peak, ok, checks = 0.0, 0, 0
    sent_before = big.bytes_sent
    try:
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(
                        adapter.url + METRIC,
                        params={"labelSelector": "cluster=healthy"},
                        timeout=aiohttp.ClientTimeout(total=2),
                    ) as resp:
                        await resp.read()
                        ok += resp.status == 200
                checks += 1
                if adapter.proc.poll() is None:
                    peak = max(peak, rss_mb(adapter.proc.pid))
                await asyncio.sleep(0.25)
    finally:
        big.huge = False
    read = (big.bytes_sent - sent_before) / MIB
    return peak, f"healthy cluster's metric 200 in {ok}/{checks} checks; the big backend sent {read:.0f} MB"


@contextlib.asynccontextmanager
async def adapter_at_rest(
    label: str, root: Path, pki: Pki, healthy: str, big_url: str
) -> AsyncIterator[tuple[Adapter, float]]:
    """A fresh adapter process per phase: ready, polled a few times, its RSS settled."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), pki, healthy, big_url, port)
        adapter = start(label, root, config, port, Path(tmp) / "adapter.log")
        try:
            await wait_ready(adapter, pki)
            yield adapter, await settle(adapter.proc.pid, 5.0)
        finally:
            adapter.proc.terminate()
            try:
                adapter.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                adapter.proc.kill()
            if adapter.proc.returncode not in (0, -15):
                print((Path(tmp) / "adapter.log").read_text()[-2000:])


async def run_one(
    label: str, root: Path, pki: Pki, big: BigBackend, healthy: str, big_url: str, args: argparse.Namespace
) -> list[Row]:
    rows: list[Row] = []

    def record(phase: str, rest: float, loaded: float, note: str) -> None:
        rows.append(Row(label, phase, rest, loaded, note))
        print(f"  {label}: {phase}: RSS {rest:.0f} -> {loaded:.0f} MB; {note}", flush=True)

    async with adapter_at_rest(label, root, pki, healthy, big_url) as (adapter, rest):
        tls = await open_idle(adapter, pki, args.connections, tls=True)
        loaded = await settle(adapter.proc.pid)
        record(
            f"{args.connections} idle TLS connections",
            rest,
            loaded,
            f"{len(tls)} handshakes done, {await still_open(tls)} still open",
        )
        await close_all(tls)
    async with adapter_at_rest(label, root, pki, healthy, big_url) as (adapter, rest):
        bare = await open_idle(adapter, pki, args.connections, tls=False)
        loaded = await settle(adapter.proc.pid)
        await asyncio.sleep(12)  # past the default 10 s handshake deadline
        note = f"{len(bare)} accepted; 12 s later {await still_open(bare)} still open"
        record(f"{args.connections} bare TCP connections (no handshake)", rest, loaded, note)
        await close_all(bare)
    async with adapter_at_rest(label, root, pki, healthy, big_url) as (adapter, rest):
        codes = await selectors(adapter, pki, args.selectors)
        record(f"{args.selectors} distinct ~9 KB selectors", rest, await settle(adapter.proc.pid), codes)
    async with adapter_at_rest(label, root, pki, healthy, big_url) as (adapter, rest):
        peak, note = await huge_body(adapter, pki, big, args.body_seconds)
        record(f"{args.body_mb} MB backend body (peak)", rest, peak, note)
    return rows


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="queuescale-ref-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)


async def main_async(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        pki = Pki.create(Path(tmp) / "pki")
        big = BigBackend(args.body_mb * MIB)
        async with trino_sandbox(478, workers=3) as healthy, serve_big(big) as big_url:
            big.upstream = healthy.coordinator_url
            healthy.cluster.submit_many("global.adhoc", 5, 1e9)
            rows += await run_one("this", ROOT, pki, big, healthy.coordinator_url, big_url, args)
            if args.ref:
                with worktree(args.ref) as ref_root:
                    rows += await run_one(
                        args.ref, ref_root, pki, big, healthy.coordinator_url, big_url, args
                    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--selectors", type=int, default=2500)
    parser.add_argument("--body-mb", type=int, default=100)
    parser.add_argument("--body-seconds", type=float, default=15.0)
    parser.add_argument("--ref", help="also run the adapter of this git revision, e.g. 22cc3e9")
    args = parser.parse_args()
    # Both sides hold a descriptor per connection.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8 * args.connections + 1024)), hard))
    rows = asyncio.run(main_async(args))
    print()
    print("| adapter | phase | RSS at rest MB | RSS under it MB | growth MB | growth / at rest | note |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        growth = r.loaded - r.rest
        print(
            f"| {r.adapter} | {r.phase} | {r.rest:.0f} | {r.loaded:.0f} | {growth:+.0f} | "
            f"{growth / r.rest:.2f}x | {r.note} |"
        )


if __name__ == "__main__":
    main()
