"""Adapter benchmark: throughput and latency of the metric GET against a bare aiohttp handler, memory,
and freshness. Prints one table; every ratio is against a baseline measured in the same run.

    python -m benchmarks.adapter_bench [--seconds 5] [--rate 1000] [--series 10,1000,10000]

Throughput: wrk (Debian package) with 1 thread and 16 connections for --seconds, the server alone on the
other core. Latency: a paced aiohttp client at --rate requests/s, each latency measured from its
scheduled send time so a stall is counted, not hidden. RSS: the server process after the load.
Freshness: see benchmarks/freshness_bench.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import numpy as np

from benchmarks.bench_server import PATH, SELECTOR

URL_PATH = f"{PATH}?labelSelector={SELECTOR.replace('=', '%3D').replace(',', '%2C')}"


@contextmanager
def server(kind: str, series: int) -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_server", kind, str(series)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"{kind} server did not start: {line!r}")
        yield line.split()[1], proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def wrk_rps(url: str, seconds: float) -> float:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    out = subprocess.run(
        [wrk, "-t1", "-c16", f"-d{seconds:g}s", url], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if match is None or non2xx is not None:
        raise RuntimeError(f"wrk run failed or got errors:\n{out}")
    return float(match.group(1))


async def paced_latencies(url: str, rate: float, seconds: float) -> np.ndarray:
    total = int(rate * seconds)
    latencies = np.zeros(total)
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(url) as warm:
            await warm.read()
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05

        async def one(i: int) -> None:
            scheduled = start + i / rate
            await asyncio.sleep(max(0.0, scheduled - loop.time()))
            async with session.get(url) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
            latencies[i] = loop.time() - scheduled

        await asyncio.gather(*(one(i) for i in range(total)))
    return latencies


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--series", default="10,1000,10000")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", os.getcwd())
    rows = []
    for series in [int(s) for s in args.series.split(",")]:
        figures: dict[str, dict[str, float]] = {}
        for kind in ("bare", "adapter"):
            with server(kind, series) as (url, pid):
                full = url + URL_PATH
                rps = wrk_rps(full, args.seconds)
                lat = asyncio.run(paced_latencies(full, args.rate, args.seconds)) * 1000
                figures[kind] = {
                    "rps": rps,
                    "p50": float(np.percentile(lat, 50)),
                    "p99": float(np.percentile(lat, 99)),
                    "rss": rss_mb(pid),
                }
        rows.append((series, figures))
        time.sleep(0.2)

    print(
        f"metric GET, 1 matching series; wrk -t1 -c16 {args.seconds:g}s; paced client at {args.rate:g} req/s"
    )
    header = (
        "| series | adapter req/s | bare req/s | ratio | adapter p50 ms | adapter p99 ms | bare p99 ms "
        "| adapter RSS MB | bare RSS MB |"
    )
    print(header)
    print("|" + "---|" * 9)
    for series, f in rows:
        a, b = f["adapter"], f["bare"]
        print(
            f"| {series:,} | {a['rps']:,.0f} | {b['rps']:,.0f} | {a['rps'] / b['rps']:.2f}x | {a['p50']:.2f} "
            f"| {a['p99']:.2f} | {b['p99']:.2f} | {a['rss']:.0f} | {b['rss']:.0f} |"
        )


if __name__ == "__main__":
    main()
