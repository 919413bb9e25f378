"""One simulated comparison: a load, the cluster a policy describes, every baseline and every policy on it.

The library half of ``queuescale simulate`` (the command only parses arguments and writes files), also used
by the benchmarks and the demo report.

Two cluster models (see :mod:`autoscaler.sim.trino_work` and :mod:`autoscaler.sim.trino`):

- ``work`` (the default): Trino as Trino is, query work in CPU-seconds shared by the active workers' cores,
  queueing from resource groups and memory, graceful shutdown and drains billed until the worker exits;
- ``slots``: the older slot model, each worker a fixed number of query slots and a fixed service time.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TextIO, TypeVar

import numpy as np

from autoscaler.policy.models import ScalingPolicy
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
from core.errors import ConfigError

__all__ = [
    "DEFAULT_MEAN_RATE",
    "DEFAULT_SERVICE",
    "DEFAULT_SLO_SECONDS",
    "STEP_SECONDS",
    "AnyConfig",
    "Progress",
    "RunKey",
    "Runs",
    "Scenario",
    "Sweep",
    "Watched",
    "cluster_config_for",
    "default_jobs",
    "is_arrivals_csv",
    "load_scenario",
    "run_scenario",
    "run_sweep",
    "scenario_keys",
    "sweep_keys",
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


RunKey = tuple[str, str, float]
"""A run: ``("baseline", name, setting)`` or ``("policy", name, index of the policy)``."""

# The runs a parallel :class:`Runs` shares with its worker processes: set before they fork, read there.
_SHARED: tuple[Scenario, tuple[ScalingPolicy, ...], AnyConfig, int] | None = None


def default_jobs() -> int:
    """Worker processes by default: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class Runs:
    """The simulator runs of one scenario: each policy, and each baseline at any setting, run at most once
    (equal inputs give an equal run, so a sweep reuses the default setting's run and a bisection point two
    policies share), in this process or, with ``jobs`` > 1, in that many worker processes.

    Two baselines whose policies have equal ``run_signature()`` (see
    :meth:`~autoscaler.sim.baselines.HpaQueue.run_signature`) run the same, so the later one asked for
    takes the earlier one's run under its own name: the example ScaledObject's sweep and bisections are the
    example HPA's.

    Workers are forked so they share the load without copying it through a pipe; each builds its policy
    there from the run's key, as policies hold lambdas.
    """

    def __init__(
        self,
        scenario: Scenario,
        policies: Sequence[ScalingPolicy],
        config: AnyConfig,
        *,
        seed: int = 0,
        jobs: int = 1,
    ) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, not {jobs}")
        self.scenario = scenario
        self.policies = tuple(policies)
        self.config = config
        self.seed = seed
        self.jobs = jobs
        self._done: dict[RunKey, Result] = {}
        self._pool: ProcessPoolExecutor | None = None
        # Tasks for the workers by priority: bisections (the longest chains of runs) first, then the runs
        # a caller waits for, then the runs started ahead. At most ``jobs`` are handed to the pool at a
        # time (its own queue is first come, first served), so a task queued later can still go first.
        self._levels: tuple[deque[RunKey], ...] = (deque(), deque(), deque())
        self._tasks: dict[RunKey, tuple[Callable[..., Any], tuple[Any, ...]]] = {}
        self._running: dict[RunKey, Future[Any]] = {}
        self._finished: dict[RunKey, Future[Any]] = {}
        self._refined: dict[str, list[tuple[IsoSlo, list[Point]]]] = {}
        self._families: dict[str, Baseline] = {}
        # Each baseline run asked for, and the first run asked for with the same signature (itself if none).
        self._same: dict[RunKey, RunKey] = {}
        self._by_signature: dict[Hashable, RunKey] = {}
        # Families whose bisections are another family's, run by run: found once that one's are done.
        self._borrowed: dict[str, tuple[str, Baseline, list[Point], dict[str, Result], int]] = {}
        self._refining: set[str] = set()

    def __enter__(self) -> Runs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        global _SHARED
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            _SHARED = None

    def _executor(self) -> ProcessPoolExecutor:
        global _SHARED
        if self._pool is None:
            if _SHARED is not None:
                raise RuntimeError("one parallel Runs at a time")
            _SHARED = (self.scenario, self.policies, self.config, self.seed)
            self._pool = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("fork"))
        return self._pool

    def _queue(self, token: RunKey, level: int, fn: Callable[..., Any], *args: Any) -> None:
        if token in self._running or token in self._finished:
            return
        if token in self._tasks:
            for queue in self._levels:
                if token in queue:
                    queue.remove(token)
        self._tasks[token] = (fn, args)
        self._levels[level].append(token)

    def _pump(self) -> None:
        for token, future in list(self._running.items()):
            if future.done():
                self._finished[token] = self._running.pop(token)
        while len(self._running) < self.jobs:
            queue = next((q for q in self._levels if q), None)
            if queue is None:
                return
            token = queue.popleft()
            fn, args = self._tasks.pop(token)
            self._running[token] = self._executor().submit(fn, *args)

    def _wait(self, token: RunKey) -> Any:
        while True:
            self._pump()
            if token in self._finished:
                return self._finished.pop(token).result()
            wait(self._running.values(), return_when=FIRST_COMPLETED)

    def policy(self, key: RunKey) -> Policy:
        kind, name, setting = key
        if kind == "policy":
            policy = self.policies[int(setting)]
            return QueuescalePolicy(policy, self.config, epoch_start=self.scenario.epoch_start)
        if name not in self._families:
            self._families[name] = baseline(name, self.scenario.load, self.config)
        return self._families[name].make(setting)

    def _same_run(self, key: RunKey) -> RunKey:
        """The first run asked for that runs the same as ``key`` (``key`` itself when none does)."""
        same = self._same.get(key)
        if same is None:
            same = key
            if key[0] == "baseline":
                signature = getattr(self.policy(key), "run_signature", None)
                if signature is not None:
                    same = self._by_signature.setdefault(signature(), key)
            self._same[key] = same
        return same

    def start(self, keys: Sequence[RunKey]) -> None:
        """Queue ``keys`` on the workers, in this order (nothing happens in-process until :meth:`get`)."""
        if self.jobs == 1:
            return
        for key in keys:
            if key not in self._done:
                same = self._same_run(key)
                self._queue(same, 2, _run_key, same)
        self._pump()

    def get(self, key: RunKey, bar: Progress | None = None, offset: float = 0.0) -> Result:
        """The run ``key`` (``bar``: shows the run's progress from ``offset`` on, or its end if it ran in a
        worker)."""
        if key in self._done:
            return self._done[key]
        result: Result
        same = self._same_run(key)
        if same != key:
            result = replace(self.get(same, bar, offset), policy=self.policy(key).name)
        elif self.jobs > 1:
            self._queue(key, 1, _run_key, key)
            result = self._wait(key)
            if bar is not None:
                bar.show(key[1], offset + self.scenario.load.duration)
        else:
            policy = self.policy(key)
            if bar is not None:
                policy = Watched[ClusterView, ScaleDownMode](policy, bar, key[1], offset)
            result = simulate(
                self.scenario.load, policy, self.config, seed=self.seed, step_seconds=STEP_SECONDS
            )
        self._done[key] = result
        return result

    def start_refining(
        self, family: Baseline, points: list[Point], references: dict[str, Result], refine: int
    ) -> None:
        """Start finding ``family``'s cheapest setting at each reference's level (:func:`cheapest_meeting`,
        the references in order); :meth:`refined` has the outcome."""
        if self.jobs == 1:
            self._refined[family.name] = _refine(self, family, points, references, refine)
            return
        lender = {self._same_run(("baseline", family.name, p.setting))[1] for p in points}
        if len(lender) == 1 and (other := lender.pop()) != family.name and other in self._refining:
            # Every point is another family's run, so each bisection step will be too: once that family's
            # bisections are done, this one runs here on their runs (a step they did not take would still
            # run, on a worker).
            self._borrowed[family.name] = (other, family, points, references, refine)
            return
        self._refining.add(family.name)
        # A bisection reads only the runs' figures, not their series: the workers get light copies.
        light = {name: _light(r) for name, r in references.items()}
        grid = [Point(p.setting, _light(p.result)) for p in points]
        self._queue(("refine", family.name, 0.0), 0, _refine_in_worker, family.name, grid, light, refine)
        self._pump()

    def refined(self, name: str) -> list[tuple[IsoSlo, list[Point]]]:
        """Per reference, the cheapest setting of the family ``name`` and the extra points it ran."""
        if name not in self._refined:
            if name in self._borrowed:
                other, family, points, references, refine = self._borrowed.pop(name)
                for _, extra in self.refined(other):
                    for p in extra:
                        # Known here from now on, so this family's same steps find them.
                        lent: RunKey = ("baseline", other, p.setting)
                        if self._same_run(lent) == lent:
                            self._done.setdefault(lent, p.result)
                self._refined[name] = _refine(self, family, points, references, refine)
            else:
                self._refined[name] = self._wait(("refine", name, 0.0))
        return self._refined[name]


