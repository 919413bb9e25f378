"""The informer cache against the Kubernetes API sandbox over HTTP: list then watch, label-selected reads equal
to the API server's own, read-your-writes, resumed and expired watches, a restarted server, a quiet close."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client
import pytest
from aiohttp import web

from autoscaler.controller.informer import Informer
from core.selectors import parse_selector
from lab.sandbox.kube import KubeSandbox, client_for
from lab.sandbox.kube_crds import spark_operator_crds
from lab.sandbox.kube_types import DEPLOYMENTS, STATEFULSETS
from lab.sandbox.kube_workloads import workload_manifest
from lab.sandbox.serve import Served, serve
from tests.helpers.kube import call, running_kube
from tests.helpers.wait import eventually

NS = "team"
PODS = f"/api/v1/namespaces/{NS}/pods"
LOGGER = "autoscaler.controller.informer"
Obj = dict[str, Any]


@dataclass(frozen=True)
class Request:
    path: str
    watch: bool
    resource_version: str
    selected: bool
    """Had a labelSelector: the tests' own lists always send one (maybe empty), the informer's never do."""


@dataclass
class Server:
    """The sandbox served on loopback with a log of the requests it got, and hooks run once right after the
    next LIST of a path has been answered (to change the cluster between an informer's list and its watch);
    it can be stopped and started again on the same port."""

    sandbox: KubeSandbox
    requests: list[Request] = field(default_factory=list)
    after_list: dict[str, Callable[[], None]] = field(default_factory=dict)
    served: Served | None = None
    port: int = 0

    async def start(self) -> None:
        @web.middleware
        async def record(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            watching = request.query.get("watch") == "true"
            self.requests.append(
                Request(
                    request.path,
                    watching,
                    request.query.get("resourceVersion", ""),
                    "labelSelector" in request.query,
                )
            )
            response = await handler(request)
            informer_list = not watching and "labelSelector" not in request.query
            hook = self.after_list.pop(request.path, None) if informer_list else None
            if hook is not None:
                hook()
            return response

        app = self.sandbox.app()
        app.middlewares.append(record)
        self.served = await serve(app, port=self.port)
        self.port = self.served.port

    async def stop(self) -> None:
        if self.served is not None:
            await self.served.stop()
            self.served = None

    def lists(self, path: str) -> int:
        """The informer's LISTs of ``path``."""
        return sum(1 for r in self.requests if r.path == path and not r.watch and not r.selected)

    def watches(self, path: str) -> list[str]:
        """The resourceVersion each watch of ``path`` started from."""
        return [r.resource_version for r in self.requests if r.path == path and r.watch]


@asynccontextmanager
async def serving(sandbox: KubeSandbox) -> AsyncIterator[tuple[Server, kubernetes.client.ApiClient]]:
    server = Server(sandbox)
    await server.start()
    api = client_for(f"http://127.0.0.1:{server.port}")
    try:
        yield server, api
    finally:
        api.close()  # type: ignore[no-untyped-call]
        await server.stop()


@asynccontextmanager
async def informing(list_func: Callable[..., Any], **options: Any) -> AsyncIterator[Informer]:
    informer = Informer(list_func, **{"resource": "pods", **options})
    try:
        yield informer
    finally:
        # close() joins the threads; off the loop, which also serves the sandbox they may be talking to.
        await asyncio.to_thread(informer.close)


def threads(resource: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"informer {resource} ")]


def names(objects: list[Obj]) -> list[str]:
    return [str(o["metadata"]["name"]) for o in objects]


def versions(objects: list[Obj]) -> dict[str, str]:
    return {str(o["metadata"]["name"]): str(o["metadata"]["resourceVersion"]) for o in objects}


async def api_list(list_func: Callable[..., Any], namespace: str, selector: str = "") -> list[Obj]:
    response = await call(list_func, namespace, label_selector=selector, _preload_content=False)
    items: list[Obj] = json.loads(response.data)["items"]
    return items


