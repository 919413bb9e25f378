"""Reading the adapter's metrics: in-process from its cache, or over ``external.metrics.k8s.io``.

Both readers give the controller exactly what the HPA would get for the same metric and selector: the
series the adapter serves (an idle metric is one zero), "stale" where it answers 503 and "missing" where it
answers 404 or cannot be reached. The engine then never scales down on a stale or missing figure.
"""

from __future__ import annotations

import asyncio
import json
import math
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import kubernetes.client

from adapter.store import SampleStore
from core.errors import NotFound, Unavailable
from core.quantity import parse_quantity
from core.selectors import Selector

__all__ = ["ExternalApiReader", "MetricReader", "PassReads", "Reading", "Series", "StoreReader"]

EXTERNAL_METRICS_PATH = "/apis/external.metrics.k8s.io/v1beta1"


@dataclass(frozen=True, slots=True)
class Series:
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Reading:
    """The series of one metric; ``series`` None when it could not be read (``stale`` tells 503 apart)."""

    series: tuple[Series, ...] | None
    stale: bool = False
    error: str = ""

    @property
    def total(self) -> float | None:
        """The sum the HPA uses for a Value target; None when unreadable."""
        if self.series is None:
            return None
        return sum(s.value for s in self.series)


class MetricReader(Protocol):
    async def read(self, namespace: str, metric: str, selector: Selector, now: float) -> Reading: ...


class PassReads:
    """One pass's reads: each (namespace, metric, selector) is asked of ``reader`` once and its answer
    shared by every policy of the pass that asks for it.

    Policies of one Trino cluster or Spark pool read the same figures (and a policy's External metric
    is often one its queue model reads too), so a pass over many of them would otherwise repeat the same
    request many times; sharing also gives them all the same figure. Make a new one for every pass.
    """

    def __init__(self, reader: MetricReader) -> None:
        self.reader = reader
        self._reads: dict[tuple[str, str, str, float], asyncio.Future[Reading]] = {}

    async def prefetch(self, wanted: Iterable[tuple[str, str, Selector]], now: float) -> None:
        """Ask for every distinct (namespace, metric, selector) in ``wanted`` at once and wait for the
        answers, so the policies of the pass then find them ready instead of each waiting on a shared
        request (a thousand policies waiting on a few hundred reads cost more than the reads)."""
        pending = []
        for namespace, metric, selector in wanted:
            key = (namespace, metric, selector.text, now)
            if key not in self._reads:
                read = asyncio.ensure_future(self.reader.read(namespace, metric, selector, now))
                self._reads[key] = read
                pending.append(read)
        # A read that raises fails only the policies that use it, when they read it.
        await asyncio.gather(*pending, return_exceptions=True)

    async def read(self, namespace: str, metric: str, selector: Selector, now: float) -> Reading:
        key = (namespace, metric, selector.text, now)
        shared = self._reads.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self.reader.read(namespace, metric, selector, now))
            self._reads[key] = shared
        elif shared.done():
            # Most reads of a pass find the answer already there: skip the shield's extra future.
            return shared.result()
        # One policy's pass being cancelled must not cancel the read the others wait for.
        return await asyncio.shield(shared)


class StoreReader:
    """Reads the adapter's cache when the adapter runs in the same process (no HTTP, same numbers)."""

    def __init__(self, store: SampleStore) -> None:
        self.store = store

    async def read(self, namespace: str, metric: str, selector: Selector, now: float) -> Reading:
        try:
            items = self.store.query(metric, namespace, selector, now)
        except Unavailable as exc:
            return Reading(None, stale=True, error=str(exc))
        except NotFound as exc:
            return Reading(None, error=str(exc))
        return Reading(tuple(Series(dict(i.labels), i.value) for i in items))


def parse_metric_list(doc: Any) -> tuple[Series, ...]:
    """The series of an ``ExternalMetricValueList``; raises ValueError on a malformed document."""
    if not isinstance(doc, dict) or doc.get("kind") != "ExternalMetricValueList":
        raise ValueError("not an ExternalMetricValueList")
    items = doc.get("items")
    if not isinstance(items, list):
        raise ValueError("items is not a list")
    out: list[Series] = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("an item is not an object")
        labels = item.get("metricLabels")
        if labels is None:
            labels = {}
        if not isinstance(labels, dict):
            raise ValueError("metricLabels is not an object")
        try:
            value = float(parse_quantity(str(item.get("value"))))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad value: {exc}") from exc
        if not math.isfinite(value):
            raise ValueError("value is not finite")
        out.append(Series({str(k): str(v) for k, v in labels.items()}, value))
    return tuple(out)


class ExternalApiReader:
    """Reads ``external.metrics.k8s.io`` with the address and credentials of an official-client ``ApiClient``.

    Point the client at kube-apiserver (the aggregated path the HPA uses) or straight at the adapter's
    Service; either way the request is the HPA's own ``GET .../namespaces/{ns}/{metric}?labelSelector=``.
    The official client builds each request (URL, and the credentials, a token it refreshes included);
    aiohttp sends it on the event loop. A pass makes hundreds of these reads, and a thread per read cost
    about four times the CPU (``benchmarks/controller_loop.py``). Call :meth:`close` when done.
    """

    def __init__(self, api: kubernetes.client.ApiClient, *, timeout_seconds: float = 5.0) -> None:
        self.api = api
        self.timeout = timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=client_ssl(self.api.configuration), limit=64)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ExternalApiReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def read(self, namespace: str, metric: str, selector: Selector, now: float) -> Reading:
        path = f"{EXTERNAL_METRICS_PATH}/namespaces/{quote(namespace, safe='')}/{quote(metric, safe='')}"
        text = selector.text
        config = self.api.configuration
        try:
            _, url, headers, _, _ = self.api.param_serialize(
                "GET",
                path,
                query_params=[("labelSelector", text)] if text else [],
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            async with self._http().get(
                url, headers=headers, proxy=config.proxy or None, server_hostname=config.tls_server_name
            ) as resp:
                status, data = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
            return Reading(None, error=f"external metrics API unreachable for {metric}: {why}")
        if not 200 <= status < 300:
            detail = f"external metrics API answered {status} for {metric}: {_message(data, status)}"
            return Reading(None, stale=status == 503, error=detail)
        try:
            return Reading(parse_metric_list(json.loads(data)))
        except ValueError as exc:
            return Reading(None, error=f"external metrics API gave a malformed answer for {metric}: {exc}")


def client_ssl(config: kubernetes.client.Configuration) -> ssl.SSLContext:
    """The TLS settings of an official-client configuration (CA bundle, client certificate, verification)
    as an SSL context for aiohttp."""
    context = ssl.create_default_context(cafile=config.ssl_ca_cert or None)
    if config.cert_file:
        context.load_cert_chain(config.cert_file, config.key_file or None)
    if not config.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif config.assert_hostname is False:
        context.check_hostname = False
    return context


def _message(body: bytes, status: int) -> str:
    """The ``message`` of the Status object an API server answers an error with."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"])
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
