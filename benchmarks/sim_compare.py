"""queuescale's Trino policies against every baseline's best setting at the same service level.

    python -m benchmarks.sim_compare [--days 7] [--seeds 5] [--startup 60,180,300] [--jobs 2]
        [--policy benchmarks/policies/trino-workers-work.yaml] [--traces DIR] [--service lognormal:20,1.5]

For every trace, worker start-up time and seed: the trace's shape is scaled so its 99th-percentile minute
brings :data:`PEAK_RATE` queries a second; query work is heavy-tailed (``--service``); the cluster is the
work model (:mod:`autoscaler.sim.trino_work`) with :data:`CLUSTER`'s settings; every baseline runs its sweep
with the chart's graceful shutdown, and :func:`autoscaler.sim.iso_slo.cheapest_meeting` finds its cheapest
setting whose p95 wait, SLO misses and p95 latency are no worse than the policy's. The tables give, per
trace and start-up, each policy's figures (mean over seeds) and, per baseline, the cost ratio (policy
worker-hours / that setting's; below 1 the policy is cheaper) as a mean with a 95 % t-interval over the
seeds where some setting reached the policy's level ("reached" counts them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from autoscaler.policy.loading import load_policies
from autoscaler.sim.baselines import baseline as baseline_family
from autoscaler.sim.baselines import lower_bound_worker_hours
from autoscaler.sim.load import parse_service, read_shape_csv
from autoscaler.sim.run import Result
from autoscaler.sim.scenario import load_scenario, run_scenario, run_sweep, work_config_for
from autoscaler.sim.stats import mean_interval

ROOT = Path(__file__).resolve().parent.parent
#: The policy the benchmark judges: sized on work (``queueWait.sizing: Work``). The slot-sized policies of
#: ``trino-workers.yaml`` can still be passed with ``--policy``.
DEFAULT_POLICY = ROOT / "benchmarks" / "policies" / "trino-workers-work.yaml"
DEFAULT_TRACES = Path("/work/shared/data/traces")
DEFAULT_SERVICE = "lognormal:20,1.5"
#: Queries per second in the busiest minutes (the shape's 99th percentile): about 60 busy cores at the
#: default work, 8 workers of 8 cores at full use.
PEAK_RATE = 1.0
#: The simulated cluster: 8-core workers, one query keeps at most a tenth of each worker's cores busy (ten
#: queries fill the cluster), one resource group that lets 20 run (twice what fills the cores) and queues
#: the rest, the chart's 120 s grace period and a 300 s termination grace period.
CLUSTER: dict[str, Any] = {
    "cores_per_worker": 8.0,
    "query_parallelism": 0.1,
    "memory_per_worker_gb": 64.0,
    "group_limits": (20,),
    "grace_seconds": 120.0,
    "termination_grace_seconds": 300.0,
}
#: The benchmark's sweep: coarser than ``queuescale simulate --sweep``'s, each gap bisected twice around the
#: cheapest setting that reaches the policy's level. ``keda`` (the example ScaledObject) is left out: with
#: ``minReplicaCount`` 1 it is the example HPA (same triggers; the example's scale-up is the HPA default), so
#: its runs are hpa-queue's.
BASELINES_RUN = ("hpa-cpu", "hpa-queue", "keda-chart", "static")
GRID: dict[str, tuple[float, ...]] = {"hpa-cpu": (40.0, 60.0, 80.0), "hpa-queue": (1.0, 2.0, 4.0, 8.0)}
STATIC_POINTS = 5


@dataclass(frozen=True)
class Case:
    trace: Path
    startup: float
    seed: int
    days: float
    policy: tuple[Path, ...]
    service: str
    only: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    case: Case
    lower: float
    policies: dict[str, dict[str, float]]
    iso: dict[str, dict[str, dict[str, Any]]]
    queries: int
    seconds: float


def _figures(r: Result) -> dict[str, float]:
    return {
        "worker_hours": r.worker_hours,
        "p95_wait": r.queue_wait_p95_s,
        "p95_latency": r.latency_p95_s,
        "slo_misses": float(r.slo_misses),
        "failed": float(r.killed),
    }


def rate_scale(trace: Path) -> float:
    _, values = read_shape_csv(trace)
    return PEAK_RATE / float(np.percentile(values, 99))


def run_case(case: Case) -> Outcome:
    started = time.perf_counter()
    policies = [
        p
        for path in case.policy
        for p, _ in load_policies(path)
        if not case.only or p.metadata.name in case.only
    ]
    config = replace(work_config_for(policies[0]), startup_seconds=case.startup, **CLUSTER)
    scenario = load_scenario(
        case.trace,
        seed=case.seed,
        days=case.days,
        rate_scale=rate_scale(case.trace),
        mean_rate=None,
        service=parse_service(case.service),
    )
    results = run_scenario(scenario, policies, (), config, seed=case.seed)
    static = baseline_family("static", scenario.load, config).sweep
    keep = np.unique(np.round(np.linspace(0, len(static) - 1, STATIC_POINTS)).astype(int))
    grid = {**GRID, "static": tuple(static[i] for i in keep)}
    sweep = run_sweep(scenario, results, BASELINES_RUN, config, seed=case.seed, refine=2, settings=grid)
    return Outcome(
        case,
        lower_bound_worker_hours(scenario.load, config),
        {name: _figures(r) for name, r in results.items()},
        {p: {b: iso.as_json() for b, iso in found.items()} for p, found in sweep.iso_slo.items()},
        scenario.load.count,
        time.perf_counter() - started,
    )


def _key(case: Case) -> tuple[str, float, int, float, tuple[str, ...], str, tuple[str, ...]]:
    return (
        case.trace.stem,
        case.startup,
        case.seed,
        case.days,
        tuple(p.name for p in case.policy),
        case.service,
        case.only,
    )


def _record(o: Outcome) -> dict[str, Any]:
    case = {**asdict(o.case), "trace": str(o.case.trace), "policy": [str(p) for p in o.case.policy]}
    return {
        "case": case,
        "lower": o.lower,
        "policies": o.policies,
        "iso": o.iso,
        "queries": o.queries,
        "seconds": o.seconds,
    }


def _outcome(doc: dict[str, Any]) -> Outcome:
    case = doc["case"]
    return Outcome(
        Case(
            Path(case["trace"]),
            case["startup"],
            case["seed"],
            case["days"],
            tuple(Path(p) for p in case["policy"]),
            case["service"],
            tuple(case.get("only") or ()),
        ),
        doc["lower"],
        doc["policies"],
        doc["iso"],
        doc["queries"],
        doc["seconds"],
    )


def _fmt(values: Sequence[float], digits: int = 2) -> str:
    return mean_interval(values).format(digits)


def _ratio_cell(found: list[dict[str, Any]]) -> str:
    reached = [f["cost_ratio"] for f in found if f["cost_ratio"] is not None]
    if not reached:
        return "none"
    cell = _fmt(reached)
    return cell if len(reached) == len(found) else f"{cell} ({len(reached)}/{len(found)})"


def summary(outcomes: list[Outcome]) -> None:
    """One row per trace, start-up and policy: its figures and its cost ratio against each baseline."""
    groups: dict[tuple[str, float], list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault((o.case.trace.stem, o.case.startup), []).append(o)
    baselines = list(next(iter(next(iter(outcomes)).iso.values())))
    print(
        "| trace | start-up s | policy | seeds | worker-hours | ÷ lower bound | p95 wait s | p95 latency s "
        "| SLO misses | failed | " + " | ".join(f"vs {b}" for b in baselines) + " |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(baselines))
    for (trace, startup), group in sorted(groups.items()):
        for name in group[0].policies:
            rows = [o.policies[name] for o in group]
            ratios = " | ".join(_ratio_cell([o.iso[name][b] for o in group]) for b in baselines)
            print(
                f"| {trace} | {startup:g} | {name} | {len(group)} | "
                f"{_fmt([r['worker_hours'] for r in rows], 0)} | "
                f"{_fmt([o.policies[name]['worker_hours'] / o.lower for o in group])} | "
                f"{_fmt([r['p95_wait'] for r in rows], 1)} | {_fmt([r['p95_latency'] for r in rows], 0)} | "
                f"{_fmt([r['slo_misses'] for r in rows], 0)} | {_fmt([r['failed'] for r in rows], 0)} | {ratios} |"
            )


def report(outcomes: list[Outcome]) -> None:
    groups: dict[tuple[str, float], list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault((o.case.trace.stem, o.case.startup), []).append(o)
    print("### The policies (mean over seeds, ± 95 % interval)\n")
    print(
        "| trace | start-up s | policy | worker-hours | vs lower bound | p95 wait s | p95 latency s "
        "| SLO misses | failed |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for (trace, startup), group in sorted(groups.items()):
        for name in group[0].policies:
            rows = [o.policies[name] for o in group]

            def col(key: str, rows: list[dict[str, float]] = rows) -> list[float]:
                return [r[key] for r in rows]

            ratio = [o.policies[name]["worker_hours"] / o.lower for o in group]
            print(
                f"| {trace} | {startup:g} | {name} | {_fmt(col('worker_hours'), 1)} | "
                f"{_fmt(ratio)} | {_fmt(col('p95_wait'), 1)} | "
                f"{_fmt(col('p95_latency'), 1)} | {_fmt(col('slo_misses'), 0)} | "
                f"{_fmt(col('failed'), 0)} |"
            )
    print("\n### Cost ratio against each baseline's cheapest setting at the policy's service level\n")
    print("Policy worker-hours / the baseline's; below 1 the policy is cheaper. Mean ± 95 % interval over ")
    print("the seeds where a setting reached the policy's level.\n")
    print("| trace | start-up s | policy | baseline | cost ratio | reached | settings chosen | failed |")
    print("|---|---:|---|---|---:|---:|---|---:|")
    for (trace, startup), group in sorted(groups.items()):
        for name in group[0].iso:
            for baseline in group[0].iso[name]:
                found = [o.iso[name][baseline] for o in group]
                reached = [f for f in found if f["cost_ratio"] is not None]
                if reached:
                    ratio = _fmt([f["cost_ratio"] for f in reached])
                    chosen = ", ".join(f"{f['setting']:g}" for f in reached)
                    failed = _fmt([float(f["killed"]) for f in reached], 0)
                else:
                    ratio, chosen, failed = "none reaches it", "–", "–"
                print(
                    f"| {trace} | {startup:g} | {name} | {baseline} | {ratio} | {len(reached)}/{len(found)} | "
                    f"{chosen} | {failed} |"
                )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--startup", default="60,180,300", help="worker start-up seconds, comma-separated")
    parser.add_argument(
        "--policy",
        type=Path,
        action="append",
        help=f"policy file (repeatable; default {DEFAULT_POLICY.relative_to(ROOT)})",
    )
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES)
    parser.add_argument("--trace", action="append", help="only these trace names (repeatable)")
    parser.add_argument("--service", default=DEFAULT_SERVICE)
    parser.add_argument("--jobs", type=int, default=2, help="cases run in parallel processes")
    parser.add_argument(
        "--only-policy", action="append", help="compare only these policies of the file (repeatable)"
    )
    parser.add_argument("--save", type=Path, help="append each finished case to this JSON-lines file")
    parser.add_argument("--load", type=Path, help="report the cases of a --save file instead of running")
    args = parser.parse_args(argv)
    if args.load is not None:
        outcomes = [_outcome(json.loads(line)) for line in args.load.read_text().splitlines() if line]
        summary(outcomes)
        print()
        report(outcomes)
        return
    traces = sorted(args.traces.glob("*.csv"), key=lambda p: p.stem)
    if args.trace:
        traces = [t for t in traces if t.stem in args.trace]
    startups = [float(s) for s in args.startup.split(",")]
    policy_files = tuple(args.policy or (DEFAULT_POLICY,))
    # Seed by seed, so a run stopped early still covers every trace and start-up.
    cases = [
        Case(t, s, seed, args.days, policy_files, args.service, tuple(args.only_policy or ()))
        for seed in range(1, args.seeds + 1)
        for t in traces
        for s in startups
    ]
    # A --save file that already holds some cases resumes the run: those are read back, not run again.
    outcomes: list[Outcome] = []
    if args.save is not None and args.save.exists():
        outcomes = [_outcome(json.loads(line)) for line in args.save.read_text().splitlines() if line]
        done = {_key(o.case) for o in outcomes}
        cases = [c for c in cases if _key(c) not in done]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for outcome in pool.map(run_case, cases):
            outcomes.append(outcome)
            if args.save is not None:
                with args.save.open("a") as handle:
                    handle.write(json.dumps(_record(outcome)) + "\n")
    cluster = ", ".join(f"{k} {v}" for k, v in CLUSTER.items())
    print(
        f"{len(cases)} cases: {len(traces)} traces x start-up {args.startup} s x {args.seeds} seeds, "
        f"{args.days:g} days each; work {args.service} CPU-s; peak {PEAK_RATE:g} queries/s; {cluster}.\n"
    )
    summary(outcomes)
    print()
    report(outcomes)
    total = time.perf_counter() - started
    per_case = statistics.fmean(o.seconds for o in outcomes)
    queries = statistics.fmean(o.queries for o in outcomes)
    print(
        f"\n{total:.0f} s wall for {len(cases)} cases ({per_case:.0f} s per case, {queries:.0f} queries each)."
    )


if __name__ == "__main__":
    main()
