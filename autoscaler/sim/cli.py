"""``queuescale simulate``: run a ScalingPolicy and the baselines on a trace, write figures, plots and a summary.

The cluster comes from the policy: ``slotsPerWorker``, ``startupSeconds``, the largest ``maxReplicas``
(policy or schedule) and the SLO (a QueueWait metric's ``sloSeconds``, else the simulator's default).
A trace is a ``ts,value`` load shape (scaled to arrivals per second by ``--rate-scale`` or to a mean rate
by ``--mean-rate``, default :data:`DEFAULT_MEAN_RATE`) or a CSV of individual arrivals with service times,
told apart by the header. SparkWorkerPool policies are simulated by :mod:`autoscaler.sim.spark_cli`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, Protocol, TextIO, TypeVar

import numpy as np

from adapter.errors import ConfigError
from autoscaler.policy import load_policies
from autoscaler.policy_models import ScalingPolicy
from autoscaler.sim.baselines import BASELINES, make_baseline
from autoscaler.sim.engine_policy import QueuescalePolicy
from autoscaler.sim.load import Load, from_arrivals_csv, from_trace_csv, query_memory, read_shape_csv
from autoscaler.sim.report import plot_timeseries, plot_wait_distribution, summary_markdown
from autoscaler.sim.run import Result, result_json, simulate
from autoscaler.sim.spark_load import DEFAULT_APP_RATE
from autoscaler.sim.trino import ClusterConfig, ClusterView, Policy, ScaleDownMode

__all__ = [
    "DEFAULT_MEAN_RATE",
    "DEFAULT_MEAN_SERVICE",
    "Progress",
    "Scenario",
    "Watched",
    "add_simulate_parser",
    "cluster_config_for",
    "run_scenario",
]

DEFAULT_MEAN_RATE = 0.5
DEFAULT_MEAN_SERVICE = 20.0
DEFAULT_SLO_SECONDS = 60.0
STEP_SECONDS = 5.0
TIMESERIES_PNG = "timeseries.png"
WAITS_PNG = "queue_wait_tail.png"


def cluster_config_for(policy: ScalingPolicy) -> ClusterConfig:
    """The simulated Trino cluster a TrinoWorkers policy describes."""
    spec = policy.spec
    if spec.target.kind != "TrinoWorkers" or spec.target.trino is None:
        raise ConfigError(
            f"policy {policy.metadata.name}: the simulator models Trino workers and Spark worker pools, "
            f"not {spec.target.kind}"
        )
    slo = next(
        (m.queue_wait.slo_seconds for m in spec.metrics if m.queue_wait and m.queue_wait.slo_seconds),
        DEFAULT_SLO_SECONDS,
    )
    ceilings = [spec.max_replicas, *(s.max_replicas for s in spec.schedules if s.max_replicas is not None)]
    return ClusterConfig(
        slots_per_worker=spec.target.trino.slots_per_worker,
        startup_seconds=float(spec.target.startup_seconds),
        max_workers=max(ceilings),
        slo_seconds=float(slo),
    )


def is_arrivals_csv(path: Path) -> bool:
    """True for an arrivals CSV (header names arrivals/service), False for a ``ts,value`` shape."""
    with path.open(newline="") as handle:
        header = handle.readline().strip().lower()
    fields = [f.strip() for f in header.split(",")]
    if fields[:2] == ["ts", "value"]:
        return False
    return any("arrival" in f or "service" in f for f in fields)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A load and the epoch second its simulated time 0 stands for."""

    load: Load
    epoch_start: float
    description: str


def load_scenario(
    trace: Path,
    *,
    seed: int,
    days: float | None,
    rate_scale: float | None,
    mean_rate: float | None,
    mean_service: float,
) -> Scenario:
    duration = None if days is None else days * 86400.0
    if is_arrivals_csv(trace):
        load = from_arrivals_csv(trace, duration=duration)
        return Scenario(load, 0.0, f"{trace.name}: {len(load.arrivals)} arrivals from the CSV")
    ts, _ = read_shape_csv(trace)
    if len(ts) == 0:
        raise ValueError(f"{trace}: no samples")
    step = float(ts[1] - ts[0]) if len(ts) > 1 else 60.0
    full = float(ts[-1] - ts[0]) + step
    if duration is not None:
        duration = min(duration, full)
    if rate_scale is None and mean_rate is None:
        mean_rate = DEFAULT_MEAN_RATE
    load = from_trace_csv(
        trace,
        mean_service_s=mean_service,
        seed=seed,
        mean_rate=mean_rate,
        rate_scale=rate_scale,
        duration=duration,
    )
    scale = f"rate scale {rate_scale:g}" if rate_scale is not None else f"mean rate {mean_rate:g}/s"
    return Scenario(
        load,
        float(ts[0]),
        f"{trace.name}: shape scaled to {scale}, mean service {mean_service:g} s, seed {seed}",
    )


