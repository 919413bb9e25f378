"""queuescale against the Spark pool baselines at the same service level, over seeds, as Markdown tables.

    python -m benchmarks.spark_compare [--days 7] [--seeds 5] [--startup-seconds 60,180,300]
        [--policy benchmarks/policies/spark-pool.yaml] [--traces DIR] [--first-seed 1] [--jobs 1]

For every trace, every worker start-up time and every seed, each baseline of
:mod:`autoscaler.sim.spark_baselines` (run as users run them: graceful decommission, the example HPA as
written, Spark's dynamic allocation behind an HPA, KEDA, a static size) is swept over its setting, and its
cheapest setting whose p95 task wait, SLO misses and p95 application run time are no worse than the
policy's is found (:func:`autoscaler.sim.iso_slo.cheapest_meeting`). ``cost ratio`` = the policy's
worker-hours / that setting's: below 1 the policy is cheaper at the same service level. The tables give its
mean over the seeds where some setting met the level, with a 95 % Student t interval
(:mod:`autoscaler.sim.stats`), and how many seeds that was (a seed where no setting of the sweep reaches the
policy's level counts as "none", not as a ratio). The policy's own worker-hours over the lower bound (every
task-second on a slot of a worker that exists only while busy) show how much room was left.

The start-up time is set on the pool and on the policy's ``startupSeconds`` alike (a user declares the
start-up of the pool they run), and on a ``backlogSeconds`` the policy writes equal to its start-up. Each trace is a load *shape* of application arrivals, scaled to a mean rate
chosen so that the static baseline (Erlang C slots for the busiest 15 minutes on an unbounded pool) needs
10-14 of the example policy's 16 workers of 4 cores:

| trace | peak / mean of the shape | applications/s | mean busy cores (unbounded pool) |
|---|---:|---:|---:|
| crane-input0 | 2.5 | 0.004 | 7 |
| crane-input1 | 11.6 | 0.0025 | 4 |
| crane-input4 | 12.7 | 0.0015 | 2.5 |
| crane-input15 | 1.8 | 0.004 | 7 |

A trace not listed gets :data:`DEFAULT_RATE`. Applications have ~3 stages of ~26 tasks (lognormal, up to
400) of 20 s on average, run with Spark's dynamic-allocation defaults and executors of 1 core starting in
5 s. The run lasts ``--days`` or the trace, whichever is shorter.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from autoscaler.policy.loading import load_policies
from autoscaler.policy.models import ScalingPolicy
from autoscaler.sim.iso_slo import meets
from autoscaler.sim.pool_scenario import load_pool_scenario, pool_config_for, run_pool_sweep
from autoscaler.sim.spark_baselines import POOL_BASELINES, lower_bound_worker_hours
from autoscaler.sim.spark_engine_policy import SparkQueuescalePolicy
from autoscaler.sim.spark_run import SparkResult, simulate_pool
from autoscaler.sim.stats import mean_interval

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY = ROOT / "benchmarks" / "policies" / "spark-pool.yaml"
DEFAULT_TRACES = Path("/work/shared/data/traces")
MEAN_TASK_S = 20.0
DEFAULT_RATE = 0.003
RATES = {"crane-input0": 0.004, "crane-input1": 0.0025, "crane-input4": 0.0015, "crane-input15": 0.004}
DEFAULT_STARTUPS = (60.0, 180.0, 300.0)


def with_startup(policy: ScalingPolicy, seconds: float) -> ScalingPolicy:
    """``policy`` declaring a worker start-up of ``seconds``. A ``backlogSeconds`` equal to the declared
    start-up follows it: the benchmark policy's rule, that the workers it starts finish their share of the
    backlog within one start-up time (a worker that works less than it took to start is not worth it)."""
    declared = policy.spec.target.startup_seconds
    target = policy.spec.target.model_copy(update={"startup_seconds": int(seconds)})
    metrics = []
    for m in policy.spec.metrics:
        section = m.spark_executors
        if section is not None and section.backlog_seconds == declared:
            section = section.model_copy(update={"backlog_seconds": max(1, int(seconds))})
            m = m.model_copy(update={"spark_executors": section})
        metrics.append(m)
    spec = policy.spec.model_copy(update={"target": target, "metrics": metrics})
    return policy.model_copy(update={"spec": spec})


@dataclass(frozen=True, slots=True)
class Case:
    """One measurement: a trace at one start-up time and one seed."""

    trace: Path
    startup_s: float
    seed: int
    days: float
    policy_file: Path


@dataclass(frozen=True, slots=True)
class Outcome:
    """A case's figures: per policy its worker-hours, p95 wait and SLO misses, the lower bound, and per
    (policy, baseline) the cost ratio and setting at the policy's level (None: no setting reached it) and
    whether nothing cheaper tried failed the level (a cheaper setting might meet it)."""

    case: Case
    policies: dict[str, tuple[float, float, int]]
    lower_bound: float
    found: dict[tuple[str, str], tuple[float | None, float | None, bool]]
    runs: int
    wall_s: float


def measure(case: Case) -> Outcome:
    started = time.perf_counter()
    policies = [with_startup(p, case.startup_s) for p, _ in load_policies(case.policy_file)]
    config = pool_config_for(policies[0])
    scenario = load_pool_scenario(
        case.trace,
        seed=case.seed,
        days=case.days,
        rate_scale=None,
        mean_rate=RATES.get(case.trace.stem, DEFAULT_RATE),
        mean_task_seconds=MEAN_TASK_S,
    )
    results: dict[str, SparkResult] = {}
    for p in policies:
        engine = SparkQueuescalePolicy(p, config, epoch_start=scenario.epoch_start)
        results[engine.name] = simulate_pool(scenario.load, engine, config)
    sweep = run_pool_sweep(scenario, results, POOL_BASELINES, config)

    def unbounded(policy: str, name: str, setting: float | None) -> bool:
        """No setting tried with less capacity than ``setting`` failed the level: a cheaper one might meet it."""
        if setting is None:
            return False
        family = sweep.families[name]
        lower = family.more_capacity == "lower"
        less = [p for p in sweep.points[name] if p.setting != setting and (p.setting > setting) == lower]
        return all(meets(p.result, results[policy]) for p in less)

    found = {
        (policy, name): (iso.cost_ratio, iso.setting, unbounded(policy, name, iso.setting))
        for policy, by_name in sweep.iso_slo.items()
        for name, iso in by_name.items()
    }
    return Outcome(
        case,
        {n: (r.worker_hours, r.queue_wait_p95_s, r.slo_misses) for n, r in results.items()},
        lower_bound_worker_hours(scenario.load, config),
        found,
        len(results) + sum(len(pts) for pts in sweep.points.values()),
        time.perf_counter() - started,
    )


def _settings(values: Sequence[float]) -> str:
    return ", ".join(f"{v:g}" for v in sorted(set(values))) if values else "–"


def tables(outcomes: Sequence[Outcome], seeds: int) -> list[str]:
    """The Markdown tables: one per start-up time, a row per trace and baseline, a row per trace for the
    policy against the lower bound."""
    by_key: dict[tuple[float, str], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_key[(o.case.startup_s, o.case.trace.stem)].append(o)
    lines: list[str] = []
    for startup in sorted({o.case.startup_s for o in outcomes}):
        lines += [
            f"### Worker start-up {startup:g} s",
            "",
            "| trace | policy | baseline | cost ratio (mean ± 95 %) | seeds met | settings chosen |",
            "|---|---|---|---:|---:|---|",
        ]
        for trace in sorted({o.case.trace.stem for o in outcomes}):
            group = by_key.get((startup, trace), [])
            if not group:
                continue
            names = list(group[0].policies)
            for policy in names:
                own = [o.policies[policy][0] / o.lower_bound for o in group if o.lower_bound > 0]
                bound = mean_interval(own).format() if own else "–"
                lines.append(f"| {trace} | {policy} | (its worker-hours / lower bound) | {bound} | – | – |")
                waits = mean_interval([o.policies[policy][1] for o in group]).format(digits=0)
                lines.append(
                    f"| {trace} | {policy} | (its p95 task wait, s: the level compared at) | {waits} | – | – |"
                )
                for name in POOL_BASELINES:
                    pairs = [o.found[(policy, name)] for o in group]
                    ratios = [r for r, _, _ in pairs if r is not None]
                    chosen = [s for _, s, _ in pairs if s is not None]
                    edge = " (nothing cheaper tried failed)" if any(e for _, _, e in pairs) else ""
                    cell = mean_interval(ratios).format() if ratios else "none"
                    lines.append(
                        f"| {trace} | {policy} | {name} | {cell} | {len(ratios)}/{len(group)} | "
                        f"{_settings(chosen)}{edge} |"
                    )
        lines.append("")
    lines.append(
        f"{seeds} seed(s) per cell; a ratio below 1 means the policy is cheaper than the baseline's cheapest "
        'setting at the same service level. "Nothing cheaper tried failed": in some seed every setting '
        "tried with less capacity than the chosen one still met the level (the search past the sweep "
        "reached the family's range end), so a cheaper one might too and the ratio flatters the policy."
    )
    return lines


def _startups(text: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in text.split(",") if v.strip())
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"need comma-separated seconds >= 0, not {text!r}")
    return values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds per trace (at least 1)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument(
        "--startup-seconds",
        type=_startups,
        default=DEFAULT_STARTUPS,
        help="comma-separated worker start-up times, s (default 60,180,300)",
    )
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES)
    parser.add_argument("--jobs", type=int, default=1, help="cases run in parallel processes (default 1)")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.jobs < 1:
        parser.error("--seeds and --jobs must be at least 1")

    traces = sorted(args.traces.glob("*.csv"), key=lambda p: p.stem)
    cases = [
        Case(trace, startup, args.first_seed + k, args.days, args.policy)
        for startup in args.startup_seconds
        for trace in traces
        for k in range(args.seeds)
    ]
    started = time.perf_counter()
    if args.jobs == 1:
        outcomes = [measure(c) for c in cases]
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            outcomes = list(pool.map(measure, cases))
    wall = time.perf_counter() - started
    print("\n".join(tables(outcomes, args.seeds)))
    runs = sum(o.runs for o in outcomes)
    slowest = max(outcomes, key=lambda o: o.wall_s)
    print()
    print(
        f"Mean task {MEAN_TASK_S:g} s; {args.days:g} day(s) or the trace; seeds {args.first_seed}.."
        f"{args.first_seed + args.seeds - 1}; {len(cases)} cases, {runs} simulated runs in {wall:.0f} s wall "
        f"({args.jobs} process(es)); slowest case {slowest.case.trace.stem} at {slowest.case.startup_s:g} s "
        f"start-up, seed {slowest.case.seed}: {slowest.wall_s:.1f} s."
    )


if __name__ == "__main__":
    main()
