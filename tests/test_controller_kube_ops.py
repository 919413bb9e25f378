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


async def test_scales_from_the_pass_lists_equal_the_scale_subresource() -> None:
    sandbox = KubeSandbox()
    plain = workload_manifest("Deployment", "a", 2, labels={"app": "a", "tier": "w"})
    fancy = workload_manifest("StatefulSet", "b", 3, labels={"app": "b", "tier": "w"})
    fancy["spec"]["selector"] = {
        "matchLabels": {"app": "b"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["w", "v"]}],
    }
    sandbox.create(DEPLOYMENTS, "ns", plain)
    sandbox.create(STATEFULSETS, "ns", fancy)
    async with running_kube(sandbox) as kube:
        ops = KubeOps(kube.api)
        direct = [await ops.get_scale("Deployment", "ns", "a"), await ops.get_scale("StatefulSet", "ns", "b")]
        assert direct[1] is not None
        assert direct[1].selector == "app=b,tier in (v,w)"
        ops.begin_pass()
        before = len(sandbox.authorizations)
        cached = [await ops.get_scale("Deployment", "ns", "a"), await ops.get_scale("StatefulSet", "ns", "b")]
        assert await ops.get_scale("Deployment", "ns", "missing") is None
        assert len(sandbox.authorizations) - before == 2
        for d, c in zip(direct, cached, strict=True):
            assert d is not None
            assert c is not None
            assert (c.replicas, c.status_replicas, c.selector) == (d.replicas, d.status_replicas, d.selector)
        # A write in the pass: the next read sees it.
        await ops.set_replicas("Deployment", "ns", "a", 5)
        again = await ops.get_scale("Deployment", "ns", "a")
        assert again is not None
        assert again.replicas == 5
