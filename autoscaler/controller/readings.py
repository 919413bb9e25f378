"""Reading the adapter's metrics: in-process from its cache, or over ``external.metrics.k8s.io``.

Both readers give the controller exactly what the HPA would get for the same metric and selector: the
series the adapter serves (an idle metric is one zero), "stale" where it answers 503 and "missing" where it
answers 404 or cannot be reached. The engine then never scales down on a stale or missing figure.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from adapter.errors import NotFound, Unavailable
from adapter.quantity import parse_quantity
from adapter.selectors import Selector
from adapter.store import SampleStore

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

    async def read(self, namespace: str, metric: str, selector: Selector, now: float) -> Reading:
        key = (namespace, metric, str(selector), now)
        shared = self._reads.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self.reader.read(namespace, metric, selector, now))
            self._reads[key] = shared
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
    """Reads ``external.metrics.k8s.io`` through an official-client ``ApiClient``.

    Point the client at kube-apiserver (the aggregated path the HPA uses) or straight at the adapter's
    Service; either way the request is the HPA's own ``GET .../namespaces/{ns}/{metric}?labelSelector=``.
    """

    def __init__(self, api: kubernetes.client.ApiClient, *, timeout_seconds: float = 5.0) -> None:
        self.api = api
        self.timeout = timeout_seconds

    async def read(self, namespace: str, metric: str, selector: Selector, now: float) -> Reading:
        try:
            doc = await asyncio.to_thread(self._get, namespace, metric, str(selector))
        except ApiException as exc:
            status = exc.status or 0
            detail = f"external metrics API answered {status} for {metric}: {_message(exc)}"
            return Reading(None, stale=status == 503, error=detail)
        except Exception as exc:
            return Reading(None, error=f"external metrics API unreachable for {metric}: {exc}")
        try:
            return Reading(parse_metric_list(doc))
        except ValueError as exc:
            return Reading(None, error=f"external metrics API gave a malformed answer for {metric}: {exc}")

    def _get(self, namespace: str, metric: str, selector: str) -> Any:
        path = f"{EXTERNAL_METRICS_PATH}/namespaces/{quote(namespace, safe='')}/{quote(metric, safe='')}"
        method, url, headers, body, post = self.api.param_serialize(
            "GET",
            path,
            query_params=[("labelSelector", selector)] if selector else [],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(method, url, headers, body, post, _request_timeout=self.timeout)
        data = response.read()  # type: ignore[no-untyped-call]
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        return json.loads(data)


def _message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        return str(exc.reason)
    return str(body.get("message", exc.reason)) if isinstance(body, dict) else str(exc.reason)
