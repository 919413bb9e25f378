"""Sizing Trino on work (autoscaler/decision/work_sizing.py): the maths against the work model, and the engine using it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from autoscaler.decision.engine import EngineState, Observation, TrinoSnapshot, decide
from autoscaler.decision.queueing import GroupLoad, QueueObservation
from autoscaler.decision.work_sizing import (
    MAX_UTILISATION,
    WorkLoad,
    concurrency_limit,
    cpu_per_query,
    query_share,
    wait_exceeds,
    workers_for_work,
)
from autoscaler.policy.loading import load_policies, parse_policies
from autoscaler.sim import simulate
from autoscaler.sim.baselines import Static
from autoscaler.sim.engine_policy import QueuescalePolicy
from autoscaler.sim.load import from_rate_curve, from_trace_csv
from autoscaler.sim.trino_work import WorkConfig
from core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
WORK_POLICY = ROOT / "benchmarks" / "policies" / "trino-workers-work.yaml"
TRACE = Path("/work/shared/data/traces/crane-input15.csv")
CLUSTER = WorkConfig(cores_per_worker=8, query_parallelism=0.1, group_limits=(20,), startup_seconds=0)


def _measured(workers: int, dist: str, sigma: float = 1.0) -> tuple[float, float, WorkLoad]:
    """P(wait > 0) and P(wait > 10 s) on ``workers`` static workers of the work model at 70 % of 10
    workers' cores, and the load as the sizing sees it."""
    mean = 60.0
    rate = 0.7 * 8 * 10 / mean
    load = from_rate_curve(
        np.zeros(1), np.full(1, rate), 150_000.0, mean_service_s=mean, seed=3, service_dist=dist, sigma=sigma
    )  # type: ignore[arg-type]
    waits = simulate(load, Static(workers), CLUSTER).waits
    seen = WorkLoad(rate, float(load.service.mean()), 0.1, 20)
    return float(np.mean(waits > 0)), float(np.mean(waits > 10)), seen


@pytest.mark.parametrize("workers", [8, 9])
def test_the_chance_to_queue_matches_the_work_model(workers: int) -> None:
    queued, _, load = _measured(workers, "exponential")
    assert wait_exceeds(workers, 8, load, 0.0) == pytest.approx(queued, rel=0.25, abs=0.004)


@pytest.mark.parametrize("workers", [8, 9])
def test_heavy_tailed_work_is_sized_on_the_safe_side(workers: int) -> None:
    _, long_waits, load = _measured(workers, "lognormal", 1.5)
    assert wait_exceeds(workers, 8, load, 10.0) >= long_waits


def test_workers_for_work_is_the_fewest_meeting_the_target() -> None:
    load = WorkLoad(0.9, 60.0, 0.1, 20)
    sizing = workers_for_work(load, 8, 10.0, 0.95)
    assert wait_exceeds(sizing.workers, 8, load, 10.0) <= 0.05
    assert wait_exceeds(sizing.workers - 1, 8, load, 10.0) > 0.05
    assert "8 cores" in sizing.reason
    # More work arriving never needs fewer workers; none arriving needs none.
    more = workers_for_work(WorkLoad(1.8, 60.0, 0.1, 20), 8, 10.0, 0.95)
    assert more.workers > sizing.workers
    assert workers_for_work(WorkLoad(0.0, 60.0, 0.1, 20), 8, 10.0, 0.95).workers == 0


def test_without_a_limit_nothing_queues_and_utilisation_is_capped() -> None:
    sizing = workers_for_work(WorkLoad(1.0, 64.0, 0.1, None), 8, 10.0, 0.95)
    assert sizing.workers == math.ceil(64.0 / 8 / MAX_UTILISATION)
    assert sizing.utilisation <= MAX_UTILISATION


def test_an_overloaded_limit_asks_for_every_worker_allowed() -> None:
    # One query at a time, each alone using a tenth of the cluster: the limit caps throughput at any size
    # below the one where a tenth of the cores serves the arrivals.
    sizing = workers_for_work(WorkLoad(1.0, 60.0, 0.1, 1), 8, 10.0, 0.95, max_workers=30)
    assert sizing.workers == 30
    assert sizing.p_exceed == 1.0


