"""The demo's report folder: the simulator on the same arrivals beside the live run, the series, the URLs.

- ``timeseries.png`` and ``queue_wait_tail.png``: the Trino simulator's runs of the policy and of the HPA
  on CPU (``hpa-cpu``) over exactly the queries the live run received, with the live run drawn beside them;
- ``spark_timeseries.png``: the same for the Spark pool;
- ``summary.md``: the figures side by side and what the live run did (drains, decommissions, kills, the
  ground-truth check), with the differences between the two models stated;
- ``live.json``: the live run's series, counters, removals and checks; ``urls.md``: what was served.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from autoscaler.policy.models import ScalingPolicy
from autoscaler.sim.baselines import BASELINES, make_baseline
from autoscaler.sim.engine_policy import QueuescalePolicy
from autoscaler.sim.load import Load
from autoscaler.sim.pool_scenario import pool_config_for
from autoscaler.sim.report import (
    TIMESERIES_PNG,
    WAITS_PNG,
    plot_timeseries,
    plot_wait_distribution,
    summary_markdown,
)
from autoscaler.sim.run import Result, completion_figures, simulate
from autoscaler.sim.scenario import STEP_SECONDS, cluster_config_for
from autoscaler.sim.spark import PoolConfig
from autoscaler.sim.spark_baselines import make_pool_baseline
from autoscaler.sim.spark_engine_policy import SparkQueuescalePolicy
from autoscaler.sim.spark_load import SparkLoad
from autoscaler.sim.spark_run import simulate_pool
from autoscaler.sim.trino import ClusterConfig
from lab.demo.run import TRINO_CLUSTER, TRINO_GRACE_SECONDS, LiveRun, Sample, Urls
from lab.demo.scenario import cut_spark_load

__all__ = ["SPARK_PNG", "live_trino_result", "urls_markdown", "write_report"]

SPARK_PNG = "spark_timeseries.png"
BASELINE = "hpa-cpu"
_MIN_SPAN = 5.0


View = TypeVar("View", contravariant=True)
Mode = TypeVar("Mode", covariant=True)


class _Controller(Protocol[View, Mode]):
    """What the Trino and the Spark pool simulators ask of a policy."""

    @property
    def name(self) -> str: ...

    @property
    def period_seconds(self) -> float: ...

    @property
    def scale_down(self) -> Mode: ...

    def desired(self, now: float, view: View) -> int: ...


class _Held(Generic[View, Mode]):
    """A simulated controller whose workload keeps its own replica count until the first pass.

    The simulator asks at t=0 with no worker started yet; the engine, like the HPA, takes a target at 0
    replicas with ``minReplicas`` > 0 for one whose scaling is disabled. A Deployment (or a pool's
    StatefulSet) created with its replicas is what the live run starts from, so the simulated one does too.
    """

    def __init__(self, inner: _Controller[View, Mode], initial: int) -> None:
        self.inner = inner
        self.initial = initial
        self.started = False

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def period_seconds(self) -> float:
        return self.inner.period_seconds

    @property
    def scale_down(self) -> Mode:
        return self.inner.scale_down

    def desired(self, now: float, view: View) -> int:
        if not self.started:
            self.started = True
            return self.initial
        return self.inner.desired(now, view)


def simulate_trino(
    load: Load, policy: ScalingPolicy, config: ClusterConfig, *, epoch_start: float, seed: int
) -> dict[str, Result]:
    """Every baseline at its default setting (with the chart's graceful shutdown) and ``policy`` on
    ``load``; all start from ``config.initial_workers``."""
    initial = config.initial_workers or 1
    results = {
        name: simulate(
            load,
            _Held(make_baseline(name, load, config), initial),
            config,
            seed=seed,
            step_seconds=STEP_SECONDS,
        )
        for name in BASELINES
    }
    engine = _Held(QueuescalePolicy(policy, config, epoch_start=epoch_start), initial)
    results[f"{engine.name} (simulated)"] = simulate(
        load, engine, config, seed=seed, step_seconds=STEP_SECONDS
    )
    return results


def simulate_spark(
    load: SparkLoad, policy: ScalingPolicy, config: PoolConfig, *, epoch_start: float
) -> dict[str, Result]:
    """:func:`simulate_trino` for the Spark pool."""
    initial = config.initial_workers or 1
    engine = _Held(SparkQueuescalePolicy(policy, config, epoch_start=epoch_start), initial)
    return {
        BASELINE: simulate_pool(
            load, make_pool_baseline(BASELINE, load, config), config, step_seconds=STEP_SECONDS
        ),
        f"{engine.name} (simulated)": simulate_pool(load, engine, config, step_seconds=STEP_SECONDS),
    }


def _series(samples: list[Sample], name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.asarray([float(getattr(s, name)) for s in samples], dtype=np.float64)


def _worker_hours(
    t: np.ndarray[Any, np.dtype[np.float64]], billed: np.ndarray[Any, np.dtype[np.float64]]
) -> float:
    if len(t) < 2:
        return 0.0
    return float(np.sum(billed[:-1] * np.diff(t))) / 3600.0


def live_trino_result(run: LiveRun, config: ClusterConfig, name: str) -> Result:
    """The live run as a simulator :class:`Result` (cluster seconds), so it plots and tabulates beside them."""
    samples = run.samples
    end = run.cluster_time
    t = _series(samples, "t")
    waits = np.asarray(
        [q.running_since - q.created_at for q in run.queries if q.running_since is not None], dtype=np.float64
    )
    still = np.asarray(
        [end - q.created_at for q in run.queries if q.running_since is None and not q.state.is_done]
    )
    arrived = _series(samples, "arrived")
    widths = np.diff(t, prepend=0.0)
    rates = np.divide(np.diff(arrived, prepend=0.0), widths, out=np.zeros_like(arrived), where=widths > 0)
    if len(waits):
        p50, p95, p99 = (float(x) for x in np.percentile(waits, [50, 95, 99]))
        mean = float(waits.mean())
    else:
        p50 = p95 = p99 = mean = 0.0
    slo = config.slo_seconds
    scale_actions = int(
        run.counter("queuescale_controller_scale_actions_total", run.trino_key, direction="up")
        + run.counter("queuescale_controller_scale_actions_total", run.trino_key, direction="down")
    )
    last = samples[-1] if samples else None
    ended = [q for q in run.queries if q.ended_at is not None and q.running_since is not None]
    run_p95, latency_p95 = completion_figures(
        np.asarray([q.created_at for q in ended], dtype=np.float64),
        [q.running_since or 0.0 for q in ended],
        [q.ended_at or 0.0 for q in ended],
    )
    return Result(
        policy=name,
        worker_hours=_worker_hours(np.append(t, end), np.append(_series(samples, "billed"), 0.0)),
        queue_wait_p50_s=p50,
        queue_wait_p95_s=p95,
        queue_wait_p99_s=p99,
        queue_wait_mean_s=mean,
        slo_misses=int(np.count_nonzero(waits > slo) + np.count_nonzero(still > slo)),
        scale_actions=scale_actions,
        killed=run.killed_queries,
        run_time_p95_s=run_p95,
        latency_p95_s=latency_p95,
        arrived=len(run.queries),
        completed=sum(1 for q in run.queries if q.state.is_done),
        queued_at_end=last.queued if last else 0,
        running_at_end=last.running if last else 0,
        duration_s=end,
        steps=len(samples),
        waits=waits,
        t=t,
        arrival_rate=rates,
        queued=_series(samples, "queued"),
        running=_series(samples, "running"),
        desired=_series(samples, "desired"),
        current=_series(samples, "current"),
        billed=_series(samples, "billed"),
        queue_wait=_series(samples, "head_wait"),
    )


def _live_spark_result(run: LiveRun, name: str) -> Result:
    samples = run.samples
    t = _series(samples, "t")
    busy = _series(samples, "spark_busy_cores")
    remaining = _series(samples, "spark_remaining")
    nothing = np.zeros(0, dtype=np.float64)
    return Result(
        policy=name,
        worker_hours=_worker_hours(
            np.append(t, run.cluster_time), np.append(_series(samples, "spark_billed"), 0)
        ),
        queue_wait_p50_s=math.nan,
        queue_wait_p95_s=math.nan,
        queue_wait_p99_s=math.nan,
        queue_wait_mean_s=math.nan,
        slo_misses=0,
        scale_actions=int(
            run.counter("queuescale_controller_scale_actions_total", run.spark_key, direction="up")
            + run.counter("queuescale_controller_scale_actions_total", run.spark_key, direction="down")
        ),
        killed=run.spark_tasks_lost,
        run_time_p95_s=math.nan,
        latency_p95_s=math.nan,
        arrived=run.apps_submitted,
        completed=run.apps_completed,
        queued_at_end=0,
        running_at_end=0,
        duration_s=run.cluster_time,
        steps=len(samples),
        waits=nothing,
        t=t,
        arrival_rate=np.zeros_like(t),
        queued=np.maximum(remaining - busy, 0.0),
        running=busy,
        desired=_series(samples, "spark_desired"),
        current=_series(samples, "spark_current"),
        billed=_series(samples, "spark_billed"),
        # Per-task waits are not recorded live; NaN leaves the live line out of the wait panel.
        queue_wait=np.full_like(t, math.nan),
    )


def urls_markdown(urls: Urls | None) -> str:
    if urls is None:
        return "# What the demo served\n\nThe demo stopped before its servers were up.\n"
    base = "/apis/external.metrics.k8s.io/v1beta1"
    ns = urls.trino_namespace
    return f"""# What the demo served

Everything listens on loopback, plain HTTP, for as long as the demo runs.

| what | URL |
|---|---|
| Kubernetes API (sandbox) | {urls.kube} |
| queuescale adapter (external.metrics.k8s.io) | {urls.adapter} |
| queuescale controller (`/metrics`, `/readyz`) | {urls.controller_metrics} |
| Trino coordinator (emulated) | {urls.coordinator} |
| Spark standalone master (emulated) | {urls.spark_master} |

Try, while it runs:

```sh
kubectl --server={urls.adapter} get --raw {base}
kubectl --server={urls.adapter} get --raw '{base}/namespaces/{ns}/trino_queued_queries?labelSelector=cluster%3D{TRINO_CLUSTER}'
curl '{urls.adapter}{base}/namespaces/{urls.spark_namespace}/spark_remaining_tasks'
curl {urls.adapter}/metrics
curl {urls.controller_metrics}/metrics
kubectl --server={urls.kube} get deployments,statefulsets,pods -A
kubectl --server={urls.kube} get scalingpolicies -A -o yaml
kubectl --server={urls.kube} get events -A
curl {urls.coordinator}/v1/info
curl {urls.spark_master}/json/
```
"""


def _table(rows: list[tuple[str, str]]) -> list[str]:
    out = ["| | |", "|---|---:|"]
    out += [f"| {k} | {v} |" for k, v in rows]
    return out


def write_report(run: LiveRun, out: Path) -> list[Path]:
    """Write the report folder; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    end = max(run.cluster_time, _MIN_SPAN)
    load = run.load
    seg = load.segment
    trino_policy = run.trino_policy.policy
    spark_policy = run.spark_policy.policy
    trino_name = trino_policy.metadata.name or "policy"
    spark_name = spark_policy.metadata.name or "pool-policy"
    trino_spec = trino_policy.spec

    # The emulated workers' grace period; the pods' termination grace in the chart's proportion (300 s for
    # its 120 s default), so graceful shutdown kills what outlives it as it would in a cluster.
    config = replace(
        cluster_config_for(trino_policy),
        initial_workers=max(1, trino_spec.min_replicas),
        grace_seconds=TRINO_GRACE_SECONDS,
        termination_grace_seconds=2.5 * TRINO_GRACE_SECONDS,
    )
    results = simulate_trino(
        load.trino.slice(0.0, end), trino_policy, config, epoch_start=seg.epoch_start, seed=run.options.seed
    )
    live_name = f"{trino_name} (live)"
    results[live_name] = live_trino_result(run, config, live_name)
    plot_timeseries(
        results,
        out / TIMESERIES_PNG,
        slots_per_worker=config.slots_per_worker,
        slo_seconds=config.slo_seconds,
    )
    plot_wait_distribution(results, out / WAITS_PNG, slo_seconds=config.slo_seconds)

    pool_config = replace(
        pool_config_for(spark_policy), initial_workers=max(1, spark_policy.spec.min_replicas)
    )
    pool_results = simulate_spark(
        cut_spark_load(load.spark, end), spark_policy, pool_config, epoch_start=seg.epoch_start
    )
    spark_live_name = f"{spark_name} (live)"
    pool_results[spark_live_name] = _live_spark_result(run, spark_live_name)
    plot_timeseries(pool_results, out / SPARK_PNG, slots_per_worker=pool_config.slots_per_worker)

    runs = _Runs(results, live_name, config, pool_results, spark_live_name, pool_config)
    summary = _summary(run, runs)
    (out / "summary.md").write_text(summary)
    (out / "live.json").write_text(json.dumps(_live_json(run, results[live_name]), indent=1) + "\n")
    (out / "urls.md").write_text(urls_markdown(run.urls))
    return [out / n for n in (TIMESERIES_PNG, WAITS_PNG, SPARK_PNG, "summary.md", "live.json", "urls.md")]


@dataclass(frozen=True)
class _Runs:
    """The simulated and live results the summary tabulates."""

    trino: dict[str, Result]
    trino_live: str
    trino_config: ClusterConfig
    spark: dict[str, Result]
    spark_live: str
    spark_config: PoolConfig


def _summary(run: LiveRun, runs: _Runs) -> str:
    results, pool_results, live_name = runs.trino, runs.spark, runs.trino_live
    load = run.load
    seg = load.segment
    scale = load.scale
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seg.epoch_start))
    trace_hours = scale.trace_seconds(run.cluster_time) / 3600.0
    removals = run.trino_removals
    clean = sum(1 for r in removals if r["state"] in ("DRAINED", "GONE") and r["killed"] == 0)
    lines = [
        f"# queuescale demo: {seg.path.name}",
        "",
        f"Replayed {trace_hours:.3g} h of the trace from {started} in {run.wall_seconds:.0f} wall seconds "
        f"({run.cluster_time:.0f} cluster seconds){' — stopped early (Ctrl-C)' if run.interrupted else ''}. "
        f"Speed {scale.speed:g} trace seconds and {scale.cluster_speed:g} cluster seconds per wall second "
        f"(the trace compressed {scale.compression:.3g}x into cluster time); seed {run.options.seed}.",
        "",
        f"Load: {load.description()}.",
        "",
        "## Trino workers",
        "",
        f"The simulator ran `{run.trino_policy.policy.metadata.name}` and every baseline at its default setting "
        f"({', '.join(BASELINES)}; the HPA and KEDA ones with the Trino chart's graceful shutdown: a "
        f"{TRINO_GRACE_SECONDS:g} s grace period, pods killed {2.5 * TRINO_GRACE_SECONDS:g} s after it "
        "starts) on exactly the queries the live cluster received. All figures are in cluster seconds and hours; "
        "`queuescale simulate --sweep` compares each baseline at its best setting.",
        "",
        summary_markdown(
            results, title="Simulated and live", slo_seconds=runs.trino_config.slo_seconds
        ).replace("# Simulated", "### Simulated", 1),
        "What the live run did:",
        "",
        *_table(
            [
                ("queries submitted / finished", f"{len(run.queries)} / {results[live_name].completed}"),
                ("queries killed", str(run.killed_queries)),
                ("workers that joined", str(run.trino_joined)),
                ("scale-ups / scale-downs written", _ups_downs(run, run.trino_key)),
                (
                    "drains started / finished (controller)",
                    f"{run.counter('queuescale_controller_drains_started_total', run.trino_key):.0f} / "
                    f"{run.counter('queuescale_controller_drains_finished_total', run.trino_key):.0f}",
                ),
                (
                    "workers seen DRAINING / DRAINED (Trino)",
                    f"{len(run.trino_drains_started)} / {len(run.trino_drained)}",
                ),
                ("pods removed / of them drained with nothing running", f"{len(removals)} / {clean}"),
            ]
        ),
        "",
        "The two are different models of the same arrivals: the simulator gives each query one core of a "
        "slot for its service time; the emulated Trino spreads each query over every active worker and lets it "
        "use idle cores (so it finishes early on a quiet cluster), admits "
        f"{runs.trino_config.slots_per_worker} queries per worker (its slots) by memory, "
        "and the live controller sees only what the adapter serves, polled every "
        f"{run.options.poll_seconds * scale.cluster_speed:g} cluster seconds. The policy's durations were "
        "divided by the cluster speed for the live controller, but its engine's own windows (the 300 s rate "
        "estimate, its 30 s minimum span) count wall seconds: the live queue model starts later and averages "
        "over a longer stretch of the day than the simulated one.",
        "",
        "![time series](timeseries.png)",
        "![queue-wait distribution](queue_wait_tail.png)",
        "",
        "## Spark worker pool",
        "",
        summary_markdown(
            {k: v for k, v in pool_results.items() if k != runs.spark_live},
            title="Simulated",
            slo_seconds=runs.spark_config.slo_seconds,
        ).replace("# Simulated", "### Simulated", 1),
        "What the live run did:",
        "",
        *_table(
            [
                ("applications submitted / finished", f"{run.apps_submitted} / {run.apps_completed}"),
                (
                    "worker-hours",
                    f"{pool_results[runs.spark_live].worker_hours:.2f}",
                ),
                ("workers that joined", str(run.spark_joined)),
                ("scale-ups / scale-downs written", _ups_downs(run, run.spark_key)),
                (
                    "decommissions started / finished (controller)",
                    f"{run.counter('queuescale_controller_drains_started_total', run.spark_key):.0f} / "
                    f"{run.counter('queuescale_controller_drains_finished_total', run.spark_key):.0f}",
                ),
                (
                    "workers decommissioned / left the pool",
                    f"{len(run.spark_decommissioned)} / {run.spark_departed}",
                ),
                ("running tasks lost with a removed pod", str(run.spark_tasks_lost)),
            ]
        ),
        "",
        "![Spark pool](spark_timeseries.png)",
        "",
        "## Ground truth",
        "",
        f"{run.truth.checks} answers of the adapter (`trino_queued_queries`, `trino_running_queries`, read "
        f"over HTTP) were held against the counts the emulated coordinator reported between each answer's "
        f"timestamp and its reading: **{run.truth.mismatch_count} mismatches** "
        f"({run.truth.nonzero} of the checked values were non-zero, {run.truth.unavailable} answers were "
        "not available, e.g. before the first poll).",
        "",
        "## Policies",
        "",
        f"- `{run.trino_policy.policy.metadata.name}` from `{run.options.trino_policy}`; "
        f"`{run.spark_policy.policy.metadata.name}` from `{run.options.spark_policy}`.",
        *(f"- {note}" for note in dict.fromkeys((*run.trino_live.notes, *run.spark_live.notes))),
        "- The policies as applied (wall-clock durations) are in `live.json` under `policies`.",
        "",
    ]
    return "\n".join(lines)


