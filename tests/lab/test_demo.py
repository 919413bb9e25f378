"""``queuescale demo``: its parts (time scales, the busy day, policies for the sandbox and the wall clock, the
ground-truth check, the view), then the command itself as a user runs it, end to end: a shortened day
through the real adapter and controller, and a Ctrl-C that still writes the report."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from lab.demo.policies import (
    DEFAULT_SPARK_POLICY,
    DEFAULT_TRINO_POLICY,
    for_sandbox,
    for_wall_clock,
    read_policy,
)
from lab.demo.scenario import (
    DEFAULT_TRACE,
    LoadSettings,
    Segment,
    TimeScale,
    build_load,
    busy_day,
    cut_spark_load,
    read_segment,
)
from lab.demo.truth import CountedTrinoCluster, TruthLedger, judge, parse_served
from lab.demo.view import ViewState, render_block, render_line
from lab.sandbox.trino import ResourceGroupSpec, TrinoSandbox

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"
U = {"X-Trino-User": "reader"}

# ------------------------------------------------------------------ time and load


def test_time_scale_compresses_the_trace_into_cluster_time() -> None:
    scale = TimeScale(speed=960.0, cluster_speed=15.0)
    assert scale.compression == 64.0
    assert scale.cluster_seconds(90.0) == 1350.0
    assert scale.trace_seconds(1350.0) == 86400.0
    assert scale.wall_seconds(15.0) == 1.0
    with pytest.raises(ValueError, match="compressed into cluster time"):
        TimeScale(speed=10.0, cluster_speed=15.0)
    with pytest.raises(ValueError, match="positive"):
        TimeScale(speed=0.0)


def _days(means: list[float], step: float = 600.0) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """One sample per ``step``: each day a quiet night (the day's mean / 10) from 00:00 to 06:00."""
    per_day = int(86400 / step)
    ts, values = [], []
    for d, mean in enumerate(means):
        for k in range(per_day):
            hour = k * step / 3600
            ts.append(1_600_000_000 + d * 86400 + k * step)
            values.append(mean / 10 if hour < 6 else mean)
    return np.asarray(ts, dtype=np.float64), np.asarray(values, dtype=np.float64)


def test_busy_day_starts_quiet_and_covers_the_busiest_day() -> None:
    ts, values = _days([10.0, 50.0, 20.0])
    lo, hi = busy_day(ts, values)
    assert hi - lo == 144
    start_hour = (ts[lo] - ts[0]) % 86400 / 3600
    assert start_hour < 6, "the window starts in a quiet hour"
    assert np.mean(values[lo:hi]) > 30, "and holds the busiest day's load"
    assert busy_day(ts[:100], values[:100]) == (0, 100), "a trace shorter than a day is used whole"


def test_the_bundled_trace_is_a_day_that_rises_and_falls() -> None:
    seg = read_segment(DEFAULT_TRACE)
    assert seg.span == 86400.0
    hourly = seg.values.reshape(24, 60).mean(axis=1)
    peak = int(np.argmax(hourly))
    assert 0 < peak < 23
    assert hourly[0] < hourly[peak] / 5
    assert hourly[-1] < hourly[peak] / 5


def test_load_follows_the_compressed_shape_and_repeats_with_its_seed() -> None:
    seg = Segment(
        path=Path("two-levels.csv"),
        ts=np.asarray([0.0, 43200.0]),
        values=np.asarray([1.0, 3.0]),
        epoch_start=0.0,
        span=86400.0,
    )
    scale = TimeScale(speed=960.0, cluster_speed=15.0)
    settings = LoadSettings(trino_peak_rate=2.0, mean_service_seconds=10.0, spark_peak_rate=0.2)
    load = build_load(seg, scale, seed=3, settings=settings)
    assert load.cluster_span == 1350.0
    first = np.count_nonzero(load.trino.arrivals < 675.0)
    second = load.trino.count - first
    # A third of the peak rate, then the peak rate (2/s at the busy level) over 675 s each.
    assert 0.5 * 675 * 2 / 3 < first < 1.5 * 675 * 2 / 3
    assert 0.8 * 675 * 2 < second < 1.2 * 675 * 2
    again = build_load(seg, scale, seed=3, settings=settings)
    assert np.array_equal(again.trino.arrivals, load.trino.arrivals)
    assert np.array_equal(again.spark.app_arrivals, load.spark.app_arrivals)
    cut = cut_spark_load(load.spark, 300.0)
    assert cut.app_count == np.count_nonzero(load.spark.app_arrivals < 300.0)
    assert cut.task_count == int(load.spark.stage_tasks[load.spark.app_stages[cut.app_count]])
    assert cut.duration == 300.0


# ------------------------------------------------------------------ policies


def test_for_sandbox_points_the_example_at_the_sandbox_and_drops_what_a_replay_cannot_honour() -> None:
    doc = read_policy(ROOT / "examples" / "trino-workers-deployment.yaml", "TrinoWorkers")
    assert doc["spec"].get("schedules")
    assert doc["spec"]["forecast"]["enabled"]
    adapted = for_sandbox(doc, name="sandbox", url="http://127.0.0.1:5555", where="example")
    trino = adapted.policy.spec.target.trino
    assert trino is not None
    assert (trino.cluster, trino.coordinator_url) == ("sandbox", "http://127.0.0.1:5555")
    assert trino.credentials_secret is None
    external = [m.external for m in adapted.policy.spec.metrics if m.external is not None]
    assert [e.metric.selector.match_labels for e in external if e.metric.selector] == [{"cluster": "sandbox"}]
    assert adapted.policy.spec.schedules == []
    assert not adapted.policy.spec.forecast.enabled
    assert len(adapted.notes) == 3
    assert doc["spec"]["target"]["trino"]["cluster"] == "adhoc", "the input is left as it was"


def test_for_wall_clock_divides_every_duration_and_spells_out_the_defaults() -> None:
    trino = for_sandbox(
        read_policy(DEFAULT_TRINO_POLICY, "TrinoWorkers"), name="sandbox", url="http://t:1", where="t"
    )
    live = for_wall_clock(trino, 15.0, where="t").policy.spec
    assert live.target.startup_seconds == 2
    behavior = live.behavior
    assert behavior is not None
    assert behavior.scale_up is not None
    assert behavior.scale_down is not None
    assert [p.period_seconds for p in behavior.scale_up.policies or []] == [1, 1]
    assert behavior.scale_down.stabilization_window_seconds == 6
    assert (live.drain.grace_period_seconds, live.drain.timeout_seconds) == (1, 40)
    wait = next(m.queue_wait for m in live.metrics if m.queue_wait is not None)
    assert wait.target_seconds == pytest.approx(10 / 15)
    spark = for_sandbox(
        read_policy(DEFAULT_SPARK_POLICY, "SparkWorkerPool"), name="pool", url="http://m:1", where="s"
    )
    assert spark.policy.spec.behavior is not None
    assert spark.policy.spec.behavior.scale_up is None, "the file leaves scale-up to the HPA's defaults"
    pool = for_wall_clock(spark, 15.0, where="s").policy.spec
    assert pool.behavior is not None
    assert pool.behavior.scale_up is not None
    # The HPA's default scale-up (+4 pods or +100 % per 15 s) is written out and scaled with the rest.
    assert [(p.type, p.value, p.period_seconds) for p in pool.behavior.scale_up.policies or []] == [
        ("Pods", 4, 1),
        ("Percent", 100, 1),
    ]
    assert pool.behavior.scale_down is not None
    assert pool.behavior.scale_down.stabilization_window_seconds == 4


# ------------------------------------------------------------------ ground truth


def test_judge_accepts_only_a_count_the_coordinator_reported_in_the_window() -> None:
    notes = [(9.5, 7.0), (10.2, 3.0), (10.7, 4.0), (12.1, 9.0)]
    assert judge("q", 4.0, 10.0, 11.0, notes).ok
    assert judge("q", 3.0, 10.0, 11.0, notes).ok
    assert judge("q", 3.0, 10.0, 11.0, notes).reported == (3.0, 4.0)
    assert not judge("q", 9.0, 10.0, 11.0, notes).ok, "reported, but after the value was read"
    assert not judge("q", 7.0, 10.0, 11.0, notes).ok, "reported, but before the poll began"
    assert not judge("q", 5.0, 10.0, 11.0, notes).ok, "never reported"
    assert not judge("q", 0.0, 13.0, 14.0, notes).ok, "a poll the coordinator never answered"
    ledger = TruthLedger()
    ledger.add(judge("q", 4.0, 10.0, 11.0, notes))
    ledger.add(judge("q", 5.0, 10.0, 11.0, notes))
    summary = ledger.summary()
    assert (summary["checks"], summary["mismatches"], summary["checks_of_nonzero_values"]) == (2, 1, 2)
    assert summary["first_mismatches"][0]["served"] == 5.0


def test_parse_served_sums_the_items_and_keeps_the_poll_time() -> None:
    doc = {
        "kind": "ExternalMetricValueList",
        "items": [
            {"metricName": "m", "value": "1500m", "timestamp": "2026-01-01T00:00:10Z"},
            {"metricName": "m", "value": "2", "timestamp": "2026-01-01T00:00:09Z"},
        ],
    }
    total, stamp = parse_served(doc)
    assert total == 3.5
    assert stamp == 1767225609.0
    with pytest.raises(ValueError, match="no items"):
        parse_served({"items": []})


async def test_the_counted_coordinator_notes_exactly_what_it_serves() -> None:
    wall = [1000.0]
    cluster = CountedTrinoCluster(
        478,
        workers=1,
        groups=[ResourceGroupSpec("global", hard_concurrency_limit=2, max_queued=10)],
        wall=lambda: wall[0],
    )
    cluster.submit_many("global", 5, 100.0)
    assert (cluster.model_queued(), cluster.model_running()) == (3, 2)
    assert not cluster.reported["trino_queued_queries"], "the demo's own reads are not notes"
    async with (
        TrinoSandbox(cluster, tick_seconds=None) as sandbox,
        aiohttp.ClientSession() as session,
        session.get(f"{sandbox.coordinator_url}/metrics", headers=U) as resp,
    ):
        assert resp.status == 200
        text = await resp.text()
    assert "QueuedQueries" in text
    assert list(cluster.reported["trino_queued_queries"]) == [(1000.0, 3.0)]
    assert list(cluster.reported["trino_running_queries"]) == [(1000.0, 2.0)]


# ------------------------------------------------------------------ view


class _Row:
    queued, running, head_wait, desired, current, billed, draining = 3, 17, 4.5, 6, 5, 6, 1
    spark_remaining, spark_waiting_apps, spark_active_apps = 40, 1, 4
    spark_desired, spark_current, spark_decommissioning = 3, 3, 0


def test_the_view_shows_queue_replicas_drains_and_reasons() -> None:
    state = ViewState(
        trace="t.csv",
        trace_epoch=1629223200.0,
        trace_seconds=7200.0,
        trace_span=86400.0,
        wall=12.0,
        wall_total=90.0,
        cluster_seconds=180.0,
        sample=_Row(),
        done=120,
        killed=0,
        trino_key="trino/a",
        spark_key="spark/b",
        reasons={"trino/a": "QueueWait wins with 6 replicas", "spark/b": "x" * 300},
        decided={"trino/a": (5, 6)},
        drains_started=4,
        drains_finished=3,
        truth_checks=50,
    )
    block = "\n".join(render_block(state))
    assert "Tue 20:00 UTC" in block
    assert "3 queued" in block
    assert "17 running" in block
    assert "desired  6  current  5  draining  1" in block
    assert "drains started 4  finished 3" in block
    assert "trino/a: 5 → 6: QueueWait wins with 6 replicas" in block
    assert max(len(line) for line in render_block(state)) < 200, "long reasons are clipped"
    line = render_line(state)
    assert "q=3 run=17" in line
    assert "drains=4/3" in line
    assert "truth 50 checks 0 bad" in line


# ------------------------------------------------------------------ the command


def _demo(out: Path, *extra: str) -> list[str]:
    # A day in 25 s: the rise and the fall both fit in a short run.
    return [
        sys.executable,
        "-m",
        "queuescale",
        "demo",
        "--no-ui",
        "--speed",
        "3456",
        "--out",
        str(out),
        *extra,
    ]


def _counter(live: dict[str, Any], name: str, namespace: str, **labels: str) -> float:
    want = {"namespace": namespace, **labels}
    return sum(
        float(c["value"])
        for c in live["controller"]["counters"]
        if c["name"] == name and all(c["labels"].get(k) == v for k, v in want.items())
    )


def _assert_report(out: Path) -> dict[str, Any]:
    for name in ("timeseries.png", "queue_wait_tail.png", "spark_timeseries.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    summary = (out / "summary.md").read_text()
    assert "hpa-cpu" in summary
    assert "(live)" in summary
    assert "(simulated)" in summary
    urls = (out / "urls.md").read_text()
    assert "kubectl --server=http://127.0.0.1:" in urls
    assert "get scalingpolicies -A -o yaml" in urls
    live: dict[str, Any] = json.loads((out / "live.json").read_text())
    return live


def test_demo_scales_up_drains_and_matches_the_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.run(_demo(out), capture_output=True, text=True, timeout=150, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "kubectl --server=http://127.0.0.1:" in proc.stdout, "the URLs are printed at the start"
    live = _assert_report(out)
    assert not live["interrupted"]
    trino, spark, truth = live["trino"], live["spark"], live["truth"]
    # Trino: the controller scaled up and drained, and what it drained left with nothing running.
    assert _counter(live, "queuescale_controller_scale_actions_total", "trino", direction="up") >= 1
    assert _counter(live, "queuescale_controller_drains_finished_total", "trino", outcome="completed") >= 1
    drained_then_removed = [r for r in trino["pod_removals"] if r["state"] == "DRAINED"]
    assert drained_then_removed, trino["pod_removals"]
    assert all(r["killed"] == 0 and r["tasks"] == 0 for r in trino["pod_removals"])
    assert trino["queries_killed"] == 0
    assert trino["queries_submitted"] > 100
    assert max(live["series"]["desired"]) > min(live["series"]["desired"])
    # Spark: the pool grew with its backlog, shrank by decommissioning and lost no running task.
    assert _counter(live, "queuescale_controller_scale_actions_total", "spark", direction="up") >= 1
    assert _counter(live, "queuescale_controller_drains_finished_total", "spark", outcome="completed") >= 1
    assert any(r["state"] == "LEFT" for r in spark["pod_removals"]), "decommissioned, then removed"
    assert spark["running_tasks_lost"] == 0
    assert all(r["tasks_lost"] == 0 for r in spark["pod_removals"])
    # The adapter's numbers were checked often, on live values, and always matched the coordinator's.
    assert truth["checks"] >= 60
    assert truth["checks_of_nonzero_values"] >= 20
    assert truth["mismatches"] == 0, truth["first_mismatches"]
    assert math.isclose(live["speed"], 3456.0)


def test_ctrl_c_stops_cleanly_and_still_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.Popen(_demo(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line or line.startswith("["):
                break
        assert line.startswith("["), "the run was under way (a progress line)"
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "writing the report" in rest
    live = _assert_report(out)
    assert live["interrupted"], "stopped before the replayed day ended"