async def caught_up(informer: Informer, list_func: Callable[..., Any], namespace: str) -> None:
    """Wait until the cache holds exactly what the API server lists, at the same versions."""

    async def both() -> tuple[dict[str, str], dict[str, str]]:
        return versions(informer.list(namespace)), versions(await api_list(list_func, namespace))

    await eventually(both, check=lambda b: b[0] == b[1], timeout=10)


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


async def test_lists_then_follows_creates_updates_and_deletes() -> None:
    sandbox = KubeSandbox()
    for name in ("a", "b"):
        sandbox.add_pod(NS, name, {"app": "x"}, "10.0.0.1")
    async with running_kube(sandbox) as kube:
        core = kubernetes.client.CoreV1Api(kube.api)
        async with informing(core.list_namespaced_pod) as informer:
            assert not informer.synced(NS)
            assert informer.list(NS) == []
            assert await informer.wait_synced(NS, 10)
            assert names(informer.list(NS)) == ["a", "b"]
            a = informer.get(NS, "a")
            assert a is not None
            # listed items get the kind and apiVersion watch events carry
            assert (a["kind"], a["apiVersion"], a["metadata"]["labels"]) == ("Pod", "v1", {"app": "x"})
            informer.ensure(NS)
            assert len(threads("pods")) == 1

            sandbox.add_pod(NS, "c", {"app": "x"}, "10.0.0.1")  # the sandbox's API does not create bare pods
            await call(core.patch_namespaced_pod, "b", NS, {"metadata": {"labels": {"app": "y"}}})
            await call(core.delete_namespaced_pod, "a", NS, grace_period_seconds=0)
            await caught_up(informer, core.list_namespaced_pod, NS)
            assert informer.get(NS, "a") is None
            b = informer.get(NS, "b")
            assert b is not None
            assert b["metadata"]["labels"] == {"app": "y"}
            assert names(informer.list(NS)) == ["b", "c"]
            assert informer.synced(NS)

            # another namespace: its own thread, empty but synced
            assert await informer.wait_synced("empty", 10)
            assert informer.list("empty") == []
            assert informer.get("empty", "b") is None
            assert len(threads("pods")) == 2


# answered from the label index alone
INDEXED = [
    "app=a",
    "app==b,tier=web",
    "app in (c)",
    "app=a,tier=db",
    "app=a,app=b",
    "app=zzz",
    "app in (a,b)",
    "app in (a,zzz)",
    "tier in (web,db),app in (a,c)",
    "app=a,tier in (web,db)",
]
# index then label checks, or label checks alone
CHECKED = [
    "",
    "app notin (a)",
    "tier",
    "!tier",
    "tier!=web",
    "app=b,!tier",
    "app in (b,c),tier notin (web)",
    "zone>1",
]


async def test_label_selectors_give_what_the_api_server_lists_also_after_labels_change() -> None:
    sandbox = KubeSandbox()
    for i in range(12):
        labels = {"app": "abc"[i % 3], "zone": str(i % 4)}
        if i % 2:
            labels["tier"] = "web" if i % 4 == 1 else "db"
        sandbox.add_pod(NS, f"p{i:02d}", labels, "10.0.0.1")
    async with running_kube(sandbox) as kube:
        core = kubernetes.client.CoreV1Api(kube.api)
        async with informing(core.list_namespaced_pod) as informer:
            assert await informer.wait_synced(NS, 10)

            async def compare() -> None:
                for text in INDEXED + CHECKED:
                    cached = names(informer.list(NS, parse_selector(text)))
                    assert cached == sorted(names(await api_list(core.list_namespaced_pod, NS, text))), text
                assert names(informer.list(NS)) == names(informer.list(NS, parse_selector("")))

            await compare()
            assert names(informer.list(NS, parse_selector("app=a"))) == ["p00", "p03", "p06", "p09"]
            assert names(informer.list(NS, parse_selector("app=a,tier=db"))) == ["p03"]
            # moved out of app=a into app=b; a label dropped; a label added; a value changed
            patches: dict[str, dict[str, str | None]] = {
                "p00": {"app": "b"},
                "p03": {"tier": None},
                "p06": {"tier": "web"},
                "p01": {"tier": "db", "app": "a"},
            }
            for name, change in patches.items():
                await call(core.patch_namespaced_pod, name, NS, {"metadata": {"labels": change}})
            await caught_up(informer, core.list_namespaced_pod, NS)
            await compare()
            assert names(informer.list(NS, parse_selector("app=a"))) == ["p01", "p03", "p06", "p09"]
            assert names(informer.list(NS, parse_selector("app=a,tier=db"))) == ["p01"]
            assert names(informer.list(NS, parse_selector("app=b"))) == ["p00", "p04", "p07", "p10"]


