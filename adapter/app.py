"""The aiohttp API server: discovery, metric reads, health, own metrics, and the KEDA JSON endpoint."""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aiohttp import web

from adapter import apidocs
from adapter.auth import Authenticator, Authorizer, UserInfo
from adapter.errors import (
    ApiError,
    BadRequest,
    InternalError,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    Unauthorized,
)
from adapter.selectors import LabelSelectorError, Selector, parse_selector
from adapter.selfmetrics import SelfMetrics
from adapter.store import SampleStore, SourceState

log = logging.getLogger(__name__)

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_PREFIX = f"/apis/{apidocs.GROUP_VERSION}"
_JSON = "application/json"


@dataclass(frozen=True)
class AdapterParts:
    """Everything the server needs, assembled by ``adapter.runtime`` or by a test."""

    store: SampleStore
    metrics: SelfMetrics
    authenticator: Authenticator
    authorizer: Authorizer
    keda_token: Callable[[], str | None] | None = None
    """None: the KEDA endpoint is off. A callable returning None: on without a token (loopback only)."""
    clock: Callable[[], float] = time.time


PARTS = web.AppKey("parts", AdapterParts)
USER = "queuescale.user"


def _json(doc: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(doc, separators=(",", ":")), status=status, content_type=_JSON)


def _status_response(error: ApiError) -> web.Response:
    return _json(apidocs.status(error), status=error.code)


_HTTP_TO_ERROR: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    406: NotAcceptable,
}


def _route_name(request: web.Request) -> str:
    info = request.match_info
    route = info.route if info is not None else None
    return route.name or "other" if route is not None else "other"


