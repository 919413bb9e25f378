"""The simulator's baselines as users run them, the lower bound, and the same-service-level search."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
import yaml

from autoscaler.decision.hpa_behavior import Behavior, RatePolicy, ScalingRules
from autoscaler.sim import Load, simulate
from autoscaler.sim.baselines import (
    BASELINES,
    EXAMPLE_HPA_BEHAVIOR,
    EXAMPLE_KEDA_BEHAVIOR,
    HpaCpu,
    HpaQueue,
    Keda,
    KedaChart,
    baseline,
    lower_bound_worker_hours,
    make_baseline,
)
from autoscaler.sim.iso_slo import Point, cheapest_meeting, meets
from autoscaler.sim.load import parse_service
from autoscaler.sim.run import Result
from autoscaler.sim.trino import ClusterView
from autoscaler.sim.trino_work import WorkConfig

ROOT = Path(__file__).resolve().parents[3]


def _load(n: int = 50, work: float = 40.0) -> Load:
    arrivals = np.arange(n, dtype=np.float64) * 20.0
    return Load(arrivals, np.full(n, work), np.zeros(n, np.int64), duration=float(n * 20 + 600))


def _view(**fields: Any) -> ClusterView:
    base: dict[str, Any] = {
        "now": 0.0,
        "queued": 0,
        "running": 0,
        "required_workers": 0,
        "current_workers": 1,
        "ready_workers": 1,
        "draining_workers": 0,
        "busy_fraction": 0.0,
        "completed": 0,
        "arrived": 0,
        "slots_per_worker": 1,
        "limit_bound_queued": 0,
        "cores_per_worker": 8.0,
    }
    base.update(fields)
    return ClusterView(**base)


@pytest.mark.parametrize("name", [b for b in BASELINES if b != "static"])
def test_every_autoscaling_baseline_removes_workers_with_the_charts_graceful_shutdown(name: str) -> None:
    policy = make_baseline(name, _load(), WorkConfig())
    assert policy.scale_down == "shutdown"


def _rules(doc: dict[str, Any] | None) -> ScalingRules | None:
    if doc is None:
        return None
    return ScalingRules(
        stabilization_window_seconds=doc.get("stabilizationWindowSeconds"),
        select_policy=doc.get("selectPolicy"),
        policies=tuple(RatePolicy(p["type"], p["value"], p["periodSeconds"]) for p in doc["policies"]),
    )


def _behavior(doc: dict[str, Any]) -> Behavior:
    return Behavior(scale_up=_rules(doc.get("scaleUp")), scale_down=_rules(doc.get("scaleDown")))


def test_hpa_queue_is_the_example_hpa_as_written() -> None:
    doc = yaml.safe_load((ROOT / "deploy/examples/hpa/hpa-trino-workers.yaml").read_text())
    spec = doc["spec"]
    written = [
        (
            m["external"]["metric"]["name"],
            m["external"]["target"]["type"],
            float(m["external"]["target"]["averageValue"]),
        )
        for m in spec["metrics"]
    ]
    hpa = HpaQueue(4.0)
    assert [(t.metric, t.kind, t.value) for t in hpa.targets] == written
    assert hpa.behavior == _behavior(spec["behavior"]) == EXAMPLE_HPA_BEHAVIOR
    assert (hpa.min_replicas, HpaQueue(4.0, max_replicas=spec["maxReplicas"]).max_replicas) == (
        spec["minReplicas"],
        spec["maxReplicas"],
    )


def test_keda_is_the_example_scaled_object_as_written() -> None:
    doc = yaml.safe_load((ROOT / "deploy/examples/keda/scaledobject-trino-workers.yaml").read_text())
    spec = doc["spec"]
    written = []
    for trigger in spec["triggers"]:
        assert trigger["type"] == "metrics-api"
        metric = urlparse(trigger["metadata"]["url"]).path.rsplit("/", 1)[-1]
        assert parse_qs(urlparse(trigger["metadata"]["url"]).query)["labelSelector"] == ["cluster=adhoc"]
        written.append((metric, "AverageValue", float(trigger["metadata"]["targetValue"])))
    keda = Keda(4.0)
    assert [(t.metric, t.kind, t.value) for t in keda.targets] == written
    advanced = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert keda.behavior == _behavior(advanced) == EXAMPLE_KEDA_BEHAVIOR
    assert keda.min_replicas == spec["minReplicaCount"]


def test_the_charts_keda_example_only_scales_from_zero() -> None:
    chart = KedaChart(max_replicas=20)
    # A query waits for a worker at 0: Trino reports the configured required workers (1).
    assert chart.desired(0.0, _view(current_workers=0, ready_workers=0, queued=50, required_workers=1)) == 1
    # Once a worker is up, RequiredWorkers is 0 whatever the queue: nothing asks for a second worker.
    busy = _view(current_workers=1, ready_workers=1, queued=500, running=40, busy_fraction=1.0)
    assert all(chart.desired(t, dataclasses.replace(busy, now=t)) == 1 for t in range(30, 300, 15))
    # After the cooldown without activity KEDA takes the target back to 0, queue or not.
    assert chart.desired(315.0, dataclasses.replace(busy, now=315.0)) == 0


def test_hpa_cpu_reads_the_rate_of_the_cpu_counter_over_its_period_not_an_instant() -> None:
    hpa = HpaCpu("shutdown", 50.0, max_replicas=20)
    first = _view(now=0.0, current_workers=4, ready_workers=4, busy_fraction=1.0, busy_core_seconds_total=0.0)
    assert hpa.desired(0.0, first) == 1  # the workload's own count before the first pass
    # 4 workers x 8 cores; 240 core-seconds in 15 s = 16 busy cores = 50 %: no change, though every core is
    # busy at this instant.
    steady = dataclasses.replace(first, now=15.0, busy_core_seconds_total=240.0)
    assert hpa.desired(15.0, steady) == 4
    # 480 core-seconds in the next 15 s: 100 % -> twice the workers.
    hot = dataclasses.replace(first, now=30.0, busy_fraction=0.0, busy_core_seconds_total=720.0)
    assert hpa.desired(30.0, hot) == 8


def test_lower_bound_is_the_work_over_one_workers_cores() -> None:
    load = _load(50, 40.0)
    assert lower_bound_worker_hours(load, WorkConfig(cores_per_worker=8)) == pytest.approx(50 * 40 / 8 / 3600)
    for name in BASELINES:
        result = simulate(load, make_baseline(name, load, WorkConfig(startup_seconds=0)), WorkConfig())
        if result.killed == 0 and result.queued_at_end == 0 and result.running_at_end == 0:
            assert result.worker_hours >= lower_bound_worker_hours(load, WorkConfig()), name


def test_each_family_sweeps_the_range_the_benchmark_names() -> None:
    load = _load()
    config = WorkConfig(max_workers=20)
    assert baseline("hpa-cpu", load, config).sweep == (40.0, 50.0, 60.0, 70.0, 80.0)
    assert baseline("hpa-queue", load, config).sweep[0] == 1.0
    assert baseline("hpa-queue", load, config).sweep[-1] == 8.0
    static = baseline("static", load, config)
    assert static.default in static.sweep
    assert all(1 <= s <= 20 and s == int(s) for s in static.sweep)


@pytest.fixture(scope="module")
def template() -> Result:
    load = _load(5)
    return simulate(load, make_baseline("static", load, WorkConfig()), WorkConfig())


def _result(template: Result, hours: float, p95: float, misses: int = 0, latency: float = 10.0) -> Result:
    return dataclasses.replace(
        template, worker_hours=hours, queue_wait_p95_s=p95, slo_misses=misses, latency_p95_s=latency
    )


@pytest.mark.parametrize(
    ("candidate", "ok"),
    [
        ((10.0, 2.0, 3, 20.0), True),  # the same level
        ((10.0, 2.5, 3, 20.0), True),  # within the wait slack
        ((10.0, 2.6, 3, 20.0), False),  # waits longer
        ((10.0, 2.0, 4, 20.0), False),  # misses the SLO more often
        ((10.0, 2.0, 3, 20.4), True),  # within the latency slack
        ((10.0, 2.0, 3, 20.5), False),  # queries take longer
    ],
)
def test_meets_compares_wait_misses_and_latency(
    template: Result, candidate: tuple[float, float, int, float], ok: bool
) -> None:
    reference = _result(template, 10.0, 2.0, 3, 20.0)
    assert meets(_result(template, *candidate), reference) is ok


def test_cheapest_meeting_refines_between_grid_points(template: Result) -> None:
    # A made-up baseline: the setting is queries per worker, cost falls and wait rises as it grows; the
    # policy's level is met up to a setting of 5.5 exactly.
    def run(setting: float) -> Result:
        return _result(template, 100.0 / setting, 0.0 if setting <= 5.5 else 30.0)

    family = dataclasses.replace(baseline("hpa-queue", _load(), WorkConfig()), build=lambda s: HpaQueue(s))
    points = [Point(s, run(s)) for s in family.sweep]
    reference = _result(template, 15.0, 0.0)
    found, extra = cheapest_meeting(family, points, reference, run, refine=4)
    # The grid's best is 4; bisection toward 6 finds 5.5 (4 -> 5 -> 5.5 -> 5.75 fails -> 5.625 fails).
    assert found.setting == pytest.approx(5.5)
    assert found.cost_ratio == pytest.approx(15.0 / (100.0 / 5.5))
    assert [p.setting for p in extra] == [5.0, 5.5, 5.75, 5.625]
    nothing, _ = cheapest_meeting(family, points, _result(template, 15.0, 0.0, latency=1.0), run)
    assert nothing.setting is None
    assert nothing.cost_ratio is None


def test_cheapest_meeting_looks_past_a_sweep_end_that_still_meets(template: Result) -> None:
    # The level is met up to 20 queries per worker, past the sweep's end (8): the search doubles to 16
    # (met) and 32 (fails), then bisects 16..32 toward 20.
    def run(setting: float) -> Result:
        return _result(template, 100.0 / setting, 0.0 if setting <= 20.0 else 30.0)

    family = dataclasses.replace(
        baseline("hpa-queue", _load(), WorkConfig()),
        build=lambda s: HpaQueue(s),
        beyond=lambda s: s * 2 if s < 64 else None,
    )
    points = [Point(s, run(s)) for s in family.sweep]
    reference = _result(template, 2.0, 0.0)
    found, extra = cheapest_meeting(family, points, reference, run, refine=2)
    assert [p.setting for p in extra] == [16.0, 32.0, 24.0, 20.0]
    assert found.setting == 20.0
    # Without a way past the end the search stops at it, as before.
    plain = dataclasses.replace(family, beyond=None)
    stopped, none_extra = cheapest_meeting(plain, points, reference, run, refine=2)
    assert stopped.setting == max(family.sweep)
    assert none_extra == []
    # A range that ends: the search stops where ``beyond`` says so, still meeting.
    short = dataclasses.replace(family, beyond=lambda s: s * 2 if s < 16 else None)
    capped, capped_extra = cheapest_meeting(short, points, reference, run, refine=2)
    assert [p.setting for p in capped_extra] == [16.0]
    assert capped.setting == 16.0


@pytest.mark.parametrize(
    ("text", "dist", "mean"),
    [
        ("lognormal:20,1.5", "lognormal", 20 * math.exp(1.125)),
        ("exp:30", "exponential", 30.0),
        ("exponential:12.5", "exponential", 12.5),
    ],
)
def test_service_specs(text: str, dist: str, mean: float) -> None:
    spec = parse_service(text)
    assert (spec.dist, spec.mean_s) == (dist, pytest.approx(mean))


@pytest.mark.parametrize("text", ["lognormal:20", "lognormal:-1,1", "exp:0", "gamma:2,3", "exp:x", "20"])
def test_bad_service_specs_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="lognormal:MEDIAN,SIGMA"):
        parse_service(text)