async def test_written_and_deleted_objects_hold_while_the_watch_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox = KubeSandbox()
    for name in ("a", "b", "c"):
        sandbox.add_pod(NS, name, {"app": "x"}, "10.0.0.1")
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    async with serving(sandbox) as (server, api):
        core = kubernetes.client.CoreV1Api(api)
        # A long retry: after the 410 below the namespace stays unwatched, so only our own writes move it.
        async with informing(core.list_namespaced_pod, retry_seconds=30) as informer:
            written: list[Obj] = []

            def write_after_the_list() -> None:
                # The controller writes pod a between the informer's list and its watch, then the history
                # is compacted: the list is older than the write, and the watch from it gets 410 Expired.
                answer = sandbox.add_pod(NS, "a", {"app": "y"}, "10.0.0.1")
                informer.written(answer)
                written.append(answer)
                sandbox.compact()

            server.after_list[PODS] = write_after_the_list
            informer.ensure(NS)
            await eventually(
                lambda: asyncio.sleep(0, bool(server.watches(PODS)) and not informer.synced(NS)), timeout=10
            )
            assert server.lists(PODS) == 1
            assert informer.get(NS, "a") is written[0]
            assert names(informer.list(NS, parse_selector("app=y"))) == ["a"]
            assert names(informer.list(NS, parse_selector("app=x"))) == ["b", "c"]

            # A PATCH's answer is read back at once, and an older version does not replace it.
            before = informer.get(NS, "b")
            assert before is not None
            response: Any = await call(
                core.patch_namespaced_pod,
                "b",
                NS,
                {"metadata": {"labels": {"app": "z"}}},
                _preload_content=False,
            )
            patched = json.loads(response.data)
            informer.written(patched)
            assert informer.get(NS, "b") is patched
            informer.written(before)
            assert informer.get(NS, "b") is patched
            assert names(informer.list(NS, parse_selector("app=z"))) == ["b"]
            assert names(informer.list(NS, parse_selector("app=x"))) == ["c"]

            informer.deleted(NS, "c")
            assert informer.get(NS, "c") is None
            assert informer.list(NS, parse_selector("app=x")) == []
            assert names(informer.list(NS)) == ["a", "b"]
            running = threads("pods")
            assert len(running) == 1
        # close() cut the 30 s wait short
        assert not running[0].is_alive()
    assert warnings_in(caplog) == []
    assert any("410" in r.getMessage() for r in caplog.records if r.name == LOGGER)


async def test_an_older_watch_event_does_not_roll_back_a_write() -> None:
    sandbox = KubeSandbox()
    sandbox.add_pod(NS, "a", {"app": "v0"}, "10.0.0.1")
    async with serving(sandbox) as (server, api):
        core = kubernetes.client.CoreV1Api(api)
        async with informing(core.list_namespaced_pod, retry_seconds=30) as informer:
            assert await informer.wait_synced(NS, 10)
            await eventually(lambda: asyncio.sleep(0, sandbox.store.hub.watchers), check=lambda n: n == 1)
            # Without yielding to the loop (so the server sends nothing yet): pod a changes to v1, the
            # server ends the watch after that change, a changes again to v2, which the controller wrote
            # and reads back, and the history is compacted so the watch resumed after v1 gets 410.
            v1 = sandbox.add_pod(NS, "a", {"app": "v1"}, "10.0.0.1")
            sandbox.store.hub.close()
            v2 = sandbox.add_pod(NS, "a", {"app": "v2"}, "10.0.0.1")
            sandbox.compact()
            informer.written(v2)
            assert informer.get(NS, "a") is v2
            # The informer saw v1 (it resumes from its version), then got 410 and waits to relist.
            await eventually(
                lambda: asyncio.sleep(0, server.watches(PODS)[-1:] == [v1["metadata"]["resourceVersion"]])
            )
            await eventually(lambda: asyncio.sleep(0, not informer.synced(NS)))
            assert informer.get(NS, "a") is v2
            assert informer.list(NS, parse_selector("app=v1")) == []
            assert names(informer.list(NS, parse_selector("app=v2"))) == ["a"]


