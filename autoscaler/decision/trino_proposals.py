"""Proposals of Trino's QueueWait and RequiredWorkers metrics: sized on slots by Erlang C
(:mod:`autoscaler.decision.queueing`) or on work (:mod:`autoscaler.decision.work_sizing`), from rates over a
sliding window of the coordinator's counters; queries held by a concurrency limit are left out.
"""

from __future__ import annotations

import math
from dataclasses import replace

from autoscaler.decision.queueing import (
    QueueObservation,
    TrinoLoad,
    estimate_rates,
    trino_workers_needed,
)
from autoscaler.decision.signals import Observation, TrinoSnapshot
from autoscaler.decision.state import EngineConfig, EngineState, Plan, Proposal
from autoscaler.decision.work_sizing import (
    DEFAULT_SHARE,
    WorkLoad,
    concurrency_limit,
    cpu_per_query,
    query_share,
    workers_for_work,
)

__all__ = ["trino_proposals", "work_proposals"]


def trino_proposals(
    plan: Plan,
    obs: Observation,
    state: EngineState,
    config: EngineConfig,
    out: list[Proposal | None],
) -> tuple[EngineState, bool, str | None]:
    metrics = plan.policy.spec.metrics
    trino_indices = [i for i, m in enumerate(metrics) if m.type in ("QueueWait", "RequiredWorkers")]
    if not trino_indices:
        return state, False, None
    snap = obs.trino
    if snap is None or snap.stale:
        why = "missing: no Trino poll" if snap is None else "stale: the last Trino poll is too old to use"
        for i in trino_indices:
            out[i] = Proposal(plan.names[i], metrics[i].type, None, None, why)
        return state, False, None
    current = QueueObservation(
        obs.now,
        float(snap.queued),
        float(snap.running),
        snap.completed_total,
        snap.started_total,
        snap.cpu_seconds_total,
    )
    cutoff = obs.now - config.rate_window_seconds
    history = tuple(o for o in state.queue_history if o.at >= cutoff and o.at < obs.now)
    limit_bound = False
    limit_reason: str | None = None
    learned = state.learned_service_seconds
    if plan.work_targets:
        state = work_proposals(plan, obs, snap, (*history, current), state, config, out)
    if plan.trino_targets:
        hint = config.service_seconds_hint if config.service_seconds_hint is not None else learned
        rates = estimate_rates(
            (*history, current), obs.now, config.rate_window_seconds, service_seconds_hint=hint
        )
        if rates is not None and rates.throughput is not None and rates.throughput > 0:
            learned = rates.service_seconds
        source = ""
        if rates is not None:
            source = f"; rates from {rates.method} over {rates.span_seconds:g}s"
            if "configured service time" in rates.method or (rates.throughput == 0 and hint is not None):
                source += (
                    " (service time configured)"
                    if config.service_seconds_hint is not None
                    else " (service time learnt earlier from the counters)"
                )
        load = TrinoLoad(snap.running, snap.queued, 0, rates, snap.groups)
        for i, target in plan.trino_targets.items():
            sizing = trino_workers_needed(load, target)
            out[i] = Proposal(
                plan.names[i], "QueueWait", float(snap.queued), sizing.workers, sizing.reason + source
            )
            if sizing.limit_bound:
                limit_bound = True
                limit_reason = (
                    f"{sizing.limit_bound_queued} queued queries are limit-bound (a resource group is at its "
                    "hardConcurrencyLimit): more workers would not start them, so the engine does not scale for them"
                )
    for i in trino_indices:
        if metrics[i].type == "RequiredWorkers":
            n = snap.required_workers
            why = f"queries wait for {n} required workers" if n > 0 else "no query waits for required workers"
            out[i] = Proposal(plan.names[i], "RequiredWorkers", float(n), n, why)
    if not history or obs.now - history[-1].at >= config.rate_sample_seconds:
        history = (*history, current)
    return replace(state, queue_history=history, learned_service_seconds=learned), limit_bound, limit_reason


def work_proposals(
    plan: Plan,
    obs: Observation,
    snap: TrinoSnapshot,
    window: tuple[QueueObservation, ...],
    state: EngineState,
    config: EngineConfig,
    out: list[Proposal | None],
) -> EngineState:
    """QueueWait metrics with sizing Work: the CPU-seconds arriving, shared by the workers' cores
    (:mod:`autoscaler.decision.work_sizing`). What the window cannot tell (no query ended in it) is taken from the
    last measurement; with none yet, the queries present are packed at one per core (a cluster is never
    sized blind) until the counters have moved."""
    metrics = plan.policy.spec.metrics
    rates = estimate_rates(window, obs.now, config.rate_window_seconds)
    cpu = cpu_per_query(window) or state.learned_cpu_per_query
    ready = obs.ready_replicas if obs.ready_replicas is not None else obs.current_replicas
    share = state.learned_query_share
    for i, (target_wait, percentile, cores) in plan.work_targets.items():
        if rates is not None and cpu is not None and rates.service_seconds is not None:
            seen = query_share(cpu, rates.service_seconds, rates.mean_running, ready, cores)
            if seen is not None:
                share = seen
        if rates is None or cpu is None:
            demand = snap.running + snap.queued
            workers = math.ceil(demand / cores) if demand > 0 else 0
            missing = "too little history" if rates is None else "no query's CPU measured yet"
            why = f"work: {missing}; {demand} queries present packed at one per core → {workers} workers"
        else:
            load = WorkLoad(rates.arrival_rate, cpu, share or DEFAULT_SHARE, concurrency_limit(snap.groups))
            sizing = workers_for_work(
                load, cores, target_wait, percentile, max_workers=max(1, plan.policy.spec.max_replicas)
            )
            workers, why = sizing.workers, sizing.reason
        n = snap.required_workers
        if n > workers:
            workers, why = n, f"{why}; queries wait for {n} required workers"
        out[i] = Proposal(plan.names[i], metrics[i].type, float(snap.queued), workers, why)
    return replace(state, learned_cpu_per_query=cpu, learned_query_share=share)
