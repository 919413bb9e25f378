"""The README's first command, run as a user runs it: the adapter answering on the sandbox."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BASE = "/apis/external.metrics.k8s.io/v1beta1"


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_adapter_on_sandbox_answers_and_stops_cleanly() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "queuescale",
            "adapter",
            "--sandbox",
            "--insecure-http",
            "--listen",
            "127.0.0.1:0",
            "--show-every",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            match = re.search(r"on the sandbox: (http://127\.0\.0\.1:\d+)", line)
            url = match.group(1) if match else None
        assert url is not None, "the adapter never printed its URL"
        status, listing = get(url + BASE)
        assert status == 200
        names = {r["name"] for r in listing["resources"]}  # type: ignore[attr-defined]
        assert {
            "trino_queued_queries",
            "trino_nodes",
            "spark_remaining_tasks",
            "spark_executors_needed",
        } <= names
        # Once the first poll landed, the sandbox's three Trino nodes are served.
        while time.monotonic() < deadline:
            status, body = get(f"{url}{BASE}/namespaces/default/trino_nodes?labelSelector=state%3Dactive")
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, body
        assert [i["value"] for i in body["items"]] == ["3"]  # type: ignore[attr-defined]
        served = proc.stdout.readline()
        while served and not served.startswith("served: "):
            served = proc.stdout.readline()
        assert "trino nodes=3" in served
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "PLAIN HTTP, NO AUTHENTICATION" in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "server:\n  listen: 127.0.0.1:8443\n  insecure_http: true\nauth:\n  mode: none\ntrino:\n  - name: a\n    endpoint: {url: http://x}\n    pol_interval_seconds: 2\n",
            "config.yaml:9: trino[0].pol_interval_seconds: unknown field",
        ),
        (
            "server:\n  listen: 0.0.0.0:8443\n  insecure_http: true\nauth: {mode: none}\ntrino: [{name: a, endpoint: {url: 'http://x'}}]\n",
            "config.yaml:1: server: Value error, insecure_http serves without TLS or authentication: listen on loopback only",
        ),
        (
            "trino:\n  - name: a\n    endpoint:\n      url: ftp://x\n",
            "config.yaml:4: trino[0].endpoint.url: String should match pattern",
        ),
        ("trino: [\n", "config.yaml:2: invalid YAML"),
        (
            "log_level: loud\ntrino: [{name: a, endpoint: {url: 'http://x'}}]\n",
            "config.yaml:1: log_level: Input should be",
        ),
    ],
)
def test_bad_config_names_file_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "queuescale", "adapter", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert message in proc.stderr.replace(str(tmp_path) + "/", "")