def _light(result: Result) -> Result:
    empty = np.empty(0, dtype=np.float64)
    return replace(
        result,
        waits=empty,
        t=empty,
        arrival_rate=empty,
        queued=empty,
        running=empty,
        desired=empty,
        current=empty,
        billed=empty,
        queue_wait=empty,
    )


def _refine(
    runs: Runs, family: Baseline, points: list[Point], references: dict[str, Result], refine: int
) -> list[tuple[IsoSlo, list[Point]]]:
    def run(setting: float) -> Result:
        return runs.get(("baseline", family.name, setting))

    # Each reference's bisection starts from the points the previous ones added, as it always has.
    seen = list(points)
    found: list[tuple[IsoSlo, list[Point]]] = []
    for reference in references.values():
        best, extra = cheapest_meeting(family, seen, reference, run, refine=refine)
        seen.extend(extra)
        found.append((best, extra))
    return found


def _worker_runs() -> Runs:
    assert _SHARED is not None, "a worker forked from a parallel Runs"
    scenario, policies, config, seed = _SHARED
    return Runs(scenario, policies, config, seed=seed)


def _run_key(key: RunKey) -> Result:
    return _worker_runs().get(key)


def _refine_in_worker(
    name: str, points: list[Point], references: dict[str, Result], refine: int
) -> list[tuple[IsoSlo, list[Point]]]:
    runs = _worker_runs()
    family = baseline(name, runs.scenario.load, runs.config)
    return _refine(runs, family, points, references, refine)