def _ups_downs(run: LiveRun, key: str) -> str:
    up = run.counter("queuescale_controller_scale_actions_total", key, direction="up")
    down = run.counter("queuescale_controller_scale_actions_total", key, direction="down")
    return f"{up:.0f} / {down:.0f}"


def _live_json(run: LiveRun, trino: Result) -> dict[str, Any]:
    samples = run.samples
    fields = list(Sample.__dataclass_fields__)
    return {
        "trace": str(run.options.trace),
        "trace_epoch_start": run.load.segment.epoch_start,
        "speed": run.load.scale.speed,
        "cluster_speed": run.load.scale.cluster_speed,
        "seed": run.options.seed,
        "wall_seconds": round(run.wall_seconds, 3),
        "cluster_seconds": round(run.cluster_time, 3),
        "interrupted": run.interrupted,
        "urls": None if run.urls is None else run.urls.__dict__,
        "trino": {
            "queries_submitted": len(run.queries),
            "queries_finished": trino.completed,
            "queries_killed": run.killed_queries,
            "worker_hours": round(trino.worker_hours, 6),
            "queue_wait_p50_s": round(trino.queue_wait_p50_s, 6),
            "queue_wait_p95_s": round(trino.queue_wait_p95_s, 6),
            "queue_wait_p99_s": round(trino.queue_wait_p99_s, 6),
            "slo_misses": trino.slo_misses,
            "workers_joined": run.trino_joined,
            "workers_seen_draining": sorted(run.trino_drains_started),
            "workers_seen_drained": sorted(run.trino_drained),
            "pod_removals": run.trino_removals,
        },
        "spark": {
            "applications_submitted": run.apps_submitted,
            "applications_finished": run.apps_completed,
            "workers_joined": run.spark_joined,
            "workers_decommissioned": len(run.spark_decommissioned),
            "workers_left": run.spark_departed,
            "running_tasks_lost": run.spark_tasks_lost,
            "pod_removals": run.spark_removals,
        },
        "controller": {
            "counters": run.counters,
            "last_reasons": run.reasons,
        },
        "truth": run.truth.summary(),
        "policies": {
            "trino": run.trino_live.doc,
            "spark": run.spark_live.doc,
            "trino_cluster_time": run.trino_policy.doc,
            "spark_cluster_time": run.spark_policy.doc,
        },
        "series": {
            "unit": "cluster seconds",
            **{name: [getattr(s, name) for s in samples] for name in fields},
        },
    }
