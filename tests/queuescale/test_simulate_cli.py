"""``queuescale simulate`` end to end through a subprocess: outputs, determinism, bad input, arrivals CSVs."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autoscaler.sim.baselines import BASELINES

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "examples" / "trino-workers-deployment.yaml"
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
LOWER = "lower_bound_worker_hours"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _simulate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "queuescale", "simulate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def _policy_name() -> str:
    match = re.search(r"^  name: (\S+)$", POLICY.read_text(), re.MULTILINE)
    assert match
    return match.group(1)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "out"
    done = _simulate("--policy", POLICY, "--trace", TRACE, "--days", "0.2", "--seed", "3", "--out", out)
    assert done.returncode == 0, done.stderr
    # stderr is not a terminal here: no progress bar.
    assert "\r" not in done.stderr
    return out


def test_result_json_has_every_policy_with_exactly_the_figures(short_run: Path) -> None:
    result = json.loads((short_run / "result.json").read_text())
    assert list(result) == [*BASELINES, _policy_name(), LOWER]
    lower = result.pop(LOWER)
    for name, row in result.items():
        assert set(row) == KEYS, name
        assert row["worker_hours"] > 0, name
        assert row["queue_wait_p50_s"] <= row["queue_wait_p95_s"] <= row["queue_wait_p99_s"], name
        if row["killed"] == 0:
            # Nothing beats the bound when every query is served.
            assert row["worker_hours"] >= lower, name
    # The engine drains workers; the static size never changes.
    assert result[_policy_name()]["killed"] == 0
    assert result["static"]["scale_actions"] == 0


def test_plots_are_png_files(short_run: Path) -> None:
    pngs = sorted(short_run.glob("*.png"))
    assert len(pngs) == 2
    for png in pngs:
        data = png.read_bytes()
        assert data.startswith(PNG_SIGNATURE), png
        assert len(data) > 10_000, png


def test_summary_ratios_match_result_json(short_run: Path) -> None:
    result = json.loads((short_run / "result.json").read_text())
    summary = (short_run / "summary.md").read_text()
    ref = result["hpa-cpu"]["worker_hours"]
    lower = result.pop(LOWER)
    assert f"Lower bound: {lower:.1f} worker-hours" in summary
    for name, row in result.items():
        line = next(line for line in summary.splitlines() if line.startswith(f"| {name} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2] == f"{row['worker_hours'] / ref:.2f}x", name
        assert cells[3] == f"{row['worker_hours'] / lower:.2f}x", name
        assert f"**{name}**" in summary
    assert "timeseries.png" in summary


def test_same_seed_same_result_other_seed_other_result(short_run: Path, tmp_path: Path) -> None:
    again = _simulate(
        "--policy", POLICY, "--trace", TRACE, "--days", "0.2", "--seed", "3", "--out", tmp_path / "a"
    )
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "a" / "result.json").read_text() == (short_run / "result.json").read_text()
    other = _simulate(
        "--policy", POLICY, "--trace", TRACE, "--days", "0.2", "--seed", "4",
        "--baselines", "hpa-cpu,static", "--out", tmp_path / "b",
    )  # fmt: skip
    assert other.returncode == 0, other.stderr
    first = json.loads((short_run / "result.json").read_text())
    second = json.loads((tmp_path / "b" / "result.json").read_text())
    assert list(second) == ["hpa-cpu", "static", _policy_name(), LOWER]
    assert second["hpa-cpu"] != first["hpa-cpu"]
    assert second[LOWER] != first[LOWER]


def test_fewer_cores_and_memory_need_more_workers_for_the_same_load(short_run: Path, tmp_path: Path) -> None:
    shared = _simulate(
        "--policy", POLICY, "--trace", TRACE, "--days", "0.2", "--seed", "3", "--baselines", "static",
        "--cores-per-worker", "1", "--worker-memory-gb", "8", "--query-memory-gb", "3", "--out", tmp_path,
    )  # fmt: skip
    assert shared.returncode == 0, shared.stderr
    eight_cores = json.loads((short_run / "result.json").read_text())
    constrained = json.loads((tmp_path / "result.json").read_text())
    # 1 core instead of 8: the static size (50 % CPU at the busiest quarter hour) needs far more workers
    # (up to the policy's maxReplicas), the lower bound is eight times higher; the engine pays more too.
    assert constrained["static"]["worker_hours"] > 2 * eight_cores["static"]["worker_hours"]
    assert constrained[LOWER] == pytest.approx(8 * eight_cores[LOWER], rel=1e-3)
    name = _policy_name()
    assert constrained[name]["worker_hours"] > eight_cores[name]["worker_hours"]
    assert "1 cores per worker, 8 GB" in (tmp_path / "summary.md").read_text()


def test_sweep_finds_each_baselines_cheapest_setting_at_the_policys_level(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _simulate(
        "--policy", POLICY, "--trace", TRACE, "--days", "0.1", "--seed", "5", "--baselines", "hpa-queue,static",
        "--sweep", "--no-progress", "--out", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    name = _policy_name()
    assert list(result) == ["hpa-queue", "static", name, LOWER, "sweep", "iso_slo"]
    policy = result[name]
    assert set(result["iso_slo"]) == {name}
    for baseline in ("hpa-queue", "static"):
        points = result["sweep"][baseline]
        settings = [p["setting"] for p in points]
        assert settings == sorted(settings)
        assert len(settings) >= 5
        iso = result["iso_slo"][name][baseline]
        if iso["setting"] is None:
            assert iso["cost_ratio"] is None
            # No point of the sweep serves as well as the policy.
            assert all(
                p["queue_wait_p95_s"] > policy["queue_wait_p95_s"] + 0.5
                or p["slo_misses"] > policy["slo_misses"]
                or p["latency_p95_s"] > policy["latency_p95_s"] * 1.02
                for p in points
            )
            continue
        chosen = next(p for p in points if p["setting"] == iso["setting"])
        assert iso["worker_hours"] == chosen["worker_hours"]
        assert iso["cost_ratio"] == pytest.approx(policy["worker_hours"] / chosen["worker_hours"], rel=1e-5)
        meeting = [
            p
            for p in points
            if p["queue_wait_p95_s"] <= policy["queue_wait_p95_s"] + 0.5
            and p["slo_misses"] <= policy["slo_misses"]
            and p["latency_p95_s"] <= policy["latency_p95_s"] * 1.02 + 1e-6
        ]
        # The cheapest of every point run (the refinement's included) that serves as well.
        assert chosen in meeting
        assert chosen["worker_hours"] == min(p["worker_hours"] for p in meeting)
    assert (out / "cost_vs_wait.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "At the same service level" in (out / "summary.md").read_text()


def test_the_slot_model_runs_the_baselines_with_graceful_shutdown_too(tmp_path: Path) -> None:
    done = _simulate(
        "--policy", POLICY, "--trace", TRACE, "--days", "0.05", "--model", "slots", "--baselines", "hpa-cpu",
        "--no-progress", "--out", tmp_path / "out",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "slot model, 4 slots" in summary
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["hpa-cpu"]["worker_hours"] > 0


BAD_POLICY = """\
apiVersion: queuescale.io/v1alpha1
kind: ScalingPolicy
metadata: {name: bad}
spec:
  target:
    kind: TrinoWorkers
    workload: {kind: Deployment, name: trino-worker}
    trino: {cluster: c, coordinatorUrl: "http://trino:8080", version: 478}
  minReplicas: 5
  maxReplicas: 3
  metrics:
    - type: RequiredWorkers
      requiredWorkers: {}