@web.middleware
async def _errors_as_status(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every failure leaves as a metav1.Status: a non-Status body breaks Kubernetes clients."""
    parts = request.app[PARTS]
    t0 = time.perf_counter()
    try:
        response = await handler(request)
    except ApiError as exc:
        response = _status_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = _HTTP_TO_ERROR.get(exc.status, InternalError)
        text = {404: "the server could not find the requested resource"}.get(exc.status, exc.reason)
        if exc.status == 405:
            text = f"the server does not allow the method {request.method} here"
        response = _status_response(kind(text))
    except Exception:
        # The detail goes to the log only: backend errors must not leak to API clients.
        log.exception("unhandled error serving %s %s", request.method, request.path)
        response = _status_response(InternalError("unable to fetch metrics"))
    parts.metrics.observe_request(_route_name(request), response.status, time.perf_counter() - t0)
    return response


async def _authenticated(request: web.Request) -> UserInfo:
    return await request.app[PARTS].authenticator.authenticate(request)


async def handle_apis(request: web.Request) -> web.Response:
    await _authenticated(request)
    if apidocs.accepts_only_aggregated_discovery(request.headers.get("Accept", "")):
        raise NotAcceptable("only application/json APIGroupList discovery is served here")
    return _json(apidocs.api_group_list())


async def handle_api(request: web.Request) -> web.Response:
    await _authenticated(request)
    if apidocs.accepts_only_aggregated_discovery(request.headers.get("Accept", "")):
        raise NotAcceptable("only application/json APIVersions discovery is served here")
    return _json({"kind": "APIVersions", "versions": [], "serverAddressByClientCIDRs": []})


async def handle_group(request: web.Request) -> web.Response:
    await _authenticated(request)
    return _json(apidocs.api_group())


async def handle_resources(request: web.Request) -> web.Response:
    await _authenticated(request)
    return _json(apidocs.api_resource_list(request.app[PARTS].store.served_metrics()))


@lru_cache(maxsize=4096)
def _selector(text: str) -> Selector:
    return parse_selector(text)


def _parse_selector(request: web.Request) -> Selector:
    try:
        return _selector(request.query.get("labelSelector", ""))
    except LabelSelectorError as exc:
        raise BadRequest(f"invalid labelSelector: {exc}") from exc


async def _plan(request: web.Request, user: UserInfo | None) -> tuple[str, Selector, list[SourceState]]:
    """Authorize, validate and pick the fresh sources; raises the Status the request must get."""
    parts = request.app[PARTS]
    namespace = request.match_info["namespace"]
    metric = request.match_info["metric"]
    if user is not None:
        await parts.authorizer.authorize(user, metric, namespace)
    if not _NAMESPACE.match(namespace):
        raise NotFound(f'namespace "{namespace}" is not a valid namespace name')
    selector = _parse_selector(request)
    return metric, selector, parts.store.asked(metric, namespace, selector, parts.clock())


class _BodyCache:
    """Encoded answers keyed by what determines them: metric, selector, and each asked collection.

    Freshness and authorization are still decided per request; only the encoding is reused, so a new
    collection simply makes a new key. Cleared when full instead of tracking recency: keys of replaced
    collections can never be hit again anyway.
    """

    def __init__(self, max_entries: int = 8192) -> None:
        self.max_entries = max_entries
        self._bodies: dict[Hashable, bytes] = {}

    def get_or_build(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        body = self._bodies.get(key)
        if body is None:
            body = build()
            if len(self._bodies) >= self.max_entries:
                self._bodies.clear()
            self._bodies[key] = body
        return body


BODIES = web.AppKey("bodies", _BodyCache)


async def handle_metric(request: web.Request) -> web.Response:
    user = await _authenticated(request)
    metric, selector, asked = await _plan(request, user)
    store = request.app[PARTS].store
    key = (metric, selector, tuple((s.name, s.collected_at) for s in asked))
    body = request.app[BODIES].get_or_build(
        key,
        lambda: json.dumps(
            apidocs.value_list(store.items(metric, selector, asked)), separators=(",", ":")
        ).encode(),
    )
    return web.Response(body=body, content_type=_JSON)


async def handle_keda(request: web.Request) -> web.Response:
    """KEDA's ``metrics-api`` trigger reads ``value`` (the HPA's sum) from this JSON."""
    token_of = request.app[PARTS].keda_token
    if token_of is None:
        raise NotFound("the KEDA endpoint is disabled")
    expected = token_of()
    if expected is not None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("a valid bearer token is required")
    metric, selector, asked = await _plan(request, None)
    items = request.app[PARTS].store.items(metric, selector, asked)
    return _json(
        {
            "metricName": request.match_info["metric"],
            "value": sum(item.value for item in items),
            "timestamp": apidocs.rfc3339(min(item.timestamp for item in items)),
            "items": [{"labels": dict(i.labels), "value": i.value} for i in items],
        }
    )


async def handle_health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def handle_ready(request: web.Request) -> web.Response:
    if not request.app[PARTS].store.all_attempted():
        return web.Response(status=503, text="not ready: first collection not complete")
    return web.Response(text="ok")


async def handle_self_metrics(request: web.Request) -> web.Response:
    body = request.app[PARTS].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def handle_not_found(request: web.Request) -> web.Response:
    raise NotFound("the server could not find the requested resource")


def create_app(parts: AdapterParts) -> web.Application:
    app = web.Application(middlewares=[_errors_as_status])
    app[PARTS] = parts
    app[BODIES] = _BodyCache()
    r = app.router
    r.add_get("/healthz", handle_health, name="healthz", allow_head=False)
    r.add_get("/livez", handle_health, name="livez", allow_head=False)
    r.add_get("/readyz", handle_ready, name="readyz", allow_head=False)
    r.add_get("/metrics", handle_self_metrics, name="metrics", allow_head=False)
    r.add_get("/api", handle_api, name="api", allow_head=False)
    r.add_get("/apis", handle_apis, name="apis", allow_head=False)
    r.add_get(f"/apis/{apidocs.GROUP}", handle_group, name="group", allow_head=False)
    r.add_get(_PREFIX, handle_resources, name="resources", allow_head=False)
    r.add_get(_PREFIX + "/namespaces/{namespace}/{metric}", handle_metric, name="metric", allow_head=False)
    r.add_get("/keda/v1/namespaces/{namespace}/{metric}", handle_keda, name="keda", allow_head=False)
    # The aggregator probes OpenAPI; a 404 Status is the accepted answer for a server without one.
    r.add_route("*", "/openapi/{tail:.*}", handle_not_found, name="openapi")
    return app
