"""KubeOps's per-pass pod lists against the Kubernetes sandbox over HTTP: one LIST per namespace per pass,
the same pods a label-selected LIST would give, and a pass that reads its own writes."""

from __future__ import annotations

import asyncio

from autoscaler.controller.kube_ops import KubeOps
from autoscaler.sandbox.kube import KubeSandbox
from autoscaler.sandbox.kube_types import DEPLOYMENTS, STATEFULSETS
from autoscaler.sandbox.kube_workloads import workload_manifest
from tests.helpers.kube import running_kube


def names(pods: list[dict[str, object]]) -> list[str]:
    return sorted(str(p["metadata"]["name"]) for p in pods)  # type: ignore[index]


async def test_one_list_per_namespace_per_pass_and_writes_are_read_back() -> None:
    sandbox = KubeSandbox()
    sandbox.create(DEPLOYMENTS, "ns", workload_manifest("Deployment", "a", 2, labels={"app": "a"}))
    sandbox.create(STATEFULSETS, "ns", workload_manifest("StatefulSet", "b", 3, labels={"app": "b"}))
    async with running_kube(sandbox) as kube:
        ops = KubeOps(kube.api)
        uncached = {s: names(await ops.list_pods_json("ns", s)) for s in ("app=a", "app=b", "app in (a,b)")}
        assert len(uncached["app=a"]) == 2
        assert len(uncached["app=b"]) == 3
        ops.begin_pass()
        before = len(sandbox.authorizations)
        got = await asyncio.gather(
            *(ops.list_pods_json("ns", s) for s in ("app=a", "app=b", "app in (a,b)") * 3)
        )
        # Nine reads by three selectors, concurrently: one request, the same answers as the API's selectors.
        assert len(sandbox.authorizations) - before == 1
        assert [names(g) for g in got[:3]] == [uncached["app=a"], uncached["app=b"], uncached["app in (a,b)"]]
        pod = uncached["app=b"][0]
        await ops.annotate_pod("ns", pod, {"queuescale.io/drain-started": "2026-01-01T00:00:00Z"})
        after = await ops.list_pods_json("ns", "app=b")
        notes = next(p for p in after if p["metadata"]["name"] == pod)["metadata"].get("annotations") or {}
        assert "queuescale.io/drain-started" in notes
        # A new pass lists again.
        ops.begin_pass()
        before = len(sandbox.authorizations)
        await ops.list_pods_json("ns", "app=a")
        await ops.list_pods_json("other", "app=a")
        assert len(sandbox.authorizations) - before == 2