"""

SPARK_POLICY = """\
apiVersion: queuescale.io/v1alpha1
kind: ScalingPolicy
metadata: {name: nightly}
spec:
  target:
    kind: SparkApplication
    application: {name: nightly-etl}
    spark: {pool: etl}
  maxReplicas: 3
  metrics:
    - type: SparkExecutors
      sparkExecutors: {}
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # minReplicas above maxReplicas: the validation message names file, line and field.
        (BAD_POLICY, "minReplicas"),
        # A valid policy for something the simulator does not model (SparkWorkerPool: tests/queuescale/test_sim_spark_cli.py).
        (SPARK_POLICY, "models Trino workers"),
    ],
)
def test_bad_policy_exits_non_zero_with_the_message(tmp_path: Path, text: str, message: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    done = _simulate("--policy", policy, "--trace", TRACE, "--days", "0.01", "--out", tmp_path / "out")
    assert done.returncode != 0
    assert message in done.stderr
    assert str(policy) in done.stderr
    assert not (tmp_path / "out").exists()


def test_arrivals_csv(tmp_path: Path) -> None:
    # Bursts of 40 one-minute queries every 20 minutes: more than one worker's slots each time.
    rows = ["arrival_ts,service_seconds"]
    for burst in range(6):
        rows.extend(f"{1_700_000_000 + burst * 1200 + i},60" for i in range(40))
    trace = tmp_path / "arrivals.csv"
    trace.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    done = _simulate(
        "--policy", POLICY, "--trace", trace, "--baselines", "static,hpa-queue", "--no-progress", "--out", out
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    assert list(result) == ["static", "hpa-queue", _policy_name(), LOWER]
    # Every query is 60 CPU-seconds, so any policy pays at least 240 queries x 60 s / 8 cores.
    assert result.pop(LOWER) == pytest.approx(240 * 60 / 8 / 3600)
    for row in result.values():
        assert set(row) == KEYS
        assert row["worker_hours"] >= 240 * 60 / 8 / 3600
    assert "240 queries" in (out / "summary.md").read_text()


def _run_on_terminal_stderr(*args: str | Path) -> tuple[int, str]:
    """Run ``simulate`` with stderr on a pseudo-terminal; its exit status and what it wrote there."""
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "queuescale", "simulate", *map(str, args)],
            stdout=subprocess.DEVNULL,
            stderr=secondary,
            cwd=ROOT,
        )
        os.close(secondary)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        return proc.wait(timeout=120), b"".join(chunks).decode()
    finally:
        os.close(primary)


@pytest.mark.parametrize(
    ("flags", "bar"),
    [
        # A terminal gets a bar that reaches 100 %.
        ((), True),
        # --no-progress silences it even on a terminal.
        (("--no-progress",), False),
    ],
)
def test_progress_bar_only_on_a_terminal(tmp_path: Path, flags: tuple[str, ...], bar: bool) -> None:
    status, err = _run_on_terminal_stderr(
        "--policy", POLICY, "--trace", TRACE, "--days", "0.05", "--baselines", "static",
        "--out", tmp_path / "out", *flags,
    )  # fmt: skip
    assert status == 0, err
    assert ("100%" in err and "\r" in err) is bar
