"""KubeOps against the Kubernetes sandbox over HTTP: per-pass lists (one LIST per namespace per pass) and
watch caches (no request per pass), the same pods and scales the API gives, and a pass that reads its own
writes either way."""

from __future__ import annotations

import asyncio

from autoscaler.controller.kube_ops import KubeOps, WorkloadKind
from lab.sandbox.kube import KubeSandbox
from lab.sandbox.kube_types import DEPLOYMENTS, STATEFULSETS
from lab.sandbox.kube_workloads import workload_manifest
from tests.helpers.kube import running_kube
from tests.helpers.wait import eventually


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


WORKLOADS: tuple[tuple[WorkloadKind, str], ...] = (("Deployment", "a"), ("StatefulSet", "b"))


def cached_world() -> KubeSandbox:
    sandbox = KubeSandbox()
    sandbox.create(DEPLOYMENTS, "ns", workload_manifest("Deployment", "a", 2, labels={"app": "a"}))
    sandbox.create(STATEFULSETS, "ns", workload_manifest("StatefulSet", "b", 3, labels={"app": "b"}))
    return sandbox


async def test_with_the_cache_passes_read_pods_and_workloads_without_requests() -> None:
    sandbox = cached_world()
    async with running_kube(sandbox) as kube:
        plain = KubeOps(kube.api)
        ops = KubeOps(kube.api, cache=True)
        try:
            selectors = ("app=a", "app=b", "app in (a,b)", "app notin (a)")
            direct = {s: names(await plain.list_pods_json("ns", s)) for s in selectors}
            scales = {k: await plain.get_scale(k, "ns", n) for k, n in WORKLOADS}
            # The first pass waits for each informer's first list.
            ops.begin_pass()
            assert {s: names(await ops.list_pods_json("ns", s)) for s in selectors} == direct
            for kind, name in WORKLOADS:
                assert await ops.get_scale(kind, "ns", name) is not None
            for pass_ in range(3):
                ops.begin_pass()
                before = len(sandbox.authorizations)
                got = {s: names(await ops.list_pods_json("ns", s)) for s in selectors}
                cached = {k: await ops.get_scale(k, "ns", n) for k, n in WORKLOADS}
                assert await ops.get_scale("Deployment", "ns", "missing") is None
                # Nothing asked of the API server: the watches keep the cache current.
                assert len(sandbox.authorizations) == before, pass_
                assert got == direct
                for workload, scale in scales.items():
                    assert scale is not None
                    mine = cached[workload]
                    assert mine is not None
                    assert (mine.replicas, mine.status_replicas, mine.selector) == (
                        scale.replicas,
                        scale.status_replicas,
                        scale.selector,
                    )
        finally:
            await ops.close()


async def test_with_the_cache_a_pass_reads_its_own_writes_at_once() -> None:
    sandbox = cached_world()
    async with running_kube(sandbox) as kube:
        ops = KubeOps(kube.api, cache=True)
        try:
            ops.begin_pass()
            pod = names(await ops.list_pods_json("ns", "app=b"))[0]
            await ops.annotate_pod("ns", pod, {"queuescale.io/drain-started": "1"})
            annotated = next(
                p for p in await ops.list_pods_json("ns", "app=b") if p["metadata"]["name"] == pod
            )
            assert annotated["metadata"]["annotations"]["queuescale.io/drain-started"] == "1"
            await ops.set_replicas("StatefulSet", "ns", "b", 5)
            scale = await ops.get_scale("StatefulSet", "ns", "b")
            assert scale is not None
            assert scale.replicas == 5
            # The watch then brings the same, and the pods the StatefulSet made for it.
            await eventually(lambda: pods_of(ops, "app=b"), check=lambda got: len(got) == 5)
            server = sandbox.get_object("apps", "v1", "statefulsets", "ns", "b")
            assert server is not None
            cached = await ops.get_scale("StatefulSet", "ns", "b")
            assert cached is not None
            assert cached.resource_version == server["metadata"]["resourceVersion"]
            doomed = names(await ops.list_pods_json("ns", "app=a"))[0]
            assert await ops.delete_pod("ns", doomed)
            left = await ops.list_pods_json("ns", "app=a")
            assert all(
                p["metadata"]["name"] != doomed or p["metadata"].get("deletionTimestamp") for p in left
            )
        finally:
            await ops.close()


async def pods_of(ops: KubeOps, selector: str) -> list[str]:
    return names(await ops.list_pods_json("ns", selector))


async def test_a_namespace_not_synced_yet_is_listed_per_pass_meanwhile() -> None:
    sandbox = cached_world()
    async with running_kube(sandbox) as kube:
        # No wait at all for the first sync: the first pass cannot have it and lists instead.
        ops = KubeOps(kube.api, cache=True, sync_timeout_seconds=0.0)
        try:
            ops.begin_pass()
            before = len(sandbox.authorizations)
            assert len(await ops.list_pods_json("ns", "app=b")) == 3
            assert len(await ops.list_pods_json("ns", "app=a")) == 2
            assert len(sandbox.authorizations) - before >= 1
            # Once the informer has listed, reads come from it.
            await eventually(lambda: quiet_pass(ops, sandbox), check=lambda requests: requests == 0)
        finally:
            await ops.close()


async def quiet_pass(ops: KubeOps, sandbox: KubeSandbox) -> int:
    ops.begin_pass()
    before = len(sandbox.authorizations)
    assert len(await ops.list_pods_json("ns", "app=b")) == 3
    return len(sandbox.authorizations) - before
