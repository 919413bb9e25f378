"""Turn the adapter's metrics into the engine's :class:`~autoscaler.decision.signals.Observation` for one policy.

Each metric of the policy is read the way the HPA would read it (same name, same selector, same sum);
QueueWait/RequiredWorkers read the Trino cluster's catalog figures by its ``cluster`` label and
SparkExecutors the pool's per-application backlog by its ``pool`` label. A read that fails leaves that
signal missing or stale, which the engine turns into "scale up or hold, never down". The Trino query
counters are optional: without them the snapshot carries ``None`` and the queue model falls back to a
configured service time (the decision's reason says which estimator it used), so their absence is not
reported as a problem.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from autoscaler.controller.readings import MetricReader, Reading
from autoscaler.decision.queueing import GroupLoad
from autoscaler.decision.signals import Observation, SparkSnapshot, TrinoSnapshot, ValueReading
from autoscaler.decision.spark_sizing import AppDemand
from autoscaler.policy.models import ExternalMetric, ScalingPolicy
from core.metric_names import (
    SPARK_NEXT_WAVE_TASKS,
    SPARK_POOL_WORKERS,
    SPARK_REMAINING_TASKS,
    SPARK_TASK_SECONDS,
    TRINO_COMPLETED_QUERIES_TOTAL,
    TRINO_CONSUMED_CPU_SECONDS_TOTAL,
    TRINO_QUEUED_QUERIES,
    TRINO_REQUIRED_WORKERS,
    TRINO_RESOURCE_GROUP_HARD_CONCURRENCY_LIMIT,
    TRINO_RESOURCE_GROUP_QUEUED_QUERIES,
    TRINO_RESOURCE_GROUP_RUNNING_QUERIES,
    TRINO_RUNNING_QUERIES,
    TRINO_STARTED_QUERIES_TOTAL,
)
from core.selectors import Requirement, Selector

__all__ = ["Observed", "observe", "reads_of"]


@dataclass(frozen=True, slots=True)
class Observed:
    """The observation and the read problems worth reporting in the policy's status."""

    observation: Observation
    problems: tuple[str, ...]


@functools.lru_cache(maxsize=4096)
def _equals(key: str, value: str) -> Selector:
    # Kept: every pass asks for the same few hundred, and validating a Requirement is not free.
    return Selector((Requirement(key, "=", (value,)),))


