"""The API server over real HTTP: discovery, metric reads, every error as a metav1.Status, health."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapter.app import CACHES
from adapter.runtime import _read_token
from adapter.samples import Sample
from core.errors import SourceError
from tests.helpers.adapter import running_adapter
from tests.helpers.scripted import ScriptedSource
from tests.helpers.wait import eventually

BASE = "/apis/external.metrics.k8s.io/v1beta1"
Q = "trino_queued_queries"
RG = "trino_resource_group_queued_queries"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


async def fetch(url: str, method: str = "GET", **kw: Any) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kw) as resp:
        text = await resp.text()
        ctype = resp.headers.get("Content-Type", "")
        body = await resp.json() if ctype.startswith("application/json") else text
        return resp.status, body, ctype


def assert_status(body: Any, code: int, reason: str) -> None:
    assert isinstance(body, dict), body
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["code"] == code
    assert body["reason"] == reason
    assert body["message"]


def adhoc() -> ScriptedSource:
    source = ScriptedSource("adhoc", [Q, RG])
    source.answer = [
        Sample(Q, {}, 1.5),
        Sample(RG, {"resource_group": "global.bi"}, 3000),
        Sample(RG, {"resource_group": "global.etl"}, 2),
    ]
    return source


async def ready(url: str) -> None:
    await eventually(lambda: fetch(url + "/readyz"), check=lambda r: r[0] == 200)


async def test_discovery_documents() -> None:
    async with running_adapter([adhoc()]) as (server, _):
        status, body, _ = await fetch(server.url + "/apis")
        assert status == 200
        assert body["kind"] == "APIGroupList"
        assert body["groups"][0]["name"] == "external.metrics.k8s.io"
        assert body["groups"][0]["preferredVersion"]["groupVersion"] == "external.metrics.k8s.io/v1beta1"

        status, body, _ = await fetch(server.url + "/apis", headers={"Accept": AGGREGATED})
        assert status == 406
        assert_status(body, 406, "NotAcceptable")
        # A client that can take either gets the plain list.
        status, body, _ = await fetch(
            server.url + "/apis", headers={"Accept": AGGREGATED + ",application/json"}
        )
        assert (status, body["kind"]) == (200, "APIGroupList")

        status, body, _ = await fetch(server.url + "/apis/external.metrics.k8s.io")
        assert (status, body["kind"], body["name"]) == (200, "APIGroup", "external.metrics.k8s.io")

        status, body, _ = await fetch(server.url + BASE)
        assert status == 200
        assert body["kind"] == "APIResourceList"
        assert body["groupVersion"] == "external.metrics.k8s.io/v1beta1"
        assert [r["name"] for r in body["resources"]] == [Q, RG]
        for resource in body["resources"]:
            assert resource == {
                "name": resource["name"],
                "singularName": "",
                "namespaced": True,
                "kind": "ExternalMetricValueList",
                "verbs": ["get"],
            }


async def test_metric_values_are_canonical_quantities() -> None:
    async with running_adapter([adhoc()]) as (server, _):
        await ready(server.url)
        status, body, _ = await fetch(server.url + f"{BASE}/namespaces/default/{Q}")
        assert status == 200
        assert body["kind"] == "ExternalMetricValueList"
        assert body["apiVersion"] == "external.metrics.k8s.io/v1beta1"
        [item] = body["items"]
        assert item["metricName"] == Q
        assert item["metricLabels"] == {"cluster": "adhoc"}
        assert item["value"] == "1500m"
        assert item["timestamp"].endswith("Z")

        status, body, _ = await fetch(
            server.url + f"{BASE}/namespaces/default/{RG}",
            params={"labelSelector": "resource_group in (global.bi)"},
        )
        assert status == 200
        assert [i["value"] for i in body["items"]] == ["3k"]


async def test_idle_metric_answers_zero_not_an_empty_list() -> None:
    source = ScriptedSource("adhoc", [Q, RG])
    async with running_adapter([source]) as (server, _):
        await ready(server.url)
        status, body, _ = await fetch(
            server.url + f"{BASE}/namespaces/default/{RG}",
            params={"labelSelector": "resource_group=global.x"},
        )
        assert status == 200
        assert [(i["value"], i["metricLabels"]) for i in body["items"]] == [
            ("0", {"resource_group": "global.x"})
        ]


async def test_a_mean_with_no_series_answers_an_empty_list_and_keda_a_503() -> None:
    task_s = "spark_task_seconds"
    source = ScriptedSource("etl", [task_s], identity={"pool": "etl"})
    async with running_adapter([source], keda_token="s3cret") as (server, _):
        await ready(server.url)
        status, body, _ = await fetch(server.url + f"{BASE}/namespaces/default/{task_s}")
        assert status == 200
        assert body["items"] == []
        auth = {"Authorization": "Bearer s3cret"}
        status, body, _ = await fetch(server.url + f"/keda/v1/namespaces/default/{task_s}", headers=auth)
        assert_status(body, 503, "ServiceUnavailable")
        assert "has no value" in body["message"]


@pytest.mark.parametrize(
    ("path", "params", "method", "code", "reason"),
    [
        # unknown metric
        (f"{BASE}/namespaces/default/no_such_metric", {}, "GET", 404, "NotFound"),
        # root-scoped shape does not exist
        (f"{BASE}/{Q}", {}, "GET", 404, "NotFound"),
        # namespace without a metric
        (f"{BASE}/namespaces/default", {}, "GET", 404, "NotFound"),
        # a metric name with a slash
        (f"{BASE}/namespaces/default/{Q}/extra", {}, "GET", 404, "NotFound"),
        # invalid namespace name
        (f"{BASE}/namespaces/Not_A_Namespace/{Q}", {}, "GET", 404, "NotFound"),
        # malformed selectors
        (f"{BASE}/namespaces/default/{Q}", {"labelSelector": "x=a||y=b"}, "GET", 400, "BadRequest"),
        (f"{BASE}/namespaces/default/{Q}", {"labelSelector": "x==a==b"}, "GET", 400, "BadRequest"),
        (f"{BASE}/namespaces/default/{Q}", {"labelSelector": "!x=a"}, "GET", 400, "BadRequest"),
        (f"{BASE}/namespaces/default/{Q}", {"labelSelector": "x<a"}, "GET", 400, "BadRequest"),
        # a huge selector is refused with a Status, cheaply
        (
            f"{BASE}/namespaces/default/{Q}",
            {"labelSelector": "a=b," * 3000 + "c=d"},
            "GET",
            400,
            "BadRequest",
        ),
        # wrong methods
        (f"{BASE}/namespaces/default/{Q}", {}, "POST", 405, "MethodNotAllowed"),
        (f"{BASE}/namespaces/default/{Q}", {}, "DELETE", 405, "MethodNotAllowed"),
        (BASE, {}, "PUT", 405, "MethodNotAllowed"),
        # odd paths
        ("/apis/other.group/v1", {}, "GET", 404, "NotFound"),
        ("/openapi/v2", {}, "GET", 404, "NotFound"),
        ("/../../etc/passwd", {}, "GET", 404, "NotFound"),
        # the selector names a cluster nobody serves
        (f"{BASE}/namespaces/default/{Q}", {"labelSelector": "cluster=typo"}, "GET", 404, "NotFound"),
    ],
)
async def test_errors_are_statuses(
    path: str, params: dict[str, str], method: str, code: int, reason: str
) -> None:
    async with running_adapter([adhoc()]) as (server, _):
        await ready(server.url)
        status, body, ctype = await fetch(server.url + path, method, params=params)
        assert status == code
        assert ctype.startswith("application/json")
        assert_status(body, code, reason)
        # and the server keeps serving
        status, _, _ = await fetch(server.url + f"{BASE}/namespaces/default/{Q}")
        assert status == 200


async def test_broken_source_degrades_only_its_metrics() -> None:
    good = adhoc()
    bad = ScriptedSource("etl", [Q], max_age=0.3, poll_interval=0.05)
    bad.answer = [Sample(Q, {}, 9)]
    async with running_adapter([good, bad]) as (server, _):
        await ready(server.url)
        url = server.url + f"{BASE}/namespaces/default/{Q}"
        status, body, _ = await fetch(url, params={"labelSelector": "cluster=etl"})
        assert (status, body["items"][0]["value"]) == (200, "9")
        bad.answer = SourceError("connection refused")
        status, body, _ = await eventually(
            lambda: fetch(url, params={"labelSelector": "cluster=etl"}), check=lambda r: r[0] != 200
        )
        assert_status(body, 503, "ServiceUnavailable")
        status, body, _ = await fetch(url, params={"labelSelector": "cluster=adhoc"})
        assert (status, body["items"][0]["value"]) == (200, "1500m")
        # Both clusters at once cannot be answered honestly while one is stale.
        status, body, _ = await fetch(url)
        assert status == 503
        # The source comes back: so does its metric.
        bad.answer = [Sample(Q, {}, 4)]
        status, body, _ = await eventually(
            lambda: fetch(url, params={"labelSelector": "cluster=etl"}), check=lambda r: r[0] == 200
        )
        assert body["items"][0]["value"] == "4"


async def test_hanging_source_times_out_and_others_keep_serving() -> None:
    good = adhoc()
    stuck = ScriptedSource("etl", [Q], timeout=0.2, max_age=0.5)
    stuck.hang = True
    async with running_adapter([good, stuck]) as (server, _):
        await ready(server.url)
        status, body, _ = await fetch(server.url + "/metrics")
        assert status == 200
        assert 'queuescale_adapter_source_poll_errors_total{reason="timeout",source="etl"}' in body
        status, body, _ = await fetch(
            server.url + f"{BASE}/namespaces/default/{Q}", params={"labelSelector": "cluster=etl"}
        )
        assert_status(body, 503, "ServiceUnavailable")
        status, _, _ = await fetch(
            server.url + f"{BASE}/namespaces/default/{Q}", params={"labelSelector": "cluster=adhoc"}
        )
        assert status == 200


async def test_health_and_readiness() -> None:
    source = adhoc()
    async with running_adapter([source], poll=False) as (server, poller):
        for path in ("/healthz", "/livez"):
            status, body, _ = await fetch(server.url + path)
            assert (status, body) == (200, "ok")
        status, _, _ = await fetch(server.url + "/readyz")
        assert status == 503
        await poller.poll_once(source)
        status, body, _ = await fetch(server.url + "/readyz")
        assert (status, body) == (200, "ok")


async def test_readiness_does_not_wait_for_a_dead_source() -> None:
    dead = ScriptedSource("etl", [Q])
    dead.answer = SourceError("refused")
    async with running_adapter([adhoc(), dead]) as (server, _):
        await ready(server.url)


async def test_own_metrics() -> None:
    async with running_adapter([adhoc()]) as (server, _):
        await ready(server.url)
        await fetch(server.url + f"{BASE}/namespaces/default/{Q}")
        status, body, ctype = await fetch(server.url + "/metrics")
        assert status == 200
        assert ctype.startswith("text/plain")
        for needle in (
            'queuescale_adapter_request_duration_seconds_bucket{code="200",le="0.005",route="metric"}',
            'queuescale_adapter_sample_age_seconds{source="adhoc"}',
            'queuescale_adapter_source_poll_duration_seconds_count{source="adhoc"}',
            'queuescale_adapter_source_up{source="adhoc"} 1.0',
            'queuescale_adapter_series{source="adhoc"} 3.0',
        ):
            assert needle in body, needle


async def test_keda_metrics_api_endpoint() -> None:
    async with running_adapter([adhoc()], keda_token="s3cret") as (server, _):
        await ready(server.url)
        url = server.url + f"/keda/v1/namespaces/default/{RG}"
        status, body, _ = await fetch(url)
        assert_status(body, 401, "Unauthorized")
        status, body, _ = await fetch(url, headers={"Authorization": "Bearer wrong"})
        assert status == 401
        status, body, _ = await fetch(url, headers={"Authorization": "Bearer s3cret"})
        assert status == 200
        assert body["metricName"] == RG
        assert body["value"] == 3002
        assert sorted(i["value"] for i in body["items"]) == [2, 3000]


async def test_keda_endpoint_off_by_default() -> None:
    async with running_adapter([adhoc()], keda=False) as (server, _):
        await ready(server.url)
        _, body, _ = await fetch(server.url + f"/keda/v1/namespaces/default/{RG}")
        assert_status(body, 404, "NotFound")


async def raw_request(port: int, request: bytes) -> tuple[int, Any]:
    """One request as raw bytes (aiohttp's client cannot send CONNECT with a path)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        if request.startswith(b"HEAD "):
            return int(head.split()[1]), None
        body = await asyncio.wait_for(reader.readexactly(length), 5)
        return int(head.split()[1]), json.loads(body)
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(
    "method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "HEAD", "PROPFIND"]
)
@pytest.mark.parametrize("path", [f"{BASE}/namespaces/default/{Q}", f"/keda/v1/namespaces/default/{Q}"])
async def test_every_method_but_get_on_a_metric_path_is_a_405_status(method: str, path: str) -> None:
    # The probe: CONNECT on a metric path was a 404.
    async with running_adapter([adhoc()]) as (server, _):
        await ready(server.url)
        status, body = await raw_request(
            server.port, f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
        )
        assert status == 405
        if method != "HEAD":  # a HEAD answer has no body
            assert_status(body, 405, "MethodNotAllowed")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        # the probe: a token without the Bearer scheme was accepted
        ("s3cret", 401),
        ("Bearer s3cret", 200),
        # the scheme is case-insensitive, as in Kubernetes
        ("bearer s3cret", 200),
        ("BEARER s3cret", 200),
        ("Bearer  s3cret", 401),
        ("Bearer s3cret extra", 401),
        ("Bearer ", 401),
        ("Bearer", 401),
        ("Basic s3cret", 401),
        ("Token s3cret", 401),
        ("Bearer s3cre", 401),
        ("Bearer s3cret0", 401),
        (None, 401),
    ],
)
async def test_keda_accepts_only_the_bearer_scheme(header: str | None, code: int) -> None:
    async with running_adapter([adhoc()], keda_token="s3cret") as (server, _):
        await ready(server.url)
        headers = {"Authorization": header} if header is not None else {}
        status, body, _ = await fetch(server.url + f"/keda/v1/namespaces/default/{RG}", headers=headers)
        assert status == code, body


