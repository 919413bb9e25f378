"""Every trace x every policy: queuescale's policy against the baselines, as a Markdown table.

    python -m benchmarks.sim_compare [--days 7] [--policy benchmarks/policies/trino-workers.yaml]
        [--traces DIR] [--seed 1]

Each trace is a load *shape*; it is scaled to a mean arrival rate chosen so that its busiest minute needs
about 50-60 busy query slots (13-15 workers of 4 slots), inside the example policy's ceiling of 20 workers
(30 in business hours), with a mean service time of 20 s (slot-seconds, exponential):

| trace | peak / mean of the shape | mean arrivals/s | mean busy slots |
|---|---:|---:|---:|
| crane-input0 | 2.5 | 1.0 | 20 |
| crane-input1 | 11.8 | 0.25 | 5 |
| crane-input4 | 12.7 | 0.2 | 4 |
| crane-input15 | 1.8 | 1.5 | 30 |

A trace not listed gets :data:`DEFAULT_RATE`. The run lasts ``--days`` or the trace, whichever is shorter.
Columns: worker-hours, p50/p95/p99 queue wait, SLO misses (the policy's sloSeconds), scale actions, queries
killed, and worker-hours as a ratio to HPA-on-CPU and to the oracle.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from autoscaler.policy import load_policies
from autoscaler.sim.baselines import BASELINES
from autoscaler.sim.cli import cluster_config_for, load_scenario, run_scenario
from autoscaler.sim.report import ORACLE, REFERENCE

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY = ROOT / "benchmarks" / "policies" / "trino-workers.yaml"
DEFAULT_TRACES = Path("/work/shared/data/traces")
MEAN_SERVICE_S = 20.0
DEFAULT_RATE = 0.5
RATES = {"crane-input0": 1.0, "crane-input1": 0.25, "crane-input4": 0.2, "crane-input15": 1.5}


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference > 0 else "–"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    policies = [p for p, _ in load_policies(args.policy)]
    config = cluster_config_for(policies[0])
    print(
        "| trace | policy | worker-hours | p50 wait s | p95 wait s | p99 wait s | SLO misses | scale actions "
        "| killed | vs hpa-cpu | vs oracle |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    timings: list[str] = []
    for trace in sorted(args.traces.glob("*.csv"), key=lambda p: p.stem):
        started = time.perf_counter()
        scenario = load_scenario(
            trace,
            seed=args.seed,
            days=args.days,
            rate_scale=None,
            mean_rate=RATES.get(trace.stem, DEFAULT_RATE),
            mean_service=MEAN_SERVICE_S,
        )
        results = run_scenario(scenario, policies, BASELINES, config, seed=args.seed)
        ref = results[REFERENCE].worker_hours
        oracle = results[ORACLE].worker_hours
        for name, r in results.items():
            print(
                f"| {trace.stem} | {name} | {r.worker_hours:.1f} | {r.queue_wait_p50_s:.3g} | "
                f"{r.queue_wait_p95_s:.3g} | {r.queue_wait_p99_s:.3g} | {r.slo_misses} | {r.scale_actions} | "
                f"{r.killed} | {_ratio(r.worker_hours, ref)} | {_ratio(r.worker_hours, oracle)} |",
                flush=True,
            )
        timings.append(
            f"{trace.stem}: {scenario.load.duration / 86400:.3g} days, {len(scenario.load.arrivals)} queries, "
            f"{time.perf_counter() - started:.1f} s wall"
        )
    print()
    print(f"SLO {config.slo_seconds:g} s; mean service {MEAN_SERVICE_S:g} s; seed {args.seed}.")
    for line in timings:
        print(f"- {line}")


if __name__ == "__main__":
    main()
