"""The adapter assembled from its settings, as deployed: HTTPS, front-proxy trust read from the
ConfigMap, SubjectAccessReviews, a Trino source polled in the background."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapter.runtime import start_adapter
from adapter.settings import load_settings
from core.errors import ConfigError
from lab.sandbox.trino import Fault
from tests.helpers.certs import CertFactory
from tests.helpers.kube import running_kube
from tests.helpers.trino import refused_url, trino_sandbox
from tests.helpers.wait import eventually

BASE = "/apis/external.metrics.k8s.io/v1beta1"
METRIC = f"{BASE}/namespaces/team-a/trino_nodes?labelSelector=state%3Dactive"


async def test_secure_adapter_from_settings(tmp_path: Path) -> None:
    certs = CertFactory(tmp_path)
    serving_ca = certs.ca("serving-ca")
    serving = certs.serving(serving_ca)
    proxy_ca = certs.ca("front-proxy-ca")
    proxy = certs.client(proxy_ca, "proxy", cn="front-proxy-client")
    stranger = certs.client(certs.ca("other-ca"), "stranger", cn="front-proxy-client")

    async with running_kube() as kube, trino_sandbox(478, workers=3) as trino:
        kube.sandbox.set_configmap(
            "kube-system",
            "extension-apiserver-authentication",
            {
                "requestheader-client-ca-file": proxy_ca.cert_pem.decode(),
                "requestheader-allowed-names": json.dumps(["front-proxy-client"]),
                "requestheader-username-headers": json.dumps(["X-Remote-User"]),
                "requestheader-group-headers": json.dumps(["X-Remote-Group"]),
                "requestheader-extra-headers-prefix": json.dumps(["X-Remote-Extra-"]),
            },
        )
        kube.sandbox.allow(
            user="system:serviceaccount:kube-system:horizontal-pod-autoscaler", namespace="team-a"
        )
        settings = load_settings(
            None,
            {
                "server": {
                    "listen": "127.0.0.1:0",
                    "tls_cert_file": str(serving.cert_file),
                    "tls_key_file": str(serving.key_file),
                },
                "kube": {"host": kube.url},
                "trino": [
                    {
                        "name": "adhoc",
                        "endpoint": {"url": trino.coordinator_url},
                        "poll_interval_seconds": 0.1,
                    }
                ],
            },
        )

        async with start_adapter(settings) as running:

            async def call(
                client: Any | None, headers: dict[str, str], path: str = METRIC
            ) -> tuple[Any, Any]:
                ctx = ssl.create_default_context(cafile=serving_ca.cert_file)
                if client is not None:
                    ctx.load_cert_chain(client.cert_file, client.key_file)
                connector = aiohttp.TCPConnector(ssl=ctx, force_close=True)
                try:
                    async with (
                        aiohttp.ClientSession(connector=connector) as session,
                        session.get(running.url + path, headers=headers) as resp,
                    ):
                        return resp.status, await resp.json()
                except aiohttp.ClientError as exc:
                    return "tls", exc

            hpa = {"X-Remote-User": "system:serviceaccount:kube-system:horizontal-pod-autoscaler"}
            status, body = await eventually(lambda: call(proxy, hpa), check=lambda r: r[0] == 200)
            assert [i["value"] for i in body["items"]] == ["4"]  # the coordinator is an active node too
            assert body["items"][0]["metricLabels"] == {"cluster": "adhoc", "state": "active"}

            # Claims without the front-proxy certificate are not believed.
            status, body = await call(
                None, {"X-Remote-User": "system:masters", "X-Remote-Group": "system:masters"}
            )
            assert (status, body["kind"], body["reason"]) == (401, "Status", "Unauthorized")
            # A certificate from another CA never gets past TLS.
            status, _ = await call(stranger, hpa)
            assert status == "tls"
            # A real proxied user the SubjectAccessReview denies.
            status, body = await call(proxy, {"X-Remote-User": "mallory"})
            assert (status, body["reason"]) == (403, "Forbidden")
            # The cluster's superusers need no review.
            reviews = len(kube.sandbox.reviews)
            status, _ = await call(proxy, {"X-Remote-User": "root", "X-Remote-Group": "system:masters"})
            assert status == 200
            assert len(kube.sandbox.reviews) == reviews
            # Discovery needs an authenticated caller, nothing more.
            status, body = await call(proxy, {"X-Remote-User": "system:kube-aggregator"}, BASE)
            assert status == 200
            assert "trino_queued_queries" in {r["name"] for r in body["resources"]}
            status, _ = await call(None, {}, BASE)
            assert status == 401


async def test_several_trino_clusters_of_both_naming_eras() -> None:
    async with trino_sandbox(476, workers=1) as old, trino_sandbox(478, workers=2) as new:
        # The small groups: adhoc runs 2 at a time, so the rest queue.
        old.cluster.submit_many("global.adhoc", 5, work_seconds=1e9)
        new.cluster.submit_many("global.adhoc", 3, work_seconds=1e9)
        settings = load_settings(
            None,
            {
                "server": {"listen": "127.0.0.1:0", "insecure_http": True},
                "auth": {"mode": "none"},
                "trino": [
                    {"name": name, "endpoint": {"url": sb.coordinator_url}, "poll_interval_seconds": 0.1}
                    for name, sb in (("old", old), ("new", new))
                ],
            },
        )
        async with start_adapter(settings) as running, aiohttp.ClientSession() as session:

            async def queued(selector: str) -> tuple[int, Any]:
                url = f"{running.url}{BASE}/namespaces/default/trino_queued_queries"
                async with session.get(url, params={"labelSelector": selector} if selector else {}) as resp:
                    return resp.status, await resp.json()

            _, body = await eventually(lambda: queued(""), check=lambda r: r[0] == 200)
            by_cluster = {i["metricLabels"]["cluster"]: i["value"] for i in body["items"]}
            assert by_cluster == {"old": "3", "new": "1"}
            _, body = await queued("cluster=old")
            assert [i["value"] for i in body["items"]] == ["3"]
            _, body = await queued("cluster in (new)")
            assert [i["value"] for i in body["items"]] == ["1"]


@pytest.mark.parametrize(
    "fault",
    [
        # garbage where OpenMetrics text should be
        Fault(status=200, body="<html>502 Bad Gateway</html>\n\x00\xff", content_type="text/html"),
        # a backend error
        Fault(status=500, body="Internal Server Error"),
        # a coordinator that accepts the connection and never answers
        Fault(hang=True),
    ],
)
async def test_a_broken_coordinator_degrades_only_its_own_metrics(fault: Fault) -> None:
    async with trino_sandbox(478, workers=1) as broken, trino_sandbox(478, workers=2) as healthy:
        broken.faults().set("/metrics", fault)
        settings = load_settings(
            None,
            {
                "server": {"listen": "127.0.0.1:0", "insecure_http": True},
                "auth": {"mode": "none"},
                "trino": [
                    {
                        "name": name,
                        "endpoint": {"url": url},
                        "poll_interval_seconds": 0.1,
                        "timeout_seconds": 0.5,
                        "max_age_seconds": 1.0,
                    }
                    for name, url in (
                        ("broken", broken.coordinator_url),
                        ("healthy", healthy.coordinator_url),
                        ("refused", refused_url()),
                    )
                ],
            },
        )
        async with start_adapter(settings) as running, aiohttp.ClientSession() as session:

            async def nodes(cluster: str) -> tuple[int, Any]:
                url = f"{running.url}{BASE}/namespaces/default/trino_nodes"
                params = {"labelSelector": f"cluster={cluster},state=active"}
                async with session.get(url, params=params) as resp:
                    return resp.status, await resp.json()

            status, body = await eventually(lambda: nodes("healthy"), check=lambda r: r[0] == 200)
            assert [i["value"] for i in body["items"]] == ["3"]
            for cluster in ("broken", "refused"):
                status, body = await nodes(cluster)
                assert (status, body["kind"], body["reason"]) == (503, "Status", "ServiceUnavailable")

            async def ready() -> int:
                async with session.get(running.url + "/readyz") as resp:
                    return resp.status

            # One dead backend must not take the adapter out of service once every source had its try.
            await eventually(ready, check=lambda status: status == 200)
            async with session.get(running.url + "/metrics") as resp:
                text = await resp.text()
            assert 'queuescale_adapter_source_up{source="healthy"} 1.0' in text
            assert 'queuescale_adapter_source_up{source="broken"} 0.0' in text
            assert 'queuescale_adapter_source_poll_errors_total{reason="error",source="refused"}' in text
            # The broken one recovers, and so does its metric.
            broken.faults().clear()
            status, body = await eventually(lambda: nodes("broken"), check=lambda r: r[0] == 200)
            assert [i["value"] for i in body["items"]] == ["2"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # the probe: an empty or whitespace-only file opened the KEDA endpoint to anyone
        ("", "is empty or only whitespace"),
        (" \n\t\n", "is empty or only whitespace"),
        ("two words", "contains whitespace"),
        (None, "cannot read"),
    ],
)
async def test_an_unusable_keda_token_file_stops_the_start(
    tmp_path: Path, content: str | None, message: str
) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    settings = load_settings(
        None,
        {
            "server": {"listen": "127.0.0.1:0", "insecure_http": True},
            "auth": {"mode": "none"},
            "keda": {"enabled": True, "bearer_token_file": str(token_file)},
            "trino": [{"name": "adhoc", "endpoint": {"url": refused_url()}}],
        },
    )
    with pytest.raises(ConfigError, match=rf"keda\.bearer_token_file: .*{message}"):
        async with start_adapter(settings):
            pass