class Progress:
    """A one-line progress bar on a terminal; silent elsewhere."""

    def __init__(self, stream: TextIO, enabled: bool, total: float) -> None:
        self.stream = stream
        self.enabled = enabled
        self.total = max(total, 1e-9)
        self.shown = -1

    def show(self, label: str, done: float) -> None:
        if not self.enabled:
            return
        percent = int(100 * min(done / self.total, 1.0))
        if percent == self.shown:
            return
        self.shown = percent
        filled = percent * 30 // 100
        self.stream.write(f"\r{label[:24]:<24} [{'#' * filled}{'.' * (30 - filled)}] {percent:3d}%")
        self.stream.flush()

    def end(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


V = TypeVar("V")
M = TypeVar("M")
V_contra = TypeVar("V_contra", contravariant=True)
M_co = TypeVar("M_co", covariant=True)


class _Decider(Protocol[V_contra, M_co]):
    @property
    def name(self) -> str: ...

    @property
    def period_seconds(self) -> float: ...

    @property
    def scale_down(self) -> M_co: ...

    def desired(self, now: float, view: V_contra) -> int: ...


class Watched(Generic[V, M]):
    """A policy (of a cluster or a pool) that reports the simulated time it is asked at: the simulators
    have no progress hook."""

    def __init__(self, inner: _Decider[V, M], progress: Progress, label: str, offset: float) -> None:
        self.inner = inner
        self.progress = progress
        self.label = label
        self.offset = offset

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def period_seconds(self) -> float:
        return self.inner.period_seconds

    @property
    def scale_down(self) -> M:
        return self.inner.scale_down

    def desired(self, now: float, view: V) -> int:
        self.progress.show(self.label, self.offset + now)
        return self.inner.desired(now, view)


def run_scenario(
    scenario: Scenario,
    policies: Sequence[ScalingPolicy],
    baselines: Sequence[str],
    config: ClusterConfig,
    *,
    seed: int = 0,
    progress: bool = False,
    stream: TextIO | None = None,
) -> dict[str, Result]:
    """Every baseline and every policy on the same load; keyed by policy name, baselines first."""
    runs: list[tuple[str, Policy]] = [(b, make_baseline(b, scenario.load, config)) for b in baselines]
    for p in policies:
        engine = QueuescalePolicy(p, config, epoch_start=scenario.epoch_start)
        runs.append((engine.name, engine))
    duration = scenario.load.duration
    bar = Progress(stream or sys.stderr, progress, duration * len(runs))
    results: dict[str, Result] = {}
    for index, (name, policy) in enumerate(runs):
        if name in results:
            raise ConfigError(f"two policies are named {name!r}")
        watched: Watched[ClusterView, ScaleDownMode] = Watched(policy, bar, name, index * duration)
        results[name] = simulate(scenario.load, watched, config, seed=seed, step_seconds=STEP_SECONDS)
    bar.show("done", duration * len(runs))
    bar.end()
    return results


def _baseline_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown baseline(s) {', '.join(unknown)}; pick from {', '.join(BASELINES)}"
        )
    return names


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def add_simulate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "simulate",
        help="replay a trace against a ScalingPolicy and the baselines (fast-forward Trino simulator)",
        description="Run the policy and the baselines on one load; write DIR/result.json, "
        f"DIR/{TIMESERIES_PNG}, DIR/{WAITS_PNG} and DIR/summary.md.",
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
        default=list(BASELINES),
        help=f"comma-separated, from {','.join(BASELINES)} (default all; '' for none)",
    )
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--rate-scale", type=_positive, help="arrivals/s per unit of the shape's value")
    scale.add_argument(
        "--mean-rate",
        type=_positive,
        help=f"scale the shape to this mean arrivals/s (default {DEFAULT_MEAN_RATE}; "
        f"Spark pools: applications/s, default {DEFAULT_APP_RATE})",
    )
    parser.add_argument(
        "--mean-service",
        type=_positive,
        default=DEFAULT_MEAN_SERVICE,
        help=f"mean query (Spark: task) service time, s, for shapes (default {DEFAULT_MEAN_SERVICE:g})",
    )
    parser.add_argument(
        "--cores-per-worker",
        type=_positive,
        help="Trino: cores of a worker; fewer cores than slots makes running queries share the CPU "
        "(default: one core per slot)",
    )
    parser.add_argument(
        "--worker-memory-gb", type=_positive, help="Trino: query memory of a worker, GB (default unlimited)"
    )
    parser.add_argument(
        "--query-memory-gb",
        type=_positive,
        help="Trino: mean memory of a query, GB, growing with its service time (default: none reserved)",
    )
    parser.add_argument("--days", type=_positive, help="simulate this many days (default the whole trace)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the arrivals and service times")
    parser.add_argument("--out", required=True, type=Path, help="output directory (created)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> None:
    policies = [p for p, _ in load_policies(args.policy)]
    if any(p.spec.target.kind == "SparkWorkerPool" for p in policies):
        # Imported here: the pool command reuses this module's output helpers.
        from autoscaler.sim.spark_cli import cmd_simulate_pool

        cmd_simulate_pool(args, policies)
        return
    try:
        configs = [cluster_config_for(p) for p in policies]
    except ConfigError as exc:
        raise ConfigError(f"{args.policy}: {exc}") from exc
    config = configs[0]
    if any(c != config for c in configs[1:]):
        raise ConfigError(f"{args.policy}: the policies describe different clusters; simulate one at a time")
    config = replace(
        config,
        cores_per_worker=args.cores_per_worker,
        memory_per_worker_gb=args.worker_memory_gb or math.inf,
    )
    try:
        scenario = load_scenario(
            args.trace,
            seed=args.seed,
            days=args.days,
            rate_scale=args.rate_scale,
            mean_rate=args.mean_rate,
            mean_service=args.mean_service,
        )
    except (OSError, ValueError, IndexError) as exc:
        raise ConfigError(f"{args.trace}: cannot load the trace: {exc}") from exc
    if args.query_memory_gb is not None:
        memory = query_memory(scenario.load.service, mean_gb=args.query_memory_gb, seed=args.seed)
        if math.isfinite(config.memory_per_worker_gb):
            memory = np.minimum(memory, config.memory_per_worker_gb)
        scenario = replace(scenario, load=scenario.load.with_memory(memory))
    progress = not args.no_progress and sys.stderr.isatty()
    results = run_scenario(scenario, policies, args.baselines, config, seed=args.seed, progress=progress)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result_json(results), indent=2) + "\n")
    plot_timeseries(
        results,
        out / TIMESERIES_PNG,
        slots_per_worker=config.slots_per_worker,
        slo_seconds=config.slo_seconds,
    )
    plot_wait_distribution(results, out / WAITS_PNG, slo_seconds=config.slo_seconds)
    days = scenario.load.duration / 86400.0
    notes = (
        f"Load: {scenario.description}; {days:.3g} days, {len(scenario.load.arrivals)} queries.",
        f"Cluster: {config.slots_per_worker} slots and {config.cores:g} cores per worker"
        + (f", {config.memory_per_worker_gb:g} GB" if math.isfinite(config.memory_per_worker_gb) else "")
        + f", {config.startup_seconds:g} s start-up, "
        f"at most {config.max_workers} workers.",
        "",
        f"![time series]({TIMESERIES_PNG})",
        f"![queue-wait distribution]({WAITS_PNG})",
    )
    title = f"Simulation of {', '.join(p.metadata.name for p in policies)}"
    (out / "summary.md").write_text(
        summary_markdown(results, title=title, slo_seconds=config.slo_seconds, notes=notes)
    )
    print(f"wrote {out / 'result.json'}, {out / TIMESERIES_PNG}, {out / WAITS_PNG}, {out / 'summary.md'}")
