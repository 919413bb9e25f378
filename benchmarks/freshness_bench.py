"""Freshness: time from a change at the (sandbox) Trino coordinator to the changed value being served.

    python -m benchmarks.freshness_bench [--rounds 10] [--poll 2.0]

Each round waits a random part of a poll interval, queues one more query at the coordinator, and reads
the adapter's trino_queued_queries over HTTP every 10 ms until it shows the new count. The bound to beat
is 2 x the poll interval (a change just after a poll waits one interval, plus the poll itself).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

import aiohttp
import numpy as np

from adapter.runtime import start_adapter
from adapter.settings import load_settings
from core.quantity import milli_value
from lab.sandbox.trino import TrinoCluster, TrinoSandbox

PATH = "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/trino_queued_queries"


async def served(session: aiohttp.ClientSession, url: str) -> float | None:
    async with session.get(url + PATH) as resp:
        if resp.status != 200:
            return None
        body = await resp.json()
        return sum(milli_value(i["value"]) for i in body["items"]) / 1000


async def run(rounds: int, poll: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    cluster = TrinoCluster(478, workers=2)
    cluster.submit_many("global.etl", 4, work_seconds=1e9)  # etl is now at its limit: new ones queue
    delays = []
    async with TrinoSandbox(cluster, tick_seconds=0.05) as trino:
        settings = load_settings(
            None,
            {
                "server": {"listen": "127.0.0.1:0", "insecure_http": True},
                "auth": {"mode": "none"},
                "trino": [
                    {
                        "name": "bench",
                        "endpoint": {"url": trino.coordinator_url},
                        "poll_interval_seconds": poll,
                    }
                ],
            },
        )
        async with start_adapter(settings) as running, aiohttp.ClientSession() as session:
            while await served(session, running.url) != 0:
                await asyncio.sleep(0.05)
            for k in range(1, rounds + 1):
                await asyncio.sleep(rng.uniform(0, poll))
                cluster.submit("global.etl", work_seconds=1e9)
                changed = time.monotonic()
                while await served(session, running.url) != k:
                    await asyncio.sleep(0.01)
                delays.append(time.monotonic() - changed)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--poll", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    delays = np.array(asyncio.run(run(args.rounds, args.poll, args.seed)))
    print(f"freshness over {args.rounds} changes, Trino source polled every {args.poll:g} s")
    print("| poll interval s | median s | max s | max / poll interval | bound |")
    print("|---|---|---|---|---|")
    print(
        f"| {args.poll:g} | {np.median(delays):.2f} | {delays.max():.2f} | {delays.max() / args.poll:.2f}x "
        f"| <= 2x |"
    )


if __name__ == "__main__":
    main()
