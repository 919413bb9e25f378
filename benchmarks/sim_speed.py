"""Simulator speed: 7 simulated days of one Trino cluster at 5 s steps, per baseline policy.

    python -m benchmarks.sim_speed [--days 7] [--rate 0.5] [--service 40] [--trace PATH]

The load follows a real trace's shape scaled to ``--rate`` queries/s. Prints one row per policy: steps,
queries, wall seconds (load generation excluded, reported on its own line) and simulated seconds per wall
second. The target is <= 10 s of wall time per policy for 7 days.
"""

from __future__ import annotations

import argparse
import time

from autoscaler.sim import ClusterConfig, simulate
from autoscaler.sim.baselines import BASELINES, make_baseline
from autoscaler.sim.load import from_trace_csv

DEFAULT_TRACE = "/work/shared/data/traces/crane-input0.csv"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--rate", type=float, default=0.5, help="mean arrivals per second")
    parser.add_argument("--service", type=float, default=40.0, help="mean service time, slot-seconds")
    parser.add_argument("--trace", default=DEFAULT_TRACE)
    parser.add_argument("--step", type=float, default=5.0)
    args = parser.parse_args(argv)

    duration = args.days * 86_400
    started = time.perf_counter()
    load = from_trace_csv(
        args.trace, mean_service_s=args.service, mean_rate=args.rate, seed=1, duration=duration
    )
    print(f"load: {load.count} queries over {duration:.0f} s in {time.perf_counter() - started:.2f} s")
    config = ClusterConfig(slots_per_worker=4, startup_seconds=60, max_workers=200)
    print(f"{'policy':<10} {'steps':>8} {'queries':>8} {'wall s':>8} {'sim s / wall s':>15}")
    for name in BASELINES:
        policy = make_baseline(name, load, config)
        started = time.perf_counter()
        result = simulate(load, policy, config, step_seconds=args.step)
        wall = time.perf_counter() - started
        print(f"{name:<10} {result.steps:>8} {result.arrived:>8} {wall:>8.2f} {duration / wall:>15,.0f}")


if __name__ == "__main__":
    main()
