"""``queuescale simulate``: run a ScalingPolicy and the baselines on a trace, write figures, plots and a summary.

The cluster comes from the policy (``startupSeconds``, the largest ``maxReplicas``, the SLO) and the command
line (the model, cores, memory, resource groups, graceful-shutdown timings); the comparison itself is
:mod:`autoscaler.sim.scenario`. A trace is a ``ts,value`` load shape (scaled to arrivals per second by
``--rate-scale`` or to a mean rate by ``--mean-rate``) or a CSV of individual arrivals with their work, told
apart by the header. ``--sweep`` runs every baseline over its setting and adds each one's cheapest setting at
the policy's service level (``iso_slo``) and a cost-against-wait plot. SparkWorkerPool policies are
simulated by :mod:`queuescale.commands.simulate_pool`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from autoscaler.policy.loading import load_policies
from autoscaler.sim.baselines import BASELINES, lower_bound_worker_hours
from autoscaler.sim.load import ServiceSpec, parse_service, query_memory
from autoscaler.sim.outputs import RESERVED_KEYS, describe_config
from autoscaler.sim.report import (
    COST_PNG,
    TIMESERIES_PNG,
    WAITS_PNG,
    plot_cost_vs_wait,
    plot_timeseries,
    plot_wait_distribution,
    summary_markdown,
)
from autoscaler.sim.run import result_json
from autoscaler.sim.scenario import (
    DEFAULT_MEAN_RATE,
    DEFAULT_SERVICE,
    AnyConfig,
    Runs,
    cluster_config_for,
    default_jobs,
    load_scenario,
    run_scenario,
    run_sweep,
    sweep_keys,
    work_config_for,
)
from autoscaler.sim.spark_baselines import POOL_BASELINES
from autoscaler.sim.spark_load import DEFAULT_APP_RATE
from autoscaler.sim.trino import ClusterConfig
from core.errors import ConfigError
from queuescale.commands.simulate_pool import cmd_simulate_pool

__all__ = ["add_simulate_parser"]


def _baseline_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = {*BASELINES, *POOL_BASELINES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown baseline(s) {', '.join(unknown)}; pick from {', '.join(BASELINES)} "
            f"(Spark pools: {', '.join(POOL_BASELINES)})"
        )
    return names


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def _service(text: str) -> ServiceSpec:
    try:
        return parse_service(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _jobs(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def add_simulate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "simulate",
        help="replay a trace against a ScalingPolicy and the baselines (fast-forward Trino simulator)",
        description="Run the policy and the baselines on one load; write DIR/result.json, "
        f"DIR/{TIMESERIES_PNG}, DIR/{WAITS_PNG}, DIR/summary.md (and DIR/{COST_PNG} with --sweep).",
    )
    parser.add_argument(
        "--policy", required=True, type=Path, help="ScalingPolicy YAML (TrinoWorkers or SparkWorkerPool)"
    )
    parser.add_argument(
        "--trace",
        required=True,
        type=Path,
        help="ts,value load-shape CSV, arrival_ts,service_seconds CSV "
        "or (Spark pools) app,arrival_ts,tasks,task_seconds CSV",
    )
    parser.add_argument(
        "--baselines",
        type=_baseline_list,
        default=None,
        help=f"comma-separated, from {','.join(BASELINES)} (Spark pools: {','.join(POOL_BASELINES)}) "
        "(default all; '' for none)",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="run every baseline over its setting; result.json gains sweep and iso_slo (each baseline's "
        "cheapest setting at the policy's service level, and cost_ratio)",
    )
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--rate-scale", type=_positive, help="arrivals/s per unit of the shape's value")
    scale.add_argument(
        "--mean-rate",
        type=_positive,
        help=f"scale the shape to this mean arrivals/s (default {DEFAULT_MEAN_RATE}; "
        f"Spark pools: applications/s, default {DEFAULT_APP_RATE})",
    )
    work = parser.add_mutually_exclusive_group()
    work.add_argument(
        "--service",
        type=_service,
        help="Trino: work of a query for shapes, lognormal:MEDIAN,SIGMA or exp:MEAN, CPU-seconds "
        f"(slot-seconds with --model slots) (default {DEFAULT_SERVICE})",
    )
    work.add_argument(
        "--mean-service",
        type=_positive,
        help="the same as --service exp:MEAN (Spark pools: the mean task time, s)",
    )
    parser.add_argument(
        "--burst",
        type=_positive,
        default=1.0,
        help="queries per arrival instant on average (default 1: Poisson; more: bursty at the same mean)",
    )
    parser.add_argument(
        "--model",
        choices=("work", "slots"),
        default="work",
        help="Trino cluster model: work (CPU-seconds shared by the active cores; default) or slots",
    )
    parser.add_argument(
        "--startup-seconds",
        type=_non_negative,
        help="worker start-up, s (default the policy's startupSeconds)",
    )
    parser.add_argument(
        "--cores-per-worker",
        type=_positive,
        help="Trino: cores of a worker (default 8; slots model: one core per slot)",
    )
    parser.add_argument(
        "--query-parallelism",
        type=_positive,
        help="work model: share of each worker's cores one query keeps busy, (0, 1] (default 0.25)",
    )
    parser.add_argument(
        "--worker-memory-gb",
        type=_positive,
        help="Trino: query memory of a worker, GB (default 64; slots model: unlimited)",
    )
    parser.add_argument(
        "--query-memory-gb",
        type=_positive,
        help="Trino: mean memory of a query, GB, growing with its work (default: none reserved)",
    )
    parser.add_argument(
        "--hard-concurrency-limit",
        type=int,
        help="the resource group's hardConcurrencyLimit (default none)",
    )
    parser.add_argument(
        "--soft-memory-limit",
        help="the resource group's softMemoryLimit, e.g. 80%% or 512GB (default none)",
    )
    parser.add_argument(
        "--grace-seconds",
        type=_non_negative,
        help="Trino's shutdown.grace-period, s (default 120, the chart's gracePeriodSeconds)",
    )
    parser.add_argument(
        "--termination-grace-seconds",
        type=_non_negative,
        help="the worker pods' terminationGracePeriodSeconds (default 300; at least 2x grace)",
    )
    parser.add_argument("--days", type=_positive, help="simulate this many days (default the whole trace)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the arrivals and the work")
    parser.add_argument("--out", required=True, type=Path, help="output directory (created)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument(
        "--jobs",
        type=_jobs,
        default=None,
        help="runs side by side in worker processes (default: the CPUs available, "
        f"{default_jobs()} here; 1: one after another in this process); the results do not depend on it",
    )
    parser.set_defaults(func=cmd_simulate)


def _config(args: argparse.Namespace, policies: list[Any]) -> AnyConfig:
    try:
        if args.model == "slots":
            configs: list[AnyConfig] = [cluster_config_for(p) for p in policies]
        else:
            configs = [work_config_for(p) for p in policies]
    except ConfigError as exc:
        raise ConfigError(f"{args.policy}: {exc}") from exc
    config = configs[0]
    if any(c != config for c in configs[1:]):
        raise ConfigError(f"{args.policy}: the policies describe different clusters; simulate one at a time")
    groups: dict[str, Any] = {}
    if args.hard_concurrency_limit is not None:
        groups["group_limits"] = (args.hard_concurrency_limit,)
    if args.soft_memory_limit is not None:
        groups["group_memory_limits"] = (args.soft_memory_limit,)
    if args.startup_seconds is not None:
        groups["startup_seconds"] = args.startup_seconds
    try:
        if isinstance(config, ClusterConfig):
            # The chart's grace period and a 300 s termination grace, as in the work model.
            return replace(
                config,
                cores_per_worker=args.cores_per_worker,
                memory_per_worker_gb=args.worker_memory_gb or math.inf,
                grace_seconds=120.0 if args.grace_seconds is None else args.grace_seconds,
                termination_grace_seconds=(
                    300.0 if args.termination_grace_seconds is None else args.termination_grace_seconds
                ),
                **groups,
            )
        work = {
            "cores_per_worker": args.cores_per_worker,
            "memory_per_worker_gb": args.worker_memory_gb,
            "query_parallelism": args.query_parallelism,
            "grace_seconds": args.grace_seconds,
            "termination_grace_seconds": args.termination_grace_seconds,
        }
        return replace(config, **{k: v for k, v in work.items() if v is not None}, **groups)
    except ValueError as exc:
        raise ConfigError(f"the simulated cluster: {exc}") from exc


def cmd_simulate(args: argparse.Namespace) -> None:
    policies = [p for p, _ in load_policies(args.policy)]
    if any(p.spec.target.kind == "SparkWorkerPool" for p in policies):
        cmd_simulate_pool(args, policies)
        return
    clash = sorted({p.metadata.name for p in policies} & {*RESERVED_KEYS, *BASELINES})
    if clash:
        raise ConfigError(f"{args.policy}: a policy may not be named {', '.join(clash)} (a result.json key)")
    config = _config(args, policies)
    baselines = list(BASELINES) if args.baselines is None else args.baselines
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {', '.join(unknown)}; pick from {', '.join(BASELINES)}")
    service = (
        ServiceSpec("exponential", args.mean_service)
        if args.mean_service is not None
        else (args.service or parse_service(DEFAULT_SERVICE))
    )
    try:
        scenario = load_scenario(
            args.trace,
            seed=args.seed,
            days=args.days,
            rate_scale=args.rate_scale,
            mean_rate=args.mean_rate,
            service=service,
            burst=args.burst,
        )
    except (OSError, ValueError, IndexError) as exc:
        raise ConfigError(f"{args.trace}: cannot load the trace: {exc}") from exc
    if args.query_memory_gb is not None:
        memory = query_memory(scenario.load.service, mean_gb=args.query_memory_gb, seed=args.seed)
        if math.isfinite(config.memory_per_worker_gb):
            memory = np.minimum(memory, config.memory_per_worker_gb)
        scenario = replace(scenario, load=scenario.load.with_memory(memory))
    progress = not args.no_progress and sys.stderr.isatty()
    jobs = default_jobs() if args.jobs is None else args.jobs
    with Runs(scenario, policies, config, seed=args.seed, jobs=jobs) as runs:
        try:
            results = run_scenario(
                scenario,
                policies,
                baselines,
                config,
                seed=args.seed,
                progress=progress,
                runs=runs,
                then=sweep_keys(scenario, baselines, config) if args.sweep else (),
            )
        except ValueError as exc:
            raise ConfigError(f"the simulation cannot run: {exc}") from exc
        sweep = None
        if args.sweep:
            policy_results = {p.metadata.name: results[p.metadata.name] for p in policies}
            sweep = run_sweep(scenario, policy_results, baselines, config, seed=args.seed, runs=runs)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = dict(result_json(results))
    lower = lower_bound_worker_hours(scenario.load, config)
    document["lower_bound_worker_hours"] = round(lower, 6)
    if sweep is not None:
        document["sweep"] = {
            name: [{"setting": pt.setting, **result_json({name: pt.result})[name]} for pt in pts]
            for name, pts in sweep.points.items()
        }
        document["iso_slo"] = {
            policy: {name: iso.as_json() for name, iso in found.items()}
            for policy, found in sweep.iso_slo.items()
        }
        plot_cost_vs_wait(sweep, policy_results, out / COST_PNG, lower_bound=lower)
    (out / "result.json").write_text(json.dumps(document, indent=2) + "\n")
    plot_timeseries(results, out / TIMESERIES_PNG, slo_seconds=config.slo_seconds)
    plot_wait_distribution(results, out / WAITS_PNG, slo_seconds=config.slo_seconds)
    days = scenario.load.duration / 86400.0
    notes = (
        f"Load: {scenario.description}; {days:.3g} days, {len(scenario.load.arrivals)} queries.",
        f"Cluster: {describe_config(config)}.",
        "",
        f"![time series]({TIMESERIES_PNG})",
        f"![queue-wait distribution]({WAITS_PNG})",
        *((f"![cost against p95 wait]({COST_PNG})",) if sweep is not None else ()),
    )
    title = f"Simulation of {', '.join(p.metadata.name for p in policies)}"
    (out / "summary.md").write_text(
        summary_markdown(
            results,
            title=title,
            slo_seconds=config.slo_seconds,
            notes=notes,
            lower_bound=lower,
            iso_slo=None if sweep is None else sweep.iso_slo,
        )
    )
    written = [out / "result.json", out / TIMESERIES_PNG, out / WAITS_PNG, out / "summary.md"]
    if sweep is not None:
        written.append(out / COST_PNG)
    print("wrote " + ", ".join(str(w) for w in written))