def scenario_keys(
    scenario: Scenario, policies: Sequence[ScalingPolicy], baselines: Sequence[str], config: AnyConfig
) -> list[RunKey]:
    """The runs of :func:`run_scenario`, in the order of its results (baselines first)."""
    keys: list[RunKey] = [("baseline", b, baseline(b, scenario.load, config).default) for b in baselines]
    keys += [("policy", QueuescalePolicy(p, config).name, float(i)) for i, p in enumerate(policies)]
    return keys


def run_scenario(
    scenario: Scenario,
    policies: Sequence[ScalingPolicy],
    baselines: Sequence[str],
    config: AnyConfig,
    *,
    seed: int = 0,
    progress: bool = False,
    stream: TextIO | None = None,
    runs: Runs | None = None,
    then: Sequence[RunKey] = (),
) -> dict[str, Result]:
    """Every baseline (at its default setting) and every policy on the same load; keyed by policy name,
    baselines first. ``runs``: where to run them (default: here, one after another); ``then``: runs to
    queue on its workers behind these (a sweep's grid), so that no worker idles while these end."""
    runs = runs if runs is not None else Runs(scenario, policies, config, seed=seed)
    keys = scenario_keys(scenario, policies, baselines, config)
    names = [k[1] for k in keys]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(f"two policies are named {name!r}")
    # The engine's runs take longest: first on the workers, so the others fill in around them.
    runs.start([k for k in keys if k[0] == "policy"] + [k for k in keys if k[0] != "policy"] + list(then))
    duration = scenario.load.duration
    bar = Progress(stream or sys.stderr, progress, duration * len(keys))
    results = {key[1]: runs.get(key, bar, index * duration) for index, key in enumerate(keys)}
    bar.show("done", duration * len(keys))
    bar.end()
    return results


@dataclass(frozen=True, slots=True)
class Sweep:
    """Each baseline over its settings (sorted, refinement runs included) and, for each policy, each
    baseline's cheapest setting at that policy's service level."""

    families: dict[str, Baseline]
    points: dict[str, list[Point]]
    iso_slo: dict[str, dict[str, IsoSlo]]


def sweep_keys(scenario: Scenario, baselines: Sequence[str], config: AnyConfig) -> list[RunKey]:
    """The runs of a sweep's grid (before any refinement), to queue ahead with :meth:`Runs.start`."""
    families = [baseline(b, scenario.load, config) for b in baselines]
    return [("baseline", f.name, s) for f in families for s in f.sweep]


def run_sweep(
    scenario: Scenario,
    policy_results: dict[str, Result],
    baselines: Sequence[str],
    config: AnyConfig,
    *,
    seed: int = 0,
    refine: int = 3,
    runs: Runs | None = None,
    settings: dict[str, tuple[float, ...]] | None = None,
) -> Sweep:
    """Run every baseline over its sweep (``settings[name]`` instead where given), then find its cheapest
    setting at each policy's level. ``runs``: where to run them (default: here, one after another)."""
    runs = runs if runs is not None else Runs(scenario, (), config, seed=seed)
    families = {b: baseline(b, scenario.load, config) for b in baselines}
    for name, values in (settings or {}).items():
        if name in families:
            families[name] = replace(families[name], sweep=tuple(values))
    runs.start([("baseline", f.name, s) for f in families.values() for s in f.sweep])
    points: dict[str, list[Point]] = {}
    for name, family in families.items():
        points[name] = [Point(s, runs.get(("baseline", name, s))) for s in family.sweep]
        # Bisections are chains of runs one after another: on the workers as soon as they can start.
        runs.start_refining(family, points[name], policy_results, refine)
    found = {name: runs.refined(name) for name in families}
    iso: dict[str, dict[str, IsoSlo]] = {policy_name: {} for policy_name in policy_results}
    for name in families:
        for policy_name, (best, extra) in zip(policy_results, found[name], strict=True):
            points[name].extend(extra)
            iso[policy_name][name] = best
    for name in points:
        seen: dict[float, Point] = {}
        for p in points[name]:
            seen.setdefault(p.setting, p)
        points[name] = sorted(seen.values(), key=lambda p: p.setting)
    return Sweep(families, points, iso)
