"""Watches on the Kubernetes API sandbox with the official client's ``watch.Watch`` and over raw HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import kubernetes.client
import pytest
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from lab.sandbox.kube import KubeSandbox
from lab.sandbox.kube_workloads import workload_manifest
from tests.helpers.kube import ManualClock, RunningKube, call, running_kube
from tests.helpers.wait import eventually

NS = "default"


def cm(name: str, **labels: str) -> kubernetes.client.V1ConfigMap:
    return kubernetes.client.V1ConfigMap(
        metadata=kubernetes.client.V1ObjectMeta(name=name, labels=labels or None), data={"k": "v"}
    )


def stream(
    func: Callable[..., Any], *args: Any, count: int | None = None, **kwargs: Any
) -> list[tuple[str, Any]]:
    """Events of one watch (blocking): until ``count`` arrived, or until the server ends the watch."""
    w = watch.Watch()
    out: list[tuple[str, Any]] = []
    for event in w.stream(func, *args, **kwargs):
        out.append((event["type"], event["raw_object"]))
        if count is not None and len(out) >= count:
            w.stop()
    return out


async def raw_lines(kube: RunningKube, path: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(kube.url + path) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        return [json.loads(line) for line in (await resp.text()).splitlines() if line]


async def test_watch_follows_changes_from_a_listed_version() -> None:
    async with running_kube() as kube:
        core = kubernetes.client.CoreV1Api(kube.api)
        await call(core.create_namespaced_config_map, NS, cm("before"))
        listed = await call(core.list_namespaced_config_map, NS)
        watcher = asyncio.create_task(
            call(
                stream,
                core.list_namespaced_config_map,
                NS,
                resource_version=listed.metadata.resource_version,
                count=3,
                timeout_seconds=30,
            )
        )
        await eventually(lambda: asyncio.sleep(0, kube.sandbox.store.hub.watchers), check=lambda n: n == 1)
        await call(core.create_namespaced_config_map, NS, cm("a"))
        await call(core.patch_namespaced_config_map, "a", NS, {"data": {"k": "w"}})
        await call(core.delete_namespaced_config_map, "a", NS)
        events = await asyncio.wait_for(watcher, 30)
        assert [(t, o["metadata"]["name"]) for t, o in events] == [
            ("ADDED", "a"),
            ("MODIFIED", "a"),
            ("DELETED", "a"),
        ]
        assert events[1][1]["data"] == {"k": "w"}
        versions = [int(o["metadata"]["resourceVersion"]) for _, o in events]
        assert versions == sorted(versions)
        assert len(set(versions)) == 3
        # watch events carry kind and apiVersion even for built-in types
        assert events[0][1]["kind"] == "ConfigMap"


async def test_watch_without_version_starts_with_the_current_objects() -> None:
    async with running_kube() as kube:
        core = kubernetes.client.CoreV1Api(kube.api)
        for name in ("x", "y"):
            await call(core.create_namespaced_config_map, NS, cm(name))
        await call(core.create_namespaced_config_map, "other", cm("z"))
        events = await call(stream, core.list_namespaced_config_map, NS, count=2, timeout_seconds=30)
        assert [(t, o["metadata"]["name"]) for t, o in events] == [("ADDED", "x"), ("ADDED", "y")]
        everywhere = await call(stream, core.list_config_map_for_all_namespaces, count=3, timeout_seconds=30)
        assert sorted(o["metadata"]["name"] for _, o in everywhere) == ["x", "y", "z"]


async def test_resume_from_a_resource_version_replays_what_followed() -> None:
    async with running_kube() as kube:
        core = kubernetes.client.CoreV1Api(kube.api)
        start = (await call(core.list_namespaced_config_map, NS)).metadata.resource_version
        for name in ("a", "b"):
            await call(core.create_namespaced_config_map, NS, cm(name))
        middle = (await call(core.list_namespaced_config_map, NS)).metadata.resource_version
        await call(core.delete_namespaced_config_map, "a", NS)
        everything = await call(
            stream, core.list_namespaced_config_map, NS, resource_version=start, count=3, timeout_seconds=30
        )
        assert [(t, o["metadata"]["name"]) for t, o in everything] == [
            ("ADDED", "a"),
            ("ADDED", "b"),
            ("DELETED", "a"),
        ]
        rest = await call(
            stream, core.list_namespaced_config_map, NS, resource_version=middle, count=1, timeout_seconds=30
        )
        assert [(t, o["metadata"]["name"]) for t, o in rest] == [("DELETED", "a")]


async def test_too_old_resource_version_is_410_expired() -> None:
    async with running_kube(KubeSandbox(watch_history=3)) as kube:
        core = kubernetes.client.CoreV1Api(kube.api)
        start = (await call(core.list_namespaced_config_map, NS)).metadata.resource_version
        for name in ("a", "b", "c", "d"):
            await call(core.create_namespaced_config_map, NS, cm(name))
        # the history keeps 3 changes: resuming before the 4th-to-last is too old
        with pytest.raises(ApiException) as caught:
            await call(stream, core.list_namespaced_config_map, NS, resource_version=start, timeout_seconds=1)
        assert caught.value.status == 410
        assert "Expired: too old resource version" in str(caught.value.reason)
        # the real server's shape: HTTP 200, then one ERROR event carrying a Status
        lines = await raw_lines(
            kube, f"/api/v1/namespaces/{NS}/configmaps?watch=true&resourceVersion={start}"
        )
        assert len(lines) == 1
        assert lines[0]["type"] == "ERROR"
        status = lines[0]["object"]
        assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
        assert status["message"].startswith(f"too old resource version: {start} (")

        # compaction forgets everything up to now
        now = (await call(core.list_namespaced_config_map, NS)).metadata.resource_version
        await call(core.create_namespaced_config_map, NS, cm("e"))
        kube.sandbox.compact()
        with pytest.raises(ApiException) as caught:
            await call(stream, core.list_namespaced_config_map, NS, resource_version=now, timeout_seconds=1)
        assert caught.value.status == 410
        # a fresh list gives a version to watch from again
        fresh = (await call(core.list_namespaced_config_map, NS)).metadata.resource_version
        assert (
            await call(stream, core.list_namespaced_config_map, NS, resource_version=fresh, timeout_seconds=1)
            == []
        )


async def test_label_selector_turns_relabelling_into_added_and_deleted() -> None:
    async with running_kube() as kube:
        core = kubernetes.client.CoreV1Api(kube.api)
        start = (await call(core.list_namespaced_config_map, NS)).metadata.resource_version
        await call(core.create_namespaced_config_map, NS, cm("a", role="worker"))
        await call(core.create_namespaced_config_map, NS, cm("b", role="coordinator"))
        await call(core.patch_namespaced_config_map, "a", NS, {"metadata": {"labels": {"role": "idle"}}})
        await call(core.patch_namespaced_config_map, "b", NS, {"metadata": {"labels": {"role": "worker"}}})
        events = await call(
            stream,
            core.list_namespaced_config_map,
            NS,
            resource_version=start,
            label_selector="role=worker",
            count=3,
            timeout_seconds=30,
        )
        assert [(t, o["metadata"]["name"]) for t, o in events] == [
            ("ADDED", "a"),
            ("DELETED", "a"),
            ("ADDED", "b"),
        ]
        # the DELETED event shows the object as it last matched, at the change's version
        deleted = events[1][1]
        assert deleted["metadata"]["labels"] == {"role": "worker"}
        assert int(deleted["metadata"]["resourceVersion"]) > int(events[0][1]["metadata"]["resourceVersion"])
        by_name = await call(
            stream,
            core.list_namespaced_config_map,
            NS,
            resource_version=start,
            field_selector="metadata.name=b",
            count=2,
            timeout_seconds=30,
        )
        assert [t for t, _ in by_name] == ["ADDED", "MODIFIED"]


async def test_bookmarks_and_initial_events_end() -> None:
    async with running_kube() as kube:
        core = kubernetes.client.CoreV1Api(kube.api)
        await call(core.create_namespaced_config_map, NS, cm("a"))
        rv = kube.sandbox.resource_version
        lines = await raw_lines(
            kube,
            f"/api/v1/namespaces/{NS}/configmaps?watch=1&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion={rv}",
        )
        # Nothing moved in the type since rv: as the real server, no bookmark (not even at the timeout).
        assert lines == []
        lines = await raw_lines(
            kube,
            f"/api/v1/namespaces/{NS}/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
            "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
        )
        assert [line["type"] for line in lines] == ["ADDED", "BOOKMARK"]
        assert lines[1]["object"]["metadata"] == {
            "resourceVersion": str(rv),
            "annotations": {"k8s.io/initial-events-end": "true"},
        }
        async with aiohttp.ClientSession() as session:
            bad = f"{kube.url}/api/v1/namespaces/{NS}/configmaps?watch=true&sendInitialEvents=true"
            async with session.get(bad) as resp:
                assert resp.status == 422
            async with session.get(f"{kube.url}/api/v1/configmaps?watch=true&resourceVersion=abc") as resp:
                assert resp.status == 400
            async with session.get(
                f"{kube.url}/api/v1/configmaps?watch=true&resourceVersion={rv + 100}"
            ) as resp:
                assert resp.status == 504
                assert (await resp.json())["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


async def test_watching_deployments_shows_pods_becoming_ready() -> None:
    clock = ManualClock()
    async with running_kube(KubeSandbox(clock=clock, tick_interval=0.02)) as kube:
        apps = kubernetes.client.AppsV1Api(kube.api)
        await call(
            apps.create_namespaced_deployment, NS, workload_manifest("Deployment", "w", 2, startup_seconds=60)
        )
        start = kube.sandbox.resource_version

        def ready_seen() -> list[Any]:
            seen = []
            w = watch.Watch()
            for event in w.stream(
                apps.list_namespaced_deployment, NS, resource_version=str(start), timeout_seconds=30
            ):
                seen.append(event["object"].status.ready_replicas)
                if event["object"].status.ready_replicas == 2:
                    w.stop()
            return seen

        watcher = asyncio.create_task(call(ready_seen))
        await eventually(lambda: asyncio.sleep(0, kube.sandbox.store.hub.watchers), check=lambda n: n == 1)
        clock.advance(60)  # no request follows: the background tick carries the pods' start out
        seen = await asyncio.wait_for(watcher, 30)
        assert seen[-1] == 2
        # the typed objects the client built are Deployments, from the event stream
        assert all(r in (None, 1, 2) for r in seen)


async def test_custom_objects_and_converted_versions_watch_too() -> None:
    async with running_kube() as kube:
        co = kubernetes.client.CustomObjectsApi(kube.api)
        start = kube.sandbox.resource_version
        body = {
            "apiVersion": "sparkoperator.k8s.io/v1beta2",
            "kind": "SparkApplication",
            "metadata": {"name": "etl"},
            "spec": {"type": "Scala"},
        }
        await call(
            co.create_namespaced_custom_object,
            "sparkoperator.k8s.io",
            "v1beta2",
            NS,
            "sparkapplications",
            body,
        )
        events = await call(
            stream,
            co.list_namespaced_custom_object,
            "sparkoperator.k8s.io",
            "v1beta2",
            NS,
            "sparkapplications",
            resource_version=str(start),
            count=1,
            timeout_seconds=30,
        )
        assert [(t, o["kind"], o["metadata"]["name"]) for t, o in events] == [
            ("ADDED", "SparkApplication", "etl")
        ]

        core = kubernetes.client.CoreV1Api(kube.api)
        event = kubernetes.client.CoreV1Event(
            metadata=kubernetes.client.V1ObjectMeta(name="e1"),
            involved_object=kubernetes.client.V1ObjectReference(kind="Pod", name="p", namespace=NS),
            reason="Started",
            message="hello",
            type="Normal",
            # events.k8s.io/v1 shows a missing eventTime as null, which this client refuses to read
            event_time=datetime.now(UTC),
            reporting_component="sandbox-test",
            reporting_instance="test",
            action="Start",
        )
        await call(core.create_namespaced_event, NS, event)
        events_v1 = kubernetes.client.EventsV1Api(kube.api)
        seen = await call(
            stream,
            events_v1.list_namespaced_event,
            NS,
            resource_version=str(start),
            count=1,
            timeout_seconds=30,
        )
        assert [(t, o["apiVersion"], o["note"], o["regarding"]["name"]) for t, o in seen] == [
            ("ADDED", "events.k8s.io/v1", "hello", "p")
        ]


async def test_stopping_the_server_ends_open_watches() -> None:
    sandbox = KubeSandbox()
    async with running_kube(sandbox) as kube:
        core = kubernetes.client.CoreV1Api(kube.api)
        watcher = asyncio.create_task(call(stream, core.list_namespaced_config_map, NS, timeout_seconds=600))
        await eventually(lambda: asyncio.sleep(0, sandbox.store.hub.watchers), check=lambda n: n == 1)
        await kube.served.stop()
        assert await asyncio.wait_for(watcher, 30) == []