async def test_watches_that_time_out_resume_without_a_relist() -> None:
    sandbox = KubeSandbox()
    sandbox.add_pod(NS, "p0", {"app": "x"}, "10.0.0.1")
    async with serving(sandbox) as (server, api):
        core = kubernetes.client.CoreV1Api(api)
        async with informing(
            core.list_namespaced_pod, watch_timeout_seconds=1, retry_seconds=0.05
        ) as informer:
            assert await informer.wait_synced(NS, 10)
            sandbox.add_pod(NS, "p1", {"app": "x"}, "10.0.0.1")
            # the first watch ends after a second; changes made before the next one starts are not lost
            await eventually(lambda: asyncio.sleep(0, len(server.watches(PODS)) >= 2))
            sandbox.delete_pod(NS, "p0")
            sandbox.add_pod(NS, "p2", {"app": "x"}, "10.0.0.1")
            await eventually(lambda: asyncio.sleep(0, len(server.watches(PODS)) >= 3))
            await caught_up(informer, core.list_namespaced_pod, NS)
            assert names(informer.list(NS)) == ["p1", "p2"]
            assert server.lists(PODS) == 1
            started = [int(rv) for rv in server.watches(PODS)]
            assert started == sorted(started)
            assert started[-1] > started[0]
            assert informer.synced(NS)


async def test_an_expired_watch_relists_and_drops_what_was_deleted_in_the_gap() -> None:
    sandbox = KubeSandbox()
    for name in ("keep", "gone", "moved"):
        sandbox.add_pod(NS, name, {"app": "x"}, "10.0.0.1")
    async with serving(sandbox) as (server, api):
        core = kubernetes.client.CoreV1Api(api)

        def change_after_the_list() -> None:
            sandbox.delete_pod(NS, "gone")
            sandbox.add_pod(NS, "new", {"app": "x"}, "10.0.0.1")
            sandbox.add_pod(NS, "moved", {"app": "y"}, "10.0.0.1")
            sandbox.compact()

        server.after_list[PODS] = change_after_the_list
        async with informing(core.list_namespaced_pod, retry_seconds=0.05) as informer:
            informer.ensure(NS)
            await eventually(lambda: asyncio.sleep(0, server.lists(PODS) == 2))
            await caught_up(informer, core.list_namespaced_pod, NS)
            assert names(informer.list(NS)) == ["keep", "moved", "new"]
            assert names(informer.list(NS, parse_selector("app=x"))) == ["keep", "new"]
            assert names(informer.list(NS, parse_selector("app=y"))) == ["moved"]
            assert await informer.wait_synced(NS, 10)
            # the first watch started from the first list and expired
            first_list_version = server.watches(PODS)[0]
            assert int(first_list_version) < sandbox.resource_version


async def test_a_restarted_api_server_is_relisted(caplog: pytest.LogCaptureFixture) -> None:
    sandbox = KubeSandbox()
    for name in ("a", "b"):
        sandbox.add_pod(NS, name, {"app": "x"}, "10.0.0.1")
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    async with serving(sandbox) as (server, api):
        core = kubernetes.client.CoreV1Api(api)
        async with informing(core.list_namespaced_pod, retry_seconds=0.05) as informer:
            assert await informer.wait_synced(NS, 10)
            await server.stop()
            await eventually(lambda: asyncio.sleep(0, not informer.synced(NS)))
            # while it is down: what the informer missed
            sandbox.delete_pod(NS, "a")
            sandbox.add_pod(NS, "b", {"app": "y"}, "10.0.0.1")
            sandbox.add_pod(NS, "c", {"app": "x"}, "10.0.0.1")
            assert names(informer.list(NS)) == ["a", "b"]
            await server.start()
            assert await informer.wait_synced(NS, 10)
            await caught_up(informer, core.list_namespaced_pod, NS)
            assert names(informer.list(NS, parse_selector("app=x"))) == ["c"]
            assert names(informer.list(NS, parse_selector("app=y"))) == ["b"]
    # one warning for the outage, however many attempts it took
    warned = warnings_in(caplog)
    assert len(warned) == 1, warned


