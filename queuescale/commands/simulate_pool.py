"""``queuescale simulate`` for SparkWorkerPool policies: the pool model, its baselines, figures and plots.

:mod:`queuescale.commands.simulate` hands a SparkWorkerPool policy file here, with the same flags; the pool,
its load and the runs are :mod:`autoscaler.sim.pool_scenario`'s (``--startup-seconds`` replaces the policy's
``startupSeconds``, ``--mean-service`` the mean task time, ``--sweep`` adds the baselines' sweep).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from autoscaler.policy.models import ScalingPolicy
from autoscaler.sim.outputs import RESERVED_KEYS
from autoscaler.sim.pool_scenario import (
    DEFAULT_MEAN_TASK_SECONDS,
    load_pool_scenario,
    pool_config_for,
    run_pool_scenario,
    run_pool_sweep,
    sweep_json,
)
from autoscaler.sim.report import (
    COST_PNG,
    TIMESERIES_PNG,
    WAITS_PNG,
    plot_cost_vs_wait,
    plot_timeseries,
    plot_wait_distribution,
    summary_markdown,
)
from autoscaler.sim.run import Result, result_json
from autoscaler.sim.spark_baselines import POOL_BASELINES, lower_bound_worker_hours
from core.errors import ConfigError

__all__ = ["cmd_simulate_pool"]


def cmd_simulate_pool(args: argparse.Namespace, policies: Sequence[ScalingPolicy]) -> None:
    """The ``simulate`` command once the policy file turned out to hold SparkWorkerPool policies."""
    try:
        configs = [pool_config_for(p) for p in policies]
    except ConfigError as exc:
        raise ConfigError(f"{args.policy}: {exc}") from exc
    config = configs[0]
    if any(c != config for c in configs[1:]):
        raise ConfigError(f"{args.policy}: the policies describe different pools; simulate one at a time")
    clash = sorted({p.metadata.name for p in policies} & {*RESERVED_KEYS, *POOL_BASELINES})
    if clash:
        raise ConfigError(f"{args.policy}: a policy may not be named {', '.join(clash)} (a result.json key)")
    if args.startup_seconds is not None:
        config = replace(config, startup_seconds=args.startup_seconds)
    baselines = list(POOL_BASELINES) if args.baselines is None else args.baselines
    unknown = [b for b in baselines if b not in POOL_BASELINES]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {', '.join(unknown)}; pick from {', '.join(POOL_BASELINES)}")
    try:
        scenario = load_pool_scenario(
            args.trace,
            seed=args.seed,
            days=args.days,
            rate_scale=args.rate_scale,
            mean_rate=args.mean_rate,
            mean_task_seconds=DEFAULT_MEAN_TASK_SECONDS if args.mean_service is None else args.mean_service,
        )
    except (OSError, ValueError, IndexError) as exc:
        raise ConfigError(f"{args.trace}: cannot load the trace: {exc}") from exc
    progress = not args.no_progress and sys.stderr.isatty()
    results = run_pool_scenario(scenario, policies, baselines, config, progress=progress)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    plain: dict[str, Result] = dict(results)
    document: dict[str, Any] = dict(result_json(plain))
    lower = lower_bound_worker_hours(scenario.load, config)
    document["lower_bound_worker_hours"] = round(lower, 6)
    sweep = None
    if args.sweep:
        policy_results = {p.metadata.name: results[p.metadata.name] for p in policies}
        sweep = run_pool_sweep(scenario, policy_results, baselines, config)
        document.update(sweep_json(sweep))
        plot_cost_vs_wait(sweep, dict(policy_results), out / COST_PNG, lower_bound=lower)
    (out / "result.json").write_text(json.dumps(document, indent=2) + "\n")
    plot_timeseries(
        plain, out / TIMESERIES_PNG, slots_per_worker=config.slots_per_worker, slo_seconds=config.slo_seconds
    )
    plot_wait_distribution(plain, out / WAITS_PNG, slo_seconds=config.slo_seconds)
    load = scenario.load
    days = load.duration / 86400.0
    notes = (
        f"Load: {scenario.description}; {days:.3g} days, {load.app_count} applications, "
        f"{load.task_count} tasks.",
        f"Pool: {config.cores_per_worker} cores per worker, executors of {config.executor_cores} cores, "
        f"{config.startup_seconds:g} s worker start-up, {config.executor_startup_seconds:g} s executor "
        f"start-up, at most {config.max_workers} workers; Spark dynamic allocation with its defaults.",
        "Here a query is a Spark task: its queue wait runs from its stage's submission to its start "
        "(a killed task waits until its rerun starts), killed counts task attempts, and p95 latency is "
        "the applications' run time (arrival to the end of the last stage). The lower bound counts "
        "task-seconds over a worker's task slots.",
        "",
        f"![time series]({TIMESERIES_PNG})",
        f"![queue-wait distribution]({WAITS_PNG})",
        *((f"![cost against p95 wait]({COST_PNG})",) if sweep is not None else ()),
    )
    apps = [
        "## Applications",
        "",
        "| policy | finished | run time p50 s | run time p95 s |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {r.apps_completed}/{r.apps_arrived} | {r.app_runtime_p50_s:.0f} | "
            f"{r.app_runtime_p95_s:.0f} |"
            for name, r in results.items()
        ),
        "",
    ]
    title = f"Simulation of {', '.join(p.metadata.name for p in policies)} (Spark standalone pool)"
    summary = summary_markdown(
        plain,
        title=title,
        slo_seconds=config.slo_seconds,
        notes=notes,
        lower_bound=lower,
        iso_slo=None if sweep is None else sweep.iso_slo,
    )
    (out / "summary.md").write_text(summary + "\n" + "\n".join(apps))
    written = [out / "result.json", out / TIMESERIES_PNG, out / WAITS_PNG, out / "summary.md"]
    if sweep is not None:
        written.append(out / COST_PNG)
    print("wrote " + ", ".join(str(w) for w in written))
