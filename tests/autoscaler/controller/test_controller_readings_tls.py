"""The external metrics reader over TLS: the CA, client certificate and bearer token of the official
client's configuration reach the server, as they do when the reader goes through kube-apiserver."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import kubernetes.client
from aiohttp import web

from autoscaler.controller.readings import ExternalApiReader
from core.selectors import parse_selector
from tests.helpers.certs import CertFactory, Issued

TOKEN = "reader-token"


@contextlib.asynccontextmanager
async def tls_api(serving: Issued, client_ca: Issued) -> AsyncIterator[tuple[str, list[web.Request]]]:
    """An HTTPS server answering the external metrics API only to a client with a certificate from
    ``client_ca`` and the bearer token; it echoes the selector it was sent as a metric label."""
    seen: list[web.Request] = []

    async def metric(request: web.Request) -> web.Response:
        seen.append(request)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            body = {"kind": "Status", "status": "Failure", "message": "token rejected", "code": 401}
            return web.json_response(body, status=401)
        item = {
            "metricName": request.match_info["metric"],
            "metricLabels": {"selector": request.query.get("labelSelector", "")},
            "timestamp": "2026-11-24T00:00:00Z",
            "value": "1500m",
        }
        return web.json_response(
            {"kind": "ExternalMetricValueList", "apiVersion": "v1beta1", "items": [item]}
        )

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(serving.cert_file, serving.key_file)
    context.load_verify_locations(client_ca.cert_file)
    context.verify_mode = ssl.CERT_REQUIRED
    app = web.Application()
    app.router.add_get("/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}", metric)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


def configured(
    url: str, ca: Issued, client: Issued | None, token: str = TOKEN
) -> kubernetes.client.ApiClient:
    config = kubernetes.client.Configuration()
    config.host = url
    config.ssl_ca_cert = str(ca.cert_file)
    if client is not None:
        config.cert_file = str(client.cert_file)
        config.key_file = str(client.key_file)
    config.api_key = {"authorization": token}
    config.api_key_prefix = {"authorization": "Bearer"}
    return kubernetes.client.ApiClient(config)


async def test_reads_over_tls_with_the_clients_ca_certificate_and_token(tmp_path: Path) -> None:
    certs = CertFactory(tmp_path)
    ca, clients = certs.ca("serving-ca"), certs.ca("client-ca")
    async with tls_api(certs.serving(ca), clients) as (url, seen):
        api = configured(url, ca, certs.client(clients, "reader"))
        async with ExternalApiReader(api) as reader:
            reading = await reader.read("trino", "trino_queued_queries", parse_selector("cluster=adhoc"), 0)
        api.close()  # type: ignore[no-untyped-call]
    assert reading.error == ""
    assert reading.total == 1.5
    assert reading.series is not None
    assert [dict(s.labels) for s in reading.series] == [{"selector": "cluster=adhoc"}]
    assert [r.path for r in seen] == [
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/trino/trino_queued_queries"
    ]


async def test_a_rejected_token_is_missing_with_the_servers_message(tmp_path: Path) -> None:
    certs = CertFactory(tmp_path)
    ca, clients = certs.ca("serving-ca"), certs.ca("client-ca")
    async with tls_api(certs.serving(ca), clients) as (url, _):
        api = configured(url, ca, certs.client(clients, "reader"), token="wrong")
        async with ExternalApiReader(api) as reader:
            reading = await reader.read("trino", "trino_queued_queries", parse_selector(""), 0)
        api.close()  # type: ignore[no-untyped-call]
    assert reading.series is None
    assert not reading.stale
    assert reading.error == "external metrics API answered 401 for trino_queued_queries: token rejected"


async def test_a_server_the_ca_does_not_vouch_for_is_not_read(tmp_path: Path) -> None:
    certs = CertFactory(tmp_path)
    ca, other, clients = certs.ca("serving-ca"), certs.ca("other-ca"), certs.ca("client-ca")
    async with tls_api(certs.serving(ca), clients) as (url, seen):
        api = configured(url, other, certs.client(clients, "reader"))
        async with ExternalApiReader(api) as reader:
            reading = await reader.read("trino", "trino_queued_queries", parse_selector(""), 0)
        api.close()  # type: ignore[no-untyped-call]
    assert reading.series is None
    assert "unreachable" in reading.error
    assert "certificate verify failed" in reading.error
    assert seen == []


async def test_without_a_client_certificate_the_server_refuses(tmp_path: Path) -> None:
    certs = CertFactory(tmp_path)
    ca, clients = certs.ca("serving-ca"), certs.ca("client-ca")
    async with tls_api(certs.serving(ca), clients) as (url, seen):
        api = configured(url, ca, None)
        async with ExternalApiReader(api) as reader:
            reading = await reader.read("trino", "trino_queued_queries", parse_selector(""), 0)
        api.close()  # type: ignore[no-untyped-call]
    assert reading.series is None
    assert "unreachable" in reading.error
    assert seen == []
