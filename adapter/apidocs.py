"""The JSON documents of external.metrics.k8s.io, built apart from any I/O so they test without a server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from adapter.store import Item
from core.errors import ApiError
from core.quantity import format_quantity

GROUP = "external.metrics.k8s.io"
VERSION = "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
AGGREGATED_DISCOVERY = "apigroupdiscoverylist"


def status(error: ApiError) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": error.message,
        "reason": error.reason,
        "code": error.code,
    }


def api_group() -> dict[str, Any]:
    version = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [version],
        "preferredVersion": version,
    }


def api_group_list() -> dict[str, Any]:
    group = api_group()
    del group["kind"], group["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}


def api_resource_list(metrics: Iterable[str]) -> dict[str, Any]:
    resources = [
        {
            "name": name,
            "singularName": "",
            "namespaced": True,
            "kind": "ExternalMetricValueList",
            "verbs": ["get"],
        }
        for name in metrics
    ]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": resources,
    }


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(int(ts), tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def value_list(items: Sequence[Item]) -> dict[str, Any]:
    return {
        "kind": "ExternalMetricValueList",
        "apiVersion": GROUP_VERSION,
        "metadata": {},
        "items": [
            {
                "metricName": item.metric,
                "metricLabels": dict(item.labels),
                "timestamp": rfc3339(item.timestamp),
                "value": format_quantity(item.value),
            }
            for item in items
        ],
    }


def accepts_only_aggregated_discovery(accept: str) -> bool:
    """True when every media range asks for aggregated discovery (older aggregators retry on 406)."""
    ranges = [r.strip() for r in accept.split(",") if r.strip()]
    if not ranges:
        return False
    for media_range in ranges:
        params = [p.strip().lower().replace(" ", "") for p in media_range.split(";")[1:]]
        if f"as={AGGREGATED_DISCOVERY}" not in params:
            return False
    return True
