"""One simulated comparison: a load, the cluster a policy describes, every baseline and every policy on it.

The library half of ``queuescale simulate`` (the command only parses arguments and writes files), also used
by the benchmarks and the demo report.

Two cluster models (see :mod:`autoscaler.sim.trino_work` and :mod:`autoscaler.sim.trino`):

- ``work`` (the default): Trino as Trino is, query work in CPU-seconds shared by the active workers' cores,
  queueing from resource groups and memory, graceful shutdown and drains billed until the worker exits;
- ``slots``: the older slot model, each worker a fixed number of query slots and a fixed service time.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, Literal, Protocol, TextIO, TypeVar

from adapter.errors import ConfigError
from autoscaler.policy_models import ScalingPolicy
from autoscaler.sim.baselines import Baseline, baseline
from autoscaler.sim.engine_policy import QueuescalePolicy
from autoscaler.sim.iso_slo import IsoSlo, Point, cheapest_meeting
from autoscaler.sim.load import (
    Load,
    ServiceSpec,
    from_arrivals_csv,
    from_trace_csv,
    read_shape_span,
)
from autoscaler.sim.run import Result, simulate
from autoscaler.sim.trino import ClusterConfig, ClusterView, Policy, ScaleDownMode
from autoscaler.sim.trino_work import WorkConfig

__all__ = [
    "DEFAULT_MEAN_RATE",
    "DEFAULT_SERVICE",
    "DEFAULT_SLO_SECONDS",
    "STEP_SECONDS",
    "AnyConfig",
    "Progress",
    "Scenario",
    "Sweep",
    "Watched",
    "cluster_config_for",
    "is_arrivals_csv",
    "load_scenario",
    "run_scenario",
    "run_sweep",
    "work_config_for",
]

DEFAULT_MEAN_RATE = 0.5
#: Query work when a trace gives only a shape: heavy-tailed (mean ~62 s; 1 % of queries over ~10 min).
DEFAULT_SERVICE = "lognormal:20,1.5"
DEFAULT_SLO_SECONDS = 60.0
STEP_SECONDS = 5.0

AnyConfig = ClusterConfig | WorkConfig
Model = Literal["work", "slots"]


def _policy_cluster(policy: ScalingPolicy) -> tuple[float, int, float]:
    """Start-up seconds, the largest ``maxReplicas`` (policy or schedule) and the SLO of a TrinoWorkers
    policy (a QueueWait metric's ``sloSeconds``, else :data:`DEFAULT_SLO_SECONDS`)."""
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
    return float(spec.target.startup_seconds), max(ceilings), float(slo)


def cluster_config_for(policy: ScalingPolicy) -> ClusterConfig:
    """The slot model's cluster a TrinoWorkers policy describes."""
    startup, top, slo = _policy_cluster(policy)
    assert policy.spec.target.trino is not None
    return ClusterConfig(
        slots_per_worker=policy.spec.target.trino.slots_per_worker,
        startup_seconds=startup,
        max_workers=top,
        slo_seconds=slo,
    )


def work_config_for(policy: ScalingPolicy) -> WorkConfig:
    """The work model's cluster a TrinoWorkers policy describes (the rest at :class:`WorkConfig`'s
    defaults; the caller replaces what the command line sets)."""
    startup, top, slo = _policy_cluster(policy)
    return WorkConfig(startup_seconds=startup, max_workers=top, slo_seconds=slo)


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
    service: ServiceSpec,
    burst: float = 1.0,
) -> Scenario:
    duration = None if days is None else days * 86400.0
    if is_arrivals_csv(trace):
        load = from_arrivals_csv(trace, duration=duration)
        return Scenario(load, 0.0, f"{trace.name}: {len(load.arrivals)} arrivals from the CSV")
    ts, _, duration = read_shape_span(trace, days)
    if rate_scale is None and mean_rate is None:
        mean_rate = DEFAULT_MEAN_RATE
    load = from_trace_csv(
        trace,
        mean_service_s=service.mean_s,
        seed=seed,
        mean_rate=mean_rate,
        rate_scale=rate_scale,
        duration=duration,
        service_dist=service.dist,
        sigma=service.sigma,
        burst=burst,
    )
    scale = f"rate scale {rate_scale:g}" if rate_scale is not None else f"mean rate {mean_rate:g}/s"
    bursty = f", bursts of {burst:g} queries on average" if burst > 1 else ""
    return Scenario(
        load,
        float(ts[0]),
        f"{trace.name}: shape scaled to {scale}{bursty}, {service.describe()}, seed {seed}",
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


def _run(scenario: Scenario, policy: Policy, config: AnyConfig, seed: int) -> Result:
    return simulate(scenario.load, policy, config, seed=seed, step_seconds=STEP_SECONDS)


def run_scenario(
    scenario: Scenario,
    policies: Sequence[ScalingPolicy],
    baselines: Sequence[str],
    config: AnyConfig,
    *,
    seed: int = 0,
    progress: bool = False,
    stream: TextIO | None = None,
) -> dict[str, Result]:
    """Every baseline (at its default setting) and every policy on the same load; keyed by policy name,
    baselines first."""
    runs: list[tuple[str, Policy]] = [(b, baseline(b, scenario.load, config).make()) for b in baselines]
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


@dataclass(frozen=True, slots=True)
class Sweep:
    """Each baseline over its settings (sorted, refinement runs included) and, for each policy, each
    baseline's cheapest setting at that policy's service level."""

    families: dict[str, Baseline]
    points: dict[str, list[Point]]
    iso_slo: dict[str, dict[str, IsoSlo]]


def run_sweep(
    scenario: Scenario,
    policy_results: dict[str, Result],
    baselines: Sequence[str],
    config: AnyConfig,
    *,
    seed: int = 0,
    refine: int = 3,
    settings: dict[str, tuple[float, ...]] | None = None,
) -> Sweep:
    """Run every baseline over its sweep (``settings[name]`` instead where given), then find its cheapest
    setting at each policy's level."""
    families = {b: baseline(b, scenario.load, config) for b in baselines}
    for name, values in (settings or {}).items():
        if name in families:
            families[name] = replace(families[name], sweep=tuple(values))
    points: dict[str, list[Point]] = {}
    for name, family in families.items():
        points[name] = [Point(s, _run(scenario, family.make(s), config, seed)) for s in family.sweep]
    iso: dict[str, dict[str, IsoSlo]] = {}
    for policy_name, reference in policy_results.items():
        iso[policy_name] = {}
        for name, family in families.items():

            def run(setting: float, family: Baseline = family) -> Result:
                return _run(scenario, family.make(setting), config, seed)

            found, extra = cheapest_meeting(family, points[name], reference, run, refine=refine)
            points[name].extend(extra)
            iso[policy_name][name] = found
    for name in points:
        seen: dict[float, Point] = {}
        for p in points[name]:
            seen.setdefault(p.setting, p)
        points[name] = sorted(seen.values(), key=lambda p: p.setting)
    return Sweep(families, points, iso)
