"""kubectl, a real Kubernetes client, reads discovery and metrics from the running adapter."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess

import pytest

from adapter.samples import Sample
from tests.helpers.adapter import running_adapter
from tests.helpers.scripted import ScriptedSource
from tests.helpers.wait import eventually

BASE = "/apis/external.metrics.k8s.io/v1beta1"
KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None and not os.environ.get("CI"), reason="kubectl not installed")


async def kubectl(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None, "kubectl is required (Debian package kubernetes-client)"
    env = {**os.environ, "KUBECONFIG": os.devnull}
    return await asyncio.to_thread(
        subprocess.run,
        [KUBECTL, f"--server={url}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def sources() -> list[ScriptedSource]:
    adhoc = ScriptedSource("adhoc", ["trino_queued_queries", "trino_nodes"])
    adhoc.answer = [
        Sample("trino_queued_queries", {}, 1.5),
        Sample("trino_nodes", {"state": "active"}, 4),
        Sample("trino_nodes", {"state": "draining"}, 1),
    ]
    pool = ScriptedSource("etl", ["spark_remaining_tasks"], identity={"pool": "etl"})
    return [adhoc, pool]


async def test_kubectl_reads_discovery_and_metrics() -> None:
    async with running_adapter(sources()) as (server, _):
        url = server.url
        await eventually(lambda: kubectl(url, "get", "--raw", "/readyz"), check=lambda p: p.returncode == 0)

        listing = await kubectl(url, "get", "--raw", BASE)
        assert listing.returncode == 0, listing.stderr
        names = {r["name"] for r in json.loads(listing.stdout)["resources"]}
        assert names == {"trino_queued_queries", "trino_nodes", "spark_remaining_tasks"}

        got = await kubectl(
            url, "get", "--raw", f"{BASE}/namespaces/default/trino_nodes?labelSelector=state%3Dactive"
        )
        assert got.returncode == 0, got.stderr
        assert [i["value"] for i in json.loads(got.stdout)["items"]] == ["4"]

        idle = await kubectl(url, "get", "--raw", f"{BASE}/namespaces/default/spark_remaining_tasks")
        assert [i["value"] for i in json.loads(idle.stdout)["items"]] == ["0"]

        missing = await kubectl(url, "get", "--raw", f"{BASE}/namespaces/default/nope")
        assert missing.returncode != 0
        assert "NotFound" in missing.stderr
        assert 'could not find the metric "nope"' in missing.stderr


async def test_kubectl_discovery_has_no_errors() -> None:
    async with running_adapter(sources()) as (server, _):
        resources = await kubectl(
            server.url, "api-resources", "--api-group=external.metrics.k8s.io", "-o", "wide"
        )
        assert resources.returncode == 0, resources.stderr
        assert resources.stderr == ""
        lines = resources.stdout.splitlines()
        assert "VERBS" in lines[0]
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        assert set(rows) == {"trino_queued_queries", "trino_nodes", "spark_remaining_tasks"}
        for row in rows.values():
            assert row[1:] == ["external.metrics.k8s.io/v1beta1", "true", "ExternalMetricValueList", "get"]

        versions = await kubectl(server.url, "api-versions")
        assert versions.returncode == 0, versions.stderr
        assert versions.stdout.split() == ["external.metrics.k8s.io/v1beta1"]