def _by_label(reading: Reading, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in reading.series or ():
        key = s.labels.get(label)
        if key is not None:
            out[key] = out.get(key, 0.0) + s.value
    return out


def _count(value: float | None) -> int:
    return max(0, math.ceil(value - 1e-9)) if value is not None and math.isfinite(value) else 0


_COUNTERS = (
    TRINO_STARTED_QUERIES_TOTAL,
    TRINO_COMPLETED_QUERIES_TOTAL,
    # QueueWait sizing Work reads the CPU-seconds of the ended queries; other policies ignore it.
    TRINO_CONSUMED_CPU_SECONDS_TOTAL,
)
_TRINO_TYPES = frozenset({"QueueWait", "RequiredWorkers"})


def _counter(reading: Reading) -> float | None:
    """A monotonic counter's value, or None when it was not read (resets are the engine's to detect)."""
    total = reading.total if reading.series and not reading.stale else None
    return total if total is not None and math.isfinite(total) and total >= 0 else None


_TRINO_METRICS = (
    TRINO_QUEUED_QUERIES,
    TRINO_RUNNING_QUERIES,
    TRINO_REQUIRED_WORKERS,
    TRINO_RESOURCE_GROUP_QUEUED_QUERIES,
    TRINO_RESOURCE_GROUP_RUNNING_QUERIES,
    TRINO_RESOURCE_GROUP_HARD_CONCURRENCY_LIMIT,
)


async def _trino(
    reader: MetricReader, namespace: str, cluster: str, now: float
) -> tuple[TrinoSnapshot | None, list[str]]:
    sel = _equals("cluster", cluster)
    names = _TRINO_METRICS
    readings = await asyncio.gather(*(reader.read(namespace, n, sel, now) for n in (*names, *_COUNTERS)))
    got = dict(zip((*names, *_COUNTERS), readings, strict=True))
    core = [got[n] for n in names[:3]]
    problems = [f"{n}: {got[n].error}" for n in names if got[n].series is None and got[n].error]
    if any(r.series is None for r in core):
        stale = any(r.stale for r in core) and not any(r.series is None and not r.stale for r in core)
        if stale:
            return TrinoSnapshot(0, 0, stale=True), problems
        return None, problems
    groups: list[GroupLoad] = []
    limits = _by_label(got[TRINO_RESOURCE_GROUP_HARD_CONCURRENCY_LIMIT], "resource_group")
    queued = _by_label(got[TRINO_RESOURCE_GROUP_QUEUED_QUERIES], "resource_group")
    running = _by_label(got[TRINO_RESOURCE_GROUP_RUNNING_QUERIES], "resource_group")
    for group, limit in sorted(limits.items()):
        groups.append(GroupLoad(group, _count(queued.get(group)), _count(running.get(group)), _count(limit)))
    snap = TrinoSnapshot(
        queued=_count(got[TRINO_QUEUED_QUERIES].total),
        running=_count(got[TRINO_RUNNING_QUERIES].total),
        required_workers=_count(got[TRINO_REQUIRED_WORKERS].total),
        groups=tuple(groups),
        started_total=_counter(got[TRINO_STARTED_QUERIES_TOTAL]),
        completed_total=_counter(got[TRINO_COMPLETED_QUERIES_TOTAL]),
        cpu_seconds_total=_counter(got[TRINO_CONSUMED_CPU_SECONDS_TOTAL]),
    )
    return snap, problems


_SPARK_APP_METRICS = (SPARK_REMAINING_TASKS, SPARK_NEXT_WAVE_TASKS)
_SPARK_METRICS = (*_SPARK_APP_METRICS, SPARK_POOL_WORKERS)


def _spark_metrics(policy: ScalingPolicy) -> tuple[str, ...]:
    """The pool figures ``policy`` reads: task run times only when it sizes on the backlog's work."""
    on_work = any(
        m.spark_executors is not None and m.spark_executors.backlog_seconds for m in policy.spec.metrics
    )
    return (*_SPARK_METRICS, SPARK_TASK_SECONDS) if on_work else _SPARK_METRICS


async def _spark(
    reader: MetricReader, namespace: str, pool: str, now: float, names: tuple[str, ...]
) -> tuple[SparkSnapshot | None, list[str]]:
    sel = _equals("pool", pool)
    readings = await asyncio.gather(*(reader.read(namespace, n, sel, now) for n in names))
    got = dict(zip(names, readings, strict=True))
    problems = [f"{n}: {r.error}" for n, r in got.items() if r.series is None and r.error]
    remaining = got[SPARK_REMAINING_TASKS]
    if remaining.series is None:
        return (SparkSnapshot(stale=True) if remaining.stale else None), problems
    next_wave = _by_label(got[SPARK_NEXT_WAVE_TASKS], "app")
    # Absent for an application none of whose active stages has completed a task yet.
    timed = got.get(SPARK_TASK_SECONDS)
    task_seconds = _by_label(timed, "app") if timed is not None else {}
    apps = tuple(
        AppDemand(
            app_id=app,
            remaining_tasks=_count(value),
            next_wave_tasks=_count(next_wave.get(app)),
            task_seconds=task_seconds.get(app),
        )
        for app, value in sorted(_by_label(remaining, "app").items())
        if value > 0 or app in next_wave
    )
    alive: int | None = None
    workers = got[SPARK_POOL_WORKERS]
    if workers.series is not None:
        alive = _count(sum(s.value for s in workers.series if s.labels.get("state") == "alive"))
    return SparkSnapshot(apps=apps, workers_alive=alive), problems


def _selector_of(ext: ExternalMetric) -> Selector:
    return ext.metric.selector.to_selector() if ext.metric.selector else Selector(())


def _models(policy: ScalingPolicy) -> tuple[str | None, str | None]:
    """The Trino cluster and the Spark pool whose catalog figures the policy's queue models read."""
    spec = policy.spec
    types = {m.type for m in spec.metrics}
    trino = spec.target.trino.cluster if types & _TRINO_TYPES and spec.target.trino is not None else None
    spark = spec.target.spark.pool if "SparkExecutors" in types and spec.target.spark is not None else None
    return trino, spark


def reads_of(policy: ScalingPolicy) -> Iterator[tuple[str, str, Selector]]:
    """Every (namespace, metric, selector) :func:`observe` reads for ``policy``, for a pass to ask for
    them all at once before the policies run."""
    namespace = policy.metadata.namespace or "default"
    for m in policy.spec.metrics:
        if m.external is not None:
            yield namespace, m.external.metric.name, _selector_of(m.external)
    cluster, pool = _models(policy)
    if cluster is not None:
        sel = _equals("cluster", cluster)
        yield from ((namespace, name, sel) for name in (*_TRINO_METRICS, *_COUNTERS))
    if pool is not None:
        sel = _equals("pool", pool)
        yield from ((namespace, name, sel) for name in _spark_metrics(policy))


async def observe(
    policy: ScalingPolicy,
    reader: MetricReader,
    now: float,
    current_replicas: int,
    ready_replicas: int,
    *,
    prometheus: Mapping[int, ValueReading | None] | None = None,
) -> Observed:
    """Read every signal ``policy`` names; ``prometheus`` holds the values of its Prometheus metrics (by
    metric index) when the caller evaluated them."""
    spec = policy.spec
    namespace = policy.metadata.namespace or "default"
    values: list[ValueReading | None] = [None] * len(spec.metrics)
    problems: list[str] = []
    external = [(i, m.external) for i, m in enumerate(spec.metrics) if m.external is not None]
    reads = await asyncio.gather(
        *(reader.read(namespace, ext.metric.name, _selector_of(ext), now) for _, ext in external)
    )
    for (i, ext), reading in zip(external, reads, strict=True):
        if reading.series is None:
            problems.append(f"{ext.metric.name}: {reading.error}")
            values[i] = ValueReading(None, stale=reading.stale) if reading.stale else None
        elif not reading.series:
            # The HPA's own answer to an empty list: the metric is missing, not 0 (a mean or a limit
            # with no series has no value).
            problems.append(f"{ext.metric.name}: no metrics returned from external metrics API")
        else:
            values[i] = ValueReading(reading.total)
    for i, value in (prometheus or {}).items():
        if 0 <= i < len(values):
            values[i] = value
    trino: TrinoSnapshot | None = None
    spark: SparkSnapshot | None = None
    cluster, pool = _models(policy)
    if cluster is not None:
        trino, more = await _trino(reader, namespace, cluster, now)
        problems += more
    if pool is not None:
        spark, more = await _spark(reader, namespace, pool, now, _spark_metrics(policy))
        problems += more
    obs = Observation(
        now=now,
        current_replicas=current_replicas,
        values=tuple(values),
        trino=trino,
        spark=spark,
        ready_replicas=ready_replicas,
    )
    return Observed(obs, tuple(problems))