@pytest.mark.parametrize(
    ("cpu", "run", "running", "expected"),
    [
        (40.0, 5.0, 1.0, 0.1),  # 8 CPU-s a second over 80 cores: a tenth, the cores not full
        (40.0, 6.0, 12.0, None),  # 12 running at 1/12 of the cores each: they were full, nothing learnt
        (40.0, 0.0, 1.0, None),
    ],
)
def test_query_share_is_learnt_only_while_the_cores_are_not_full(
    cpu: float, run: float, running: float, expected: float | None
) -> None:
    share = query_share(cpu, run, running, 10, 8)
    assert share == (pytest.approx(expected) if expected is not None else None)


def test_cpu_per_query_and_the_concurrency_limit_from_what_trino_reports() -> None:
    history = [
        QueueObservation(0.0, 0, 3, completed_total=100, cpu_seconds_total=5_000),
        QueueObservation(60.0, 0, 3, completed_total=110, cpu_seconds_total=5_600),
    ]
    assert cpu_per_query(history) == pytest.approx(60.0)
    assert cpu_per_query([QueueObservation(0.0, 0, 3, completed_total=1)]) is None
    groups = [GroupLoad("global", 3, 20, 20), GroupLoad("global.adhoc", 3, 20, 15), GroupLoad("etl", 0, 1, 5)]
    assert concurrency_limit(groups) == 25
    assert concurrency_limit([]) is None


def test_sizing_on_work_needs_the_cores_of_a_worker() -> None:
    doc: dict[str, Any] = yaml.safe_load(WORK_POLICY.read_text().split("\n", 3)[3])
    del doc["spec"]["target"]["trino"]["coresPerWorker"]
    with pytest.raises(ConfigError, match=r"queueWait\.sizing.*coresPerWorker"):
        parse_policies(yaml.safe_dump(doc), "policy.yaml")


def _observe(now: float, completed: float, cpu: float, running: int, queued: int = 0) -> Observation:
    snap = TrinoSnapshot(
        queued=queued,
        running=running,
        completed_total=completed,
        started_total=completed + running,
        cpu_seconds_total=cpu,
        groups=(GroupLoad("global", queued, running, 20),),
    )
    return Observation(now=now, current_replicas=4, trino=snap, ready_replicas=4)


def test_the_engine_sizes_on_the_cpu_seconds_arriving() -> None:
    policy = load_policies(WORK_POLICY)[0][0]
    state = EngineState()
    decision, state = decide(policy, _observe(0.0, 0, 0, 6), state)
    first = next(p for p in decision.proposals if p.type == "QueueWait")
    # No history yet: the queries present, one per core.
    assert "too little history" in first.reason
    assert first.replicas == 1
    # 0.9 queries/s of 60 CPU-s over two minutes: 54 cores busy, as the work model sizes it.
    for step in range(1, 9):
        t = 15.0 * step
        decision, state = decide(policy, _observe(t, 0.9 * t, 54.0 * t, 6), state)
    proposal = next(p for p in decision.proposals if p.type == "QueueWait")
    assert proposal.reason.startswith("work: λ=0.9/s × 60 CPU-s")
    queue_wait = policy.spec.metrics[0].queue_wait
    assert queue_wait is not None
    percentile = float(queue_wait.percentile) / 100
    expected = workers_for_work(
        WorkLoad(0.9, 60.0, state.learned_query_share or 0.1, 20), 8, 10.0, percentile
    )
    assert proposal.replicas == expected.workers


def test_sized_on_work_the_policy_meets_its_wait_target_where_slots_do_not() -> None:
    policies = {
        p.metadata.name: p for p, _ in load_policies(ROOT / "benchmarks" / "policies" / "trino-workers.yaml")
    }
    work = load_policies(WORK_POLICY)[0][0]
    load = from_trace_csv(
        TRACE, mean_service_s=61.6, service_dist="lognormal", sigma=1.5, seed=2, rate_scale=1 / 21_855,
        duration=86_400.0,
    )  # fmt: skip
    config = WorkConfig(
        cores_per_worker=8, query_parallelism=0.1, group_limits=(20,), startup_seconds=60, max_workers=20
    )
    slots = simulate(load, QueuescalePolicy(policies["queuescale"], config), config)
    on_work = simulate(load, QueuescalePolicy(work, config), config)
    assert on_work.queue_wait_p95_s <= 10.0
    assert slots.queue_wait_p95_s > 10.0
    assert on_work.killed == 0
