"""Baseline families shared by the Trino and the Spark benchmarks, and the iso-SLO search over either."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoscaler.sim.baselines import BASELINES, Baseline, Family, baseline
from autoscaler.sim.iso_slo import Point, cheapest_meeting, meets
from autoscaler.sim.load import from_trace_csv
from autoscaler.sim.run import Result
from autoscaler.sim.spark import PoolConfig
from autoscaler.sim.spark_baselines import POOL_BASELINES, Static, pool_baseline
from autoscaler.sim.spark_load import from_trace_csv as pool_trace
from autoscaler.sim.spark_run import simulate_pool
from autoscaler.sim.trino_work import WorkConfig

TRACE = Path("/work/shared/data/traces/crane-input0.csv")


@pytest.mark.parametrize("name", BASELINES)
def test_trino_families_build_their_policies(name: str) -> None:
    load = from_trace_csv(TRACE, mean_service_s=20.0, seed=1, mean_rate=0.2, duration=3600.0)
    family = baseline(name, load, WorkConfig())
    assert isinstance(family, Baseline)
    assert isinstance(family, Family)
    assert family.make().name == name
    assert {family.make(s).name for s in family.sweep} == {name}


@pytest.mark.parametrize("name", POOL_BASELINES)
def test_pool_families_build_their_policies(name: str) -> None:
    load = pool_trace(TRACE, seed=1, mean_rate=0.004, duration=3600.0)
    family = pool_baseline(name, load, PoolConfig())
    assert isinstance(family, Family)
    assert not isinstance(family, Baseline)
    assert family.make().name == name


def test_the_search_finds_a_pool_baselines_cheapest_static_size_at_the_policys_level() -> None:
    load = pool_trace(TRACE, seed=3, mean_rate=0.004, duration=0.1 * 86400)
    config = PoolConfig(max_workers=16)
    family = pool_baseline("static", load, config)

    def run(size: float) -> Result:
        return simulate_pool(load, Static(int(size)), config)

    # The reference is the pool at 10 workers: the cheapest size that serves as well is at most 10, and
    # any smaller size that would also do was found by bisecting between the swept sizes.
    reference = run(10.0)
    points = [Point(s, run(s)) for s in family.sweep]
    found, extra = cheapest_meeting(family, points, reference, run)
    assert found.setting is not None
    assert found.setting <= 10.0
    assert found.cost_ratio == pytest.approx(reference.worker_hours / (found.worker_hours or 1.0))
    assert found.cost_ratio is not None
    assert found.cost_ratio >= 1.0 - 1e-9
    tried = {p.setting: p.result for p in [*points, *extra]}
    smaller = [s for s in tried if s < found.setting]
    assert all(not meets(tried[s], reference) for s in smaller)
