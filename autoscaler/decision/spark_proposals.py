"""Proposals of SparkExecutors metrics: pool workers for a standalone pool's applications, or the executors
of a spark-operator application's next run (the peak a run needed).
"""

from __future__ import annotations

from dataclasses import replace

from autoscaler.decision.signals import Observation
from autoscaler.decision.spark_sizing import AppDemand, backlog_workers, pool_workers_needed
from autoscaler.decision.state import EngineState, Plan, Proposal
from core.spark_executors import executors_needed

__all__ = ["spark_proposals"]


def _app_executors(app: AppDemand, executor_cores: int, ratio: float) -> int:
    return executors_needed(
        app.remaining_tasks + (app.next_wave_tasks if app.include_next_wave else 0),
        app.executor_cores if app.executor_cores is not None else executor_cores,
        app.task_cpus,
        min(app.allocation_ratio, ratio),
        app.min_executors,
        app.max_executors,
        pending_speculative=app.pending_speculative,
    )


def spark_proposals(
    plan: Plan, obs: Observation, state: EngineState, out: list[Proposal | None]
) -> EngineState:
    spec = plan.policy.spec
    for i, metric in enumerate(spec.metrics):
        section = metric.spark_executors
        if section is None:
            continue
        snap = obs.spark
        if snap is None or snap.stale:
            why = "missing: no Spark poll" if snap is None else "stale: the last Spark poll is too old to use"
            out[i] = Proposal(plan.names[i], metric.type, None, None, why)
            continue
        spark = spec.target.spark
        assert spark is not None  # the model requires it for Spark kinds
        ratio = section.allocation_ratio
        apps = snap.apps
        if ratio < 1.0:
            # The metric's ratio caps every application's own executorAllocationRatio.
            apps = tuple(replace(a, allocation_ratio=min(a.allocation_ratio, ratio)) for a in apps)
        if not plan.is_spark_app:
            assert spark.cores_per_worker is not None
            sizing = pool_workers_needed(
                apps, spark.cores_per_worker, spark.executor_cores, section.executors_per_worker
            )
            alive = f"; {snap.workers_alive} workers alive" if snap.workers_alive is not None else ""
            replicas, reason = sizing.workers, sizing.reason + alive
            measured = [a.task_seconds for a in apps if a.task_seconds is not None]
            if measured:
                state = replace(state, spark_task_seconds=sum(measured) / len(measured))
            if section.backlog_seconds is not None and replicas > obs.current_replicas:
                per_worker = section.executors_per_worker
                ready = snap.workers_alive if snap.workers_alive is not None else obs.ready_replicas
                backlog = backlog_workers(
                    apps,
                    ready_workers=ready or 0,
                    worker_cores=per_worker * spark.executor_cores if per_worker else spark.cores_per_worker,
                    startup_seconds=spec.target.startup_seconds,
                    backlog_seconds=section.backlog_seconds,
                    fallback_task_seconds=state.spark_task_seconds,
                )
                if backlog is not None and backlog.workers < replicas:
                    # A worker started for tasks the pool finishes before it is ready only costs its start-up.
                    replicas = max(obs.current_replicas, backlog.workers)
                    reason += f"; on the work: {backlog.reason}; → {replicas} workers"
            out[i] = Proposal(plan.names[i], metric.type, float(sizing.executors), replicas, reason)
            continue
        need = sum(_app_executors(a, spark.executor_cores, ratio) for a in apps)
        run_peak, last_peak = state.spark_run_peak, state.spark_last_peak
        if apps:
            run_peak = max(run_peak or 0, need)
            replicas = max(run_peak, last_peak or 0)
            why = (
                f"a run needs {need} executors now (peak {run_peak} this run"
                + (f", {last_peak} the previous run" if last_peak is not None else "")
                + f") → next run {replicas} executors"
            )
        else:
            if run_peak is not None:
                last_peak, run_peak = run_peak, None
            if last_peak is not None:
                replicas = last_peak
                why = f"no run active; the last run needed {last_peak} executors → next run {replicas}"
            else:
                replicas = obs.current_replicas
                why = f"no run observed yet: keep {replicas} executors"
        out[i] = Proposal(plan.names[i], metric.type, float(need), replicas, why)
        state = replace(state, spark_run_peak=run_peak, spark_last_peak=last_peak)
    return state
