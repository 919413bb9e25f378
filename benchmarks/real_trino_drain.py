"""Drains of real Trino 476 workers by the controller's actuator, with queries running.

    python -m benchmarks.real_trino_drain [--rounds 3] [--workers 3] [--grace 3] [--query-seconds 10]

A real cluster (tests/peers/trino_cluster.py: coordinator and ``--workers`` workers, each its own JVM,
``shutdown.grace-period`` of ``--grace`` seconds) behind the pods of a Deployment on the Kubernetes sandbox
(tests/peers/real_trino_kube.py). Each round asks for one worker less, once with every worker idle (the
baseline of the same run: Trino's own floor is two grace periods) and once with two scans running on
every worker whose pages take ``--query-seconds``. Measured from the actuator's decision: when the worker was
DRAINED and when its pod went, in seconds and in grace periods, and the queries that failed (must be 0).
The drained worker is put back to work between rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.peers.real_trino_kube import actuator, long_queries, real_workers_on_kube
from tests.peers.trino_cluster import TrinoCluster, start_trino_cluster


@dataclass
class Round:
    load: str
    drained_after: float
    removed_after: float
    failed: int
    queries_left: float


async def one_round(trino: TrinoCluster, load: bool, query_seconds: float, index: int) -> Round:
    async with real_workers_on_kube(trino) as world:
        queries = long_queries(trino, f"bench_{index}", f"{query_seconds:g}s") if load else []
        started = time.monotonic()
        ends = [started + query_seconds] if load else [started]
        act = actuator(world)
        drained_at: float | None = None
        leaver = None
        try:
            while time.monotonic() - started < 300:
                outcome = await act.apply(len(trino.workers) - 1, time.time())
                if outcome.errors:
                    raise RuntimeError(f"actuator errors: {outcome.errors}")
                if leaver is None:
                    leaver = next((n for n in trino.workers if trino.get_state(n) == "DRAINING"), None)
                if leaver is not None and drained_at is None and trino.get_state(leaver) == "DRAINED":
                    drained_at = time.monotonic()
                if outcome.replicas is not None:
                    break
                await asyncio.sleep(0.25)
        finally:
            await act.close()
        removed_at = time.monotonic()
        while not world.removals and time.monotonic() - removed_at < 30:
            await asyncio.sleep(0.05)
        removed_at = time.monotonic()
        failed = 0
        for q in queries:
            try:
                q.result(120)
            except Exception:
                failed += 1
        if drained_at is None:
            drained_at = removed_at
        return Round(
            "2 scans on every worker" if load else "idle",
            drained_at - started,
            removed_at - started,
            failed,
            max(0.0, max(ends) - started),
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--grace", type=int, default=3)
    parser.add_argument("--query-seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"starting Trino 476: coordinator + {args.workers} workers ...", flush=True)
        t0 = time.monotonic()
        trino = start_trino_cluster(Path(tmp), workers=args.workers, grace_period=f"{args.grace}s")
        print(f"  up in {time.monotonic() - t0:.0f} s", flush=True)
        rounds: list[Round] = []
        try:
            for i in range(args.rounds):
                for load in (False, True):
                    r = asyncio.run(one_round(trino, load, args.query_seconds, i))
                    print(
                        f"  round {i + 1} {r.load}: DRAINED after {r.drained_after:.1f} s, failed {r.failed}"
                    )
                    rounds.append(r)
        finally:
            trino.stop()
    grace = float(args.grace)
    print()
    print(f"grace period {grace:g} s; every figure from the actuator's decision; {args.rounds} rounds each")
    print()
    print(
        "| load | DRAINED after s (median, max) | in grace periods | pod removed after s (median) "
        "| minus the queries' own time, in grace periods | failed queries |"
    )
    print("|---|---|---|---|---|---|")
    for load in ("idle", "2 scans on every worker"):
        rs = [r for r in rounds if r.load == load]
        drained = [r.drained_after for r in rs]
        extra = [(r.drained_after - r.queries_left) / grace for r in rs]
        print(
            f"| {load} | {statistics.median(drained):.1f}, {max(drained):.1f} | "
            f"{statistics.median(drained) / grace:.2f}x | {statistics.median(r.removed_after for r in rs):.1f} | "
            f"{statistics.median(extra):.2f}x | {sum(r.failed for r in rs)} |"
        )


if __name__ == "__main__":
    main()
