"""The simulator's speed-ups change nothing: pinned figures of a short sweep, parallel runs equal to serial
ones, and the stepping loop deciding and sampling at exactly the steps a plain scan would."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autoscaler.policy.loading import load_policies
from autoscaler.sim import scenario as scenario_module
from autoscaler.sim.baselines import BASELINES, HpaQueue, Keda
from autoscaler.sim.load import parse_service
from autoscaler.sim.run import Result, Sample, result_json, simulate, step_through
from autoscaler.sim.scenario import (
    STEP_SECONDS,
    Runs,
    load_scenario,
    run_scenario,
    run_sweep,
    sweep_keys,
    work_config_for,
)
from autoscaler.sim.trino import ClusterView

ROOT = Path(__file__).resolve().parents[3]
POLICY = ROOT / "benchmarks" / "policies" / "trino-workers.yaml"
TRACE = Path("/work/shared/data/traces/crane-input0.csv")


def _sweep(jobs: int) -> dict[str, Any]:
    policies = [p for p, _ in load_policies(POLICY)]
    config = work_config_for(policies[0])
    scenario = load_scenario(
        TRACE,
        seed=3,
        days=0.25,
        rate_scale=None,
        mean_rate=0.3,
        service=parse_service("lognormal:20,1.5"),
    )
    with Runs(scenario, policies, config, seed=3, jobs=jobs) as runs:
        results = run_scenario(
            scenario,
            policies,
            BASELINES,
            config,
            seed=3,
            runs=runs,
            then=sweep_keys(scenario, BASELINES, config),
        )
        references = {p.metadata.name: results[p.metadata.name] for p in policies}
        sweep = run_sweep(scenario, references, BASELINES, config, seed=3, runs=runs)
    return {
        "results": result_json(results),
        "iso": {p: {n: iso.as_json() for n, iso in found.items()} for p, found in sweep.iso_slo.items()},
        "points": {
            n: [(p.setting, result_json({n: p.result})[n]) for p in pts] for n, pts in sweep.points.items()
        },
    }


@pytest.fixture(scope="module")
def serial() -> dict[str, Any]:
    return _sweep(1)


def test_a_short_sweep_gives_the_figures_it_always_gave(serial: dict[str, Any]) -> None:
    # Taken from the simulator before any speed-up; exact, as every optimisation must keep every bit.
    results = serial["results"]
    assert results["hpa-cpu"]["worker_hours"] == 79.8125
    assert results["hpa-queue"]["worker_hours"] == round(22.770251175713057, 6)
    assert results["keda-chart"]["queue_wait_p95_s"] == round(72.21566719814382, 6)
    assert results["keda-chart"]["slo_misses"] == 1087
    assert results["static"]["worker_hours"] == 48.0
    assert results["queuescale"]["worker_hours"] == round(21.915880505978613, 6)
    assert (results["queuescale"]["slo_misses"], results["queuescale"]["scale_actions"]) == (4, 64)
    iso = serial["iso"]
    assert (iso["queuescale"]["hpa-queue"]["setting"], iso["queuescale"]["hpa-queue"]["runs"]) == (4.75, 8)
    assert iso["queuescale-forecast"]["hpa-queue"]["runs"] == 11
    assert iso["queuescale"]["hpa-cpu"]["worker_hours"] == round(41.13972910727727, 6)
    assert iso["queuescale"]["static"]["setting"] == 4.0
    assert iso["queuescale"]["keda-chart"]["setting"] is None
    settings = [s for s, _ in serial["points"]["hpa-queue"]]
    assert settings == [1.0, 2.0, 4.0, 4.5, 4.75, 4.78125, 4.8125, 4.875, 5.0, 6.0, 8.0]


def test_parallel_runs_give_the_serial_figures_in_the_same_order(serial: dict[str, Any]) -> None:
    parallel = _sweep(2)
    assert parallel == serial
    assert list(parallel["results"]) == list(serial["results"])


def _plain_scan(end: float, step: float, period: float, max_samples: int) -> tuple[list[float], list[float]]:
    """The stepping loop as it was: every step advanced, the decisions and samples it made."""
    steps = math.ceil(end / step)
    sample_every = max(1, math.ceil((steps + 1) / max_samples))
    next_eval = period
    decided: list[float] = []
    sampled: list[float] = []
    for k in range(1, steps + 1):
        now = min(k * step, end)
        if now + 1e-9 >= next_eval:
            decided.append(now)
            while next_eval <= now + 1e-9:
                next_eval += period
        if k % sample_every == 0 or k == steps:
            sampled.append(now)
    return decided, sampled


@pytest.mark.parametrize(
    ("end", "step", "period", "max_samples"),
    [
        (86_400.0, 5.0, 15.0, 2000),
        (86_400.0, 5.0, 3600.0, 2000),
        (1000.0, 5.0, 5.0, 7),
        (1003.7, 5.0, 15.0, 2000),
        (999.9, 0.1, 0.3, 100),
        (600.0, 7.0, 3.0, 50),
        (50.0, 5.0, 1000.0, 3),
        (0.0, 5.0, 15.0, 10),
    ],
)
def test_step_through_decides_and_samples_where_a_plain_scan_does(
    end: float, step: float, period: float, max_samples: int
) -> None:
    decided: list[float] = []
    advanced: list[float] = []

    def sample(now: float) -> Sample:
        return Sample(0, 0, 0, 0, 0, 0, 0.0)

    trace = step_through(
        advance=advanced.append,
        decide=decided.append,
        sample=sample,
        end=end,
        step_seconds=step,
        period=period,
        max_samples=max_samples,
    )
    want_decided, want_sampled = _plain_scan(end, step, period, max_samples)
    assert decided == want_decided
    assert [p[0] for p in trace.points] == want_sampled
    assert trace.steps == math.ceil(end / step)
    # The model is advanced before each decision and sample, in time order, and to the end.
    assert advanced == sorted(set(want_decided) | set(want_sampled))


def test_the_command_writes_the_same_result_json_whatever_its_jobs(tmp_path: Path) -> None:
    outputs = []
    for jobs in ("1", "2"):
        out = tmp_path / jobs
        done = subprocess.run(
            [
                *(sys.executable, "-m", "queuescale", "simulate", "--policy", POLICY, "--trace", TRACE),
                *("--days", "0.05", "--seed", "2", "--sweep", "--no-progress", "--jobs", jobs, "--out", out),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        outputs.append((out / "result.json").read_bytes())
    assert outputs[0] == outputs[1]


def test_jobs_must_be_positive() -> None:
    policies = [p for p, _ in load_policies(POLICY)]
    scenario = load_scenario(
        TRACE, seed=1, days=0.01, rate_scale=None, mean_rate=0.3, service=parse_service("exp:10")
    )
    with pytest.raises(ValueError, match="jobs"):
        Runs(scenario, policies, work_config_for(policies[0]), jobs=0)


def test_the_example_scaled_object_shares_the_example_hpas_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs with equal signatures are run once; the shared run is the run the other policy gives alone.
    policies = [p for p, _ in load_policies(POLICY)]
    config = work_config_for(policies[0])
    scenario = load_scenario(
        TRACE, seed=1, days=0.1, rate_scale=None, mean_rate=0.3, service=parse_service("lognormal:20,1.5")
    )
    runs = Runs(scenario, policies, config, seed=1)
    alone = simulate(scenario.load, runs.policy(("baseline", "keda", 2.0)), config, step_seconds=STEP_SECONDS)
    ran: list[str] = []

    def counted(load: Any, policy: Any, *args: Any, **kwargs: Any) -> Result:
        ran.append(policy.name)
        return simulate(load, policy, *args, **kwargs)

    monkeypatch.setattr(scenario_module, "simulate", counted)
    runs.get(("baseline", "hpa-queue", 2.0))
    shared = runs.get(("baseline", "keda", 2.0))
    runs.get(("baseline", "keda", 3.0))
    assert ran == ["hpa-queue", "keda"]
    assert shared.policy == "keda"
    for field in fields(Result):
        mine, theirs = getattr(shared, field.name), getattr(alone, field.name)
        assert np.array_equal(mine, theirs) if isinstance(mine, np.ndarray) else mine == theirs, field.name


def test_a_policy_that_reads_differently_gets_its_own_signature() -> None:
    policies = [p for p, _ in load_policies(POLICY)]
    config = work_config_for(policies[0])
    scenario = load_scenario(
        TRACE, seed=1, days=0.01, rate_scale=None, mean_rate=0.3, service=parse_service("exp:10")
    )
    runs = Runs(scenario, policies, config)
    hpa, keda = (runs.policy(("baseline", name, 4.0)) for name in ("hpa-queue", "keda"))
    assert isinstance(hpa, HpaQueue)
    assert isinstance(keda, HpaQueue)
    assert hpa.run_signature() == keda.run_signature()
    assert hpa.run_signature() != HpaQueue(4.0, max_replicas=20, behavior=None).run_signature()
    assert hpa.run_signature() != runs.policy(("baseline", "hpa-queue", 5.0)).run_signature()  # type: ignore[attr-defined]

    class Changed(Keda):
        def _raw(self, view: ClusterView) -> int | None:
            return 1

    assert Changed(4.0, max_replicas=20).run_signature() != keda.run_signature()
