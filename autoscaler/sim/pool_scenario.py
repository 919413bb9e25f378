"""The Spark standalone pool scenario of ``queuescale simulate``: the pool a SparkWorkerPool policy
describes, its load from a trace, the policy and the pool baselines run on it, and the baselines' sweep.

The pool comes from the policy: ``coresPerWorker``, ``executorCores``, ``startupSeconds``, the largest
``maxReplicas`` (policy or schedule); applications use Spark's dynamic-allocation defaults and the SLO is
:data:`DEFAULT_SLO_SECONDS` of task wait. A trace is a ``ts,value`` load shape (scaled to applications per
second by a rate scale, or to a mean rate, default :data:`DEFAULT_POOL_MEAN_RATE`; task durations average
:data:`DEFAULT_MEAN_TASK_SECONDS` unless given) or a CSV of applications ``app,arrival_ts,tasks,task_seconds``
(one row per stage), told apart by the header. The sweep runs every baseline over its setting and finds each
one's cheapest setting at the policy's service level (``iso_slo``, :mod:`autoscaler.sim.iso_slo`; a pool's
p95 latency is its applications' run time), as for Trino.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from autoscaler.policy.models import ScalingPolicy
from autoscaler.sim.baselines import Family
from autoscaler.sim.iso_slo import IsoSlo, Point, cheapest_meeting
from autoscaler.sim.load import read_shape_span
from autoscaler.sim.run import Result, result_json
from autoscaler.sim.scenario import Progress, Watched
from autoscaler.sim.spark import PoolConfig, PoolPolicy, PoolScaleDown, PoolView
from autoscaler.sim.spark_baselines import (
    make_pool_baseline,
    pool_baseline,
)
from autoscaler.sim.spark_engine_policy import SparkQueuescalePolicy
from autoscaler.sim.spark_load import DEFAULT_APP_RATE, AppShape, SparkLoad, from_apps_csv, from_shape
from autoscaler.sim.spark_run import SparkResult, simulate_pool
from core.errors import ConfigError

__all__ = [
    "DEFAULT_MEAN_TASK_SECONDS",
    "DEFAULT_POOL_MEAN_RATE",
    "DEFAULT_SLO_SECONDS",
    "PoolScenario",
    "PoolSweep",
    "is_apps_csv",
    "load_pool_scenario",
    "pool_config_for",
    "run_pool_scenario",
    "run_pool_sweep",
    "sweep_json",
]

DEFAULT_POOL_MEAN_RATE = DEFAULT_APP_RATE
DEFAULT_SLO_SECONDS = 60.0
STEP_SECONDS = 5.0


def pool_config_for(policy: ScalingPolicy) -> PoolConfig:
    """The simulated standalone pool a SparkWorkerPool policy describes."""
    spec = policy.spec
    spark = spec.target.spark
    if spec.target.kind != "SparkWorkerPool" or spark is None or spark.cores_per_worker is None:
        raise ConfigError(f"policy {policy.metadata.name}: not a SparkWorkerPool policy")
    ceilings = [spec.max_replicas, *(s.max_replicas for s in spec.schedules if s.max_replicas is not None)]
    return PoolConfig(
        cores_per_worker=spark.cores_per_worker,
        executor_cores=spark.executor_cores,
        startup_seconds=float(spec.target.startup_seconds),
        max_workers=max(ceilings),
        slo_seconds=DEFAULT_SLO_SECONDS,
    )


def is_apps_csv(path: Path) -> bool:
    """True for an applications CSV (its header names ``tasks``), False for a ``ts,value`` shape."""
    with path.open(newline="") as handle:
        header = handle.readline().strip().lower()
    fields = [f.strip() for f in header.split(",")]
    return fields[:2] != ["ts", "value"] and "tasks" in fields


#: The mean task time of a shape's applications without ``--mean-service``, s.
DEFAULT_MEAN_TASK_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class PoolScenario:
    """A pool load and the epoch second its simulated time 0 stands for."""

    load: SparkLoad
    epoch_start: float
    description: str


def load_pool_scenario(
    trace: Path,
    *,
    seed: int,
    days: float | None,
    rate_scale: float | None,
    mean_rate: float | None,
    mean_task_seconds: float,
) -> PoolScenario:
    duration = None if days is None else days * 86400.0
    if is_apps_csv(trace):
        load = from_apps_csv(trace, duration=duration)
        return PoolScenario(load, 0.0, f"{trace.name}: {load.app_count} applications from the CSV")
    ts, values, duration = read_shape_span(trace, days)
    if rate_scale is None and mean_rate is None:
        mean_rate = DEFAULT_POOL_MEAN_RATE
    shape = AppShape(mean_task_seconds=mean_task_seconds)
    load = from_shape(
        ts, values, seed=seed, mean_rate=mean_rate, rate_scale=rate_scale, duration=duration, shape=shape
    )
    scale = f"rate scale {rate_scale:g}" if rate_scale is not None else f"mean rate {mean_rate:g} apps/s"
    return PoolScenario(
        load,
        float(ts[0]),
        f"{trace.name}: shape scaled to {scale}, ~{shape.mean_stages:g} stages of ~{shape.mean_tasks():.0f} "
        f"tasks, mean task {mean_task_seconds:g} s, seed {seed}",
    )


def run_pool_scenario(
    scenario: PoolScenario,
    policies: Sequence[ScalingPolicy],
    baselines: Sequence[str],
    config: PoolConfig,
    *,
    progress: bool = False,
    stream: TextIO | None = None,
) -> dict[str, SparkResult]:
    """Every baseline and every policy on the same load; keyed by policy name, baselines first."""
    runs: list[tuple[str, PoolPolicy]] = [
        (b, make_pool_baseline(b, scenario.load, config)) for b in baselines
    ]
    for p in policies:
        engine = SparkQueuescalePolicy(p, config, epoch_start=scenario.epoch_start)
        runs.append((engine.name, engine))
    duration = scenario.load.duration
    bar = Progress(stream or sys.stderr, progress, duration * len(runs))
    results: dict[str, SparkResult] = {}
    for index, (name, policy) in enumerate(runs):
        if name in results:
            raise ConfigError(f"two policies are named {name!r}")
        watched: Watched[PoolView, PoolScaleDown] = Watched(policy, bar, name, index * duration)
        results[name] = simulate_pool(scenario.load, watched, config, step_seconds=STEP_SECONDS)
    bar.show("done", duration * len(runs))
    bar.end()
    return results


@dataclass(frozen=True, slots=True)
class PoolSweep:
    """Each pool baseline over its settings (sorted, refinement runs included) and, for each policy, each
    baseline's cheapest setting at that policy's service level."""

    families: dict[str, Family[PoolPolicy]]
    points: dict[str, list[Point]]
    iso_slo: dict[str, dict[str, IsoSlo]]


def run_pool_sweep(
    scenario: PoolScenario,
    policy_results: dict[str, SparkResult],
    baselines: Sequence[str],
    config: PoolConfig,
    *,
    refine: int = 3,
) -> PoolSweep:
    """Run every pool baseline over its sweep, then find its cheapest setting at each policy's level."""
    load = scenario.load
    families = {b: pool_baseline(b, load, config) for b in baselines}

    def run(family: Family[PoolPolicy], setting: float) -> Result:
        return simulate_pool(load, family.make(setting), config, step_seconds=STEP_SECONDS)

    points: dict[str, list[Point]] = {
        name: [Point(s, run(family, s)) for s in family.sweep] for name, family in families.items()
    }
    iso: dict[str, dict[str, IsoSlo]] = {}
    for policy_name, reference in policy_results.items():
        iso[policy_name] = {}
        for name, family in families.items():

            def again(setting: float, family: Family[PoolPolicy] = family) -> Result:
                return run(family, setting)

            found, extra = cheapest_meeting(family, points[name], reference, again, refine=refine)
            points[name].extend(extra)
            iso[policy_name][name] = found
    for name in points:
        # Each policy's search may have run a setting another's already had; keep one point per setting.
        seen: dict[float, Point] = {}
        for p in points[name]:
            seen.setdefault(p.setting, p)
        points[name] = sorted(seen.values(), key=lambda p: p.setting)
    return PoolSweep(families, points, iso)


def sweep_json(sweep: PoolSweep) -> dict[str, Any]:
    """The ``sweep`` and ``iso_slo`` keys of ``result.json``, shaped as the Trino command writes them."""
    return {
        "sweep": {
            name: [{"setting": pt.setting, **result_json({name: pt.result})[name]} for pt in pts]
            for name, pts in sweep.points.items()
        },
        "iso_slo": {
            policy: {name: iso.as_json() for name, iso in found.items()}
            for policy, found in sweep.iso_slo.items()
        },
    }