async def test_a_refused_list_is_retried_until_it_works(caplog: pytest.LogCaptureFixture) -> None:
    sandbox = KubeSandbox(spark_operator=False)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    path = f"/apis/sparkoperator.k8s.io/v1beta2/namespaces/{NS}/sparkapplications"
    async with serving(sandbox) as (server, api):
        custom = kubernetes.client.CustomObjectsApi(api)

        def spark_applications(namespace: str, **options: Any) -> Any:
            return custom.list_namespaced_custom_object(
                "sparkoperator.k8s.io", "v1beta2", namespace, "sparkapplications", **options
            )

        async with informing(
            spark_applications, resource="sparkapplications", retry_seconds=0.05
        ) as informer:
            # not served yet: 404 on every LIST, retried, the thread alive
            assert not await informer.wait_synced(NS, 0.3)
            assert server.lists(path) >= 2
            assert all(t.is_alive() for t in threads("sparkapplications"))
            for doc in spark_operator_crds():
                sandbox.install_crd(doc)
            sandbox.put_object(
                "sparkoperator.k8s.io",
                "v1beta2",
                "sparkapplications",
                NS,
                {"metadata": {"name": "nightly", "labels": {"team": "data"}}, "spec": {"type": "Scala"}},
            )
            assert await informer.wait_synced(NS, 10)
            assert names(informer.list(NS, parse_selector("team=data"))) == ["nightly"]
    warned = warnings_in(caplog)
    assert len(warned) == 1, warned
    assert "404" in warned[0]


async def test_close_ends_every_thread_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    async with running_kube() as kube:
        core = kubernetes.client.CoreV1Api(kube.api)
        informer = Informer(core.list_namespaced_pod, resource="pods")
        try:
            for namespace in ("one", "two"):
                assert await informer.wait_synced(namespace, 10)
            await eventually(
                lambda: asyncio.sleep(0, kube.sandbox.store.hub.watchers), check=lambda n: n == 2
            )
            running = threads("pods")
            assert len(running) == 2
        finally:
            await asyncio.to_thread(informer.close)
        assert not any(t.is_alive() for t in running)
        # closed: nothing starts again
        informer.ensure("three")
        assert threads("pods") == []
        assert not informer.synced("three")
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == []


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet"])
async def test_workloads_are_informed_like_pods(kind: str) -> None:
    sandbox = KubeSandbox()
    rt = DEPLOYMENTS if kind == "Deployment" else STATEFULSETS
    for name in ("web", "api"):
        sandbox.create(rt, NS, workload_manifest(kind, name, 2, labels={"app": name, "tier": "front"}))
    async with running_kube(sandbox) as kube:
        apps = kubernetes.client.AppsV1Api(kube.api)
        list_func = (
            apps.list_namespaced_deployment if kind == "Deployment" else apps.list_namespaced_stateful_set
        )
        async with informing(list_func, resource=kind.lower()) as informer:
            assert await informer.wait_synced(NS, 10)
            for text in ("app=web", "tier=front", "app in (web,api)", "app notin (web)"):
                expected = sorted(names(await api_list(list_func, NS, text)))
                assert names(informer.list(NS, parse_selector(text))) == expected, text
            web_before = informer.get(NS, "web")
            assert web_before is not None
            assert web_before["kind"] == kind
            assert web_before["spec"]["replicas"] == 2
            patch = (
                apps.patch_namespaced_deployment_scale
                if kind == "Deployment"
                else apps.patch_namespaced_stateful_set_scale
            )
            await call(patch, "web", NS, {"spec": {"replicas": 4}})
            await caught_up(informer, list_func, NS)
            web = informer.get(NS, "web")
            assert web is not None
            assert web["spec"]["replicas"] == 4
