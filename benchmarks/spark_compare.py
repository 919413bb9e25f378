"""Every trace x every policy on a Spark standalone pool: queuescale against the baselines, as a Markdown table.

    python -m benchmarks.spark_compare [--days 7] [--policy benchmarks/policies/spark-pool.yaml]
        [--traces DIR] [--seed 1]

Each trace is a load *shape* of application arrivals, scaled to a mean rate chosen so that the static
baseline (Erlang C slots for the busiest 15 minutes on an unbounded pool) needs 10-14 of the example
policy's 16 workers of 4 cores. Applications have ~3 stages of ~26 tasks (lognormal, up to 400) of 20 s
on average, run with Spark's dynamic-allocation defaults, executors of 1 core starting in 5 s, workers in
the policy's startupSeconds (45 s):

| trace | peak / mean of the shape | applications/s | mean busy cores (unbounded pool) |
|---|---:|---:|---:|
| crane-input0 | 2.5 | 0.004 | 7 |
| crane-input1 | 11.6 | 0.0025 | 4 |
| crane-input4 | 12.7 | 0.0015 | 2.5 |
| crane-input15 | 1.8 | 0.004 | 7 |

A trace not listed gets :data:`DEFAULT_RATE`. The run lasts ``--days`` or the trace, whichever is shorter.
Columns: worker-hours, p50/p95/p99 task queue wait (stage submitted to task start), SLO misses (tasks
waiting over 60 s), scale actions, task attempts killed, worker-hours as a ratio to HPA-on-CPU and to the
oracle, and the p95 application run time. The last lines give each trace's slowest single run (one
policy, ``--days`` of simulated time at 5 s steps) in wall seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from autoscaler.policy import load_policies
from autoscaler.sim.report import ORACLE, REFERENCE
from autoscaler.sim.spark_baselines import POOL_BASELINES, make_pool_baseline
from autoscaler.sim.spark_cli import load_pool_scenario, pool_config_for
from autoscaler.sim.spark_engine_policy import SparkQueuescalePolicy
from autoscaler.sim.spark_run import SparkResult, simulate_pool

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY = ROOT / "benchmarks" / "policies" / "spark-pool.yaml"
DEFAULT_TRACES = Path("/work/shared/data/traces")
MEAN_TASK_S = 20.0
DEFAULT_RATE = 0.003
RATES = {"crane-input0": 0.004, "crane-input1": 0.0025, "crane-input4": 0.0015, "crane-input15": 0.004}


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
    config = pool_config_for(policies[0])
    print(
        "| trace | policy | worker-hours | p50 wait s | p95 wait s | p99 wait s | SLO misses | scale actions "
        "| killed | vs hpa-cpu | vs oracle | app p95 s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    timings: list[str] = []
    for trace in sorted(args.traces.glob("*.csv"), key=lambda p: p.stem):
        scenario = load_pool_scenario(
            trace,
            seed=args.seed,
            days=args.days,
            rate_scale=None,
            mean_rate=RATES.get(trace.stem, DEFAULT_RATE),
            mean_task_seconds=MEAN_TASK_S,
        )
        load = scenario.load
        results: dict[str, SparkResult] = {}
        walls: dict[str, float] = {}
        for name in POOL_BASELINES:
            started = time.perf_counter()
            results[name] = simulate_pool(load, make_pool_baseline(name, load, config), config)
            walls[name] = time.perf_counter() - started
        for p in policies:
            engine = SparkQueuescalePolicy(p, config, epoch_start=scenario.epoch_start)
            started = time.perf_counter()
            results[engine.name] = simulate_pool(load, engine, config)
            walls[engine.name] = time.perf_counter() - started
        ref = results[REFERENCE].worker_hours
        oracle = results[ORACLE].worker_hours
        for name, r in results.items():
            print(
                f"| {trace.stem} | {name} | {r.worker_hours:.1f} | {r.queue_wait_p50_s:.3g} | "
                f"{r.queue_wait_p95_s:.3g} | {r.queue_wait_p99_s:.3g} | {r.slo_misses} | {r.scale_actions} | "
                f"{r.killed} | {_ratio(r.worker_hours, ref)} | {_ratio(r.worker_hours, oracle)} | "
                f"{r.app_runtime_p95_s:.0f} |",
                flush=True,
            )
        slowest = max(walls, key=lambda n: walls[n])
        timings.append(
            f"{trace.stem}: {load.duration / 86400:.3g} days at 5 s steps, {load.app_count} applications, "
            f"{load.task_count} tasks; slowest run {slowest} {walls[slowest]:.1f} s wall, "
            f"all {len(walls)} runs {sum(walls.values()):.1f} s"
        )
    print()
    print(f"SLO {config.slo_seconds:g} s of task wait; mean task {MEAN_TASK_S:g} s; seed {args.seed}.")
    for line in timings:
        print(f"- {line}")


if __name__ == "__main__":
    main()