@pytest.mark.parametrize("content", ["", "   \n", "\n\t\n"])
async def test_an_empty_keda_token_file_lets_nobody_in(tmp_path: Path, content: str) -> None:
    # The probe: an empty token file opened the endpoint to requests without Authorization. At start
    # it is a configuration error (tests/adapter/test_runtime.py); emptied later, every request is refused.
    token_file = tmp_path / "token"
    token_file.write_text(content)
    async with running_adapter([adhoc()], keda_token=lambda: _read_token(token_file)) as (server, _):
        await ready(server.url)
        url = server.url + f"/keda/v1/namespaces/default/{RG}"
        for headers in (
            {},
            {"Authorization": "Bearer "},
            {"Authorization": "Bearer x"},
            {"Authorization": ""},
        ):
            status, body, _ = await fetch(url, headers=headers)
            assert status == 401, (headers, body)


async def test_selector_and_answer_caches_are_bounded_in_bytes() -> None:
    # The probe: 4,500 distinct ~9 KB selectors took RSS from 141 to 709 MB, still rising (caches counted
    # entries). Each selector matches: every one parses and every answer is encoded and kept if it fits.
    async with running_adapter([adhoc()], selector_cache_bytes=1 << 20, response_cache_bytes=1 << 20) as (
        server,
        _,
    ):
        await ready(server.url)
        caches = server.runner.app[CACHES]
        async with aiohttp.ClientSession() as session:
            for i in range(300):
                selector = f"resource_group notin (x{i}," + ",".join(f"v{j:05d}" for j in range(1250)) + ")"
                async with session.get(
                    server.url + f"{BASE}/namespaces/default/{RG}", params={"labelSelector": selector}
                ) as resp:
                    assert resp.status == 200
                    assert len((await resp.json())["items"]) == 2
        assert caches.selectors.bytes <= 1 << 20
        assert caches.bodies.bytes <= 1 << 20
        assert caches.selectors.evictions > 0
        assert len(caches.selectors) < 300
        _, exposition, _ = await fetch(server.url + "/metrics")
        evicted = re.search(
            r'queuescale_adapter_cache_evictions_total\{cache="selectors"\} (\S+)', exposition
        )
        assert evicted is not None
        assert float(evicted.group(1)) == caches.selectors.evictions
