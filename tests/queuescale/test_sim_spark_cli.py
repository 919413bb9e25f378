"""``queuescale simulate`` on a SparkWorkerPool policy, end to end through a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from autoscaler.sim.iso_slo import WAIT_SLACK_S
from autoscaler.sim.outputs import RESERVED_KEYS
from autoscaler.sim.spark_baselines import POOL_BASELINES

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "examples" / "spark-worker-pool.yaml"
TRACE = Path("/work/shared/data/traces/crane-input0.csv")
KEYS = {
    "worker_hours",
    "queue_wait_p50_s",
    "queue_wait_p95_s",
    "queue_wait_p99_s",
    "slo_misses",
    "scale_actions",
    "killed",
    "run_time_p95_s",
    "latency_p95_s",
}
ISO_KEYS = {
    "setting",
    "worker_hours",
    "cost_ratio",
    "queue_wait_p95_s",
    "slo_misses",
    "latency_p95_s",
    "killed",
    "runs",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _simulate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "queuescale", "simulate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spark") / "out"
    done = _simulate("--policy", POLICY, "--trace", TRACE, "--days", "0.15", "--seed", "3", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    return out


def _policies(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in RESERVED_KEYS}


def test_result_json_has_every_policy_with_exactly_the_figures(short_run: Path) -> None:
    result = json.loads((short_run / "result.json").read_text())
    assert list(result) == [*POOL_BASELINES, "etl-pool", "lower_bound_worker_hours"]
    rows = _policies(result)
    for name, row in rows.items():
        assert set(row) == KEYS, name
        assert row["worker_hours"] >= result["lower_bound_worker_hours"] > 0, name
        assert row["queue_wait_p50_s"] <= row["queue_wait_p95_s"] <= row["queue_wait_p99_s"], name
        # Every baseline decommissions, as the example policy does: nothing is killed.
        assert row["killed"] == 0, name
    assert result["static"]["scale_actions"] == 0


def test_plots_are_png_files(short_run: Path) -> None:
    pngs = sorted(p.name for p in short_run.glob("*.png"))
    assert pngs == ["queue_wait_tail.png", "timeseries.png"]
    for name in pngs:
        data = (short_run / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        assert len(data) > 10_000, name


def test_summary_names_the_pool_and_every_policy(short_run: Path) -> None:
    summary = (short_run / "summary.md").read_text()
    assert summary.startswith("# Simulation of etl-pool (Spark standalone pool)")
    assert "4 cores per worker" in summary
    result = json.loads((short_run / "result.json").read_text())
    for name, row in _policies(result).items():
        assert f"| {name} | {row['worker_hours']:.1f} |" in summary
    assert f"Lower bound: {result['lower_bound_worker_hours']:.1f} worker-hours" in summary


def test_same_seed_same_figures(short_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "again"
    done = _simulate(
        "--policy",
        POLICY,
        "--trace",
        TRACE,
        "--days",
        "0.15",
        "--seed",
        "3",
        "--out",
        out,
        "--baselines",
        "dynalloc",
    )
    assert done.returncode == 0, done.stderr
    first = json.loads((short_run / "result.json").read_text())
    again = json.loads((out / "result.json").read_text())
    assert list(again) == ["dynalloc", "etl-pool", "lower_bound_worker_hours"]
    for key in again:
        assert again[key] == first[key], key


def test_sweep_writes_the_iso_slo_keys_and_the_cost_plot(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    done = _simulate(
        "--policy",
        POLICY,
        "--trace",
        TRACE,
        "--days",
        "0.05",
        "--seed",
        "3",
        "--baselines",
        "hpa-queue,static",
        "--sweep",
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    assert list(result) == ["hpa-queue", "static", "etl-pool", *RESERVED_KEYS]
    policy = result["etl-pool"]
    for name in ("hpa-queue", "static"):
        points = result["sweep"][name]
        settings = [p["setting"] for p in points]
        assert settings == sorted(settings)
        assert len(settings) >= 3, name
        assert all(set(p) == {"setting", *KEYS} for p in points), name
        iso = result["iso_slo"]["etl-pool"][name]
        assert set(iso) == ISO_KEYS, name
        if iso["setting"] is None:
            assert iso["cost_ratio"] is None, name
            continue
        # The chosen setting is one of the points run and meets the policy's p95 wait (with the slack).
        chosen = next(p for p in points if p["setting"] == iso["setting"])
        assert chosen["worker_hours"] == iso["worker_hours"]
        assert iso["cost_ratio"] == pytest.approx(policy["worker_hours"] / iso["worker_hours"], rel=1e-5)
        assert iso["queue_wait_p95_s"] <= policy["queue_wait_p95_s"] + WAIT_SLACK_S
        assert iso["slo_misses"] <= policy["slo_misses"]
    assert (out / "cost_vs_wait.png").read_bytes().startswith(PNG_SIGNATURE)
    summary = (out / "summary.md").read_text()
    assert "## At the same service level" in summary
    assert "cost_vs_wait.png" in summary


def test_a_policy_named_like_a_baseline_is_refused(tmp_path: Path) -> None:
    clashing = tmp_path / "policy.yaml"
    text = POLICY.read_text()
    assert "name: etl-pool" in text
    clashing.write_text(text.replace("name: etl-pool", "name: dynalloc", 1))
    done = _simulate("--policy", clashing, "--trace", TRACE, "--days", "0.01", "--out", tmp_path / "out")
    assert done.returncode != 0
    assert "may not be named dynalloc" in done.stderr


def test_an_applications_csv_is_simulated(tmp_path: Path) -> None:
    trace = tmp_path / "apps.csv"
    rows = ["app,arrival_ts,tasks,task_seconds"]
    for i in range(20):
        rows += [f"a{i},{1000 + 90 * i},{8 + i},15", f"a{i},{1000 + 90 * i},4,30"]
    trace.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    done = _simulate("--policy", POLICY, "--trace", trace, "--baselines", "static", "--out", out)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    assert list(result) == ["static", "etl-pool", "lower_bound_worker_hours"]
    assert "20 applications from the CSV" in (out / "summary.md").read_text()


def test_a_mixed_policy_file_is_refused(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text(
        POLICY.read_text() + "\n---\n" + (ROOT / "examples" / "trino-workers-deployment.yaml").read_text()
    )
    done = _simulate("--policy", mixed, "--trace", TRACE, "--days", "0.01", "--out", tmp_path / "out")
    assert done.returncode != 0
    assert "not a SparkWorkerPool policy" in done.stderr


def test_startup_seconds_flag_sets_the_pools_worker_startup(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _simulate(
        "--policy", POLICY, "--trace", TRACE, "--days", "0.02", "--baselines", "static",
        "--startup-seconds", "240", "--out", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "240 s worker start-up" in (out / "summary.md").read_text()
