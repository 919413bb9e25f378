"""``queuescale controller`` as a process: flags, health and metrics endpoints, JSON logs, dry run, leader
election between two processes, clean exit on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from adapter.samples import Sample
from lab.sandbox.kube import KubeSandbox
from lab.sandbox.kube_types import DEPLOYMENTS
from lab.sandbox.kube_workloads import workload_manifest
from tests.helpers.adapter import running_adapter
from tests.helpers.kube import running_kube
from tests.helpers.scripted import ScriptedSource
from tests.helpers.wait import eventually

POLICY = """\
apiVersion: queuescale.io/v1alpha1
kind: ScalingPolicy
metadata: {name: workers, namespace: trino}
spec:
  target:
    kind: TrinoWorkers
    workload: {kind: Deployment, name: trino-worker}
    trino: {cluster: adhoc, coordinatorUrl: "http://127.0.0.1:9", version: 478}
    startupSeconds: 0
  minReplicas: 1
  maxReplicas: 10
  metrics:
    - type: External
      external:
        metric: {name: trino_running_queries, selector: {matchLabels: {cluster: adhoc}}}
        target: {type: AverageValue, averageValue: "2"}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "queuescale", "controller", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


async def get(url: str) -> tuple[int, str]:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            return resp.status, await resp.text()
    except aiohttp.ClientError:
        return 0, ""


def gauge(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def source() -> ScriptedSource:
    s = ScriptedSource("adhoc", ["trino_running_queries"])
    s.answer = [Sample("trino_running_queries", {}, 8)]
    return s


async def test_dry_run_from_files_serves_health_metrics_and_json_logs(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "workers.yaml").write_text(POLICY)
    sandbox = KubeSandbox()
    sandbox.create(DEPLOYMENTS, "trino", workload_manifest("Deployment", "trino-worker", 1))
    async with running_kube(sandbox) as kube, running_adapter([source()]) as (adapter, _):
        port = free_port()
        log = tmp_path / "controller.log"
        proc = start(
            [
                "--policies", str(tmp_path / "policies"), "--kube-host", kube.url, "--metrics-url", adapter.url,
                "--listen-metrics", f"127.0.0.1:{port}", "--period", "0.2", "--dry-run",
            ],
            log,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            assert (await get(base + "/livez"))[0] in (0, 200)
            await eventually(lambda: get(base + "/readyz"), check=lambda r: r[0] == 200, timeout=30)
            _, text = await eventually(
                lambda: get(base + "/metrics"),
                check=lambda r: (
                    gauge(r[1], 'queuescale_controller_desired_replicas{namespace="trino",policy="workers"}')
                    == 4
                ),
                timeout=30,
            )
            assert gauge(text, "queuescale_controller_leader") == 1
            # Dry run: decided 4, wrote nothing.
            scale = sandbox.get_object("apps", "v1", "deployments", "trino", "trino-worker")
            assert scale is not None
            assert scale["spec"]["replicas"] == 1
        finally:
            assert stop(proc) == 0
        lines = [ln for ln in log.read_text().splitlines() if ln.startswith("{")]
        assert lines, log.read_text()
        docs = [json.loads(ln) for ln in lines]
        assert all({"ts", "level", "logger", "msg"} <= set(d) for d in docs)


async def test_two_controllers_one_leader_and_failover(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "workers.yaml").write_text(POLICY)
    sandbox = KubeSandbox()
    sandbox.create(DEPLOYMENTS, "trino", workload_manifest("Deployment", "trino-worker", 1))
    async with running_kube(sandbox) as kube, running_adapter([source()]) as (adapter, _):
        ports = [free_port(), free_port()]
        procs = [
            start(
                [
                    "--policies", str(tmp_path / "policies"), "--kube-host", kube.url, "--metrics-url", adapter.url,
                    "--listen-metrics", f"127.0.0.1:{port}", "--period", "0.2", "--dry-run", "--leader-elect",
                    "--lease-namespace", "queuescale", "--identity", f"c{i}", "--log-format", "text",
                    "--lease-seconds", "3", "--renew-deadline", "2", "--retry-period", "0.3",
                ],
                tmp_path / f"c{i}.log",
            )
            for i, port in enumerate(ports)
        ]  # fmt: skip
        try:

            async def leaders() -> list[float | None]:
                out = []
                for port in ports:
                    _, text = await get(f"http://127.0.0.1:{port}/metrics")
                    out.append(gauge(text, "queuescale_controller_leader"))
                return out

            first = await eventually(leaders, check=lambda v: sorted(x or 0 for x in v) == [0, 1], timeout=30)
            leader = first.index(1)
            procs[leader].kill()
            procs[leader].wait()
            other = 1 - leader
            await eventually(
                lambda: get(f"http://127.0.0.1:{ports[other]}/metrics"),
                check=lambda r: gauge(r[1], "queuescale_controller_leader") == 1,
                timeout=60,
            )
            lease = sandbox.get_object(
                "coordination.k8s.io", "v1", "leases", "queuescale", "queuescale-controller"
            )
            assert lease is not None
            assert lease["spec"]["holderIdentity"] == f"c{other}"
        finally:
            for proc in procs:
                stop(proc)


def test_in_process_metrics_need_an_adapter_config(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "queuescale", "controller", "--metrics", "in-process"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--adapter-config" in done.stderr
