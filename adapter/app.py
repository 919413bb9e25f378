"""The aiohttp API server: discovery, metric reads, health, own metrics, and the KEDA JSON endpoint."""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from adapter import apidocs
from adapter.auth import Authenticator, Authorizer, PathAuthorizer, UserInfo
from adapter.auth.delegated import bearer_token
from adapter.bytecache import ByteBoundedCache
from adapter.selfmetrics import SelfMetrics
from adapter.store import SampleStore, SourceState
from core.errors import (
    ApiError,
    BadRequest,
    InternalError,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    Unauthorized,
    Unavailable,
)
from core.selectors import LabelSelectorError, Selector, parse_selector

log = logging.getLogger(__name__)

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_PREFIX = f"/apis/{apidocs.GROUP_VERSION}"
_METRIC_PATH = re.compile(rf"^({re.escape(_PREFIX)}|/keda/v1)/namespaces/[^/]+/[^/]+$")
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
    metrics_guard: PathAuthorizer | None = None
    """Who may read ``/metrics``; None: anyone (the plain-HTTP loopback mode)."""
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
        status = exc.status
        if (
            status == 404
            and request.method == "CONNECT"
            and _METRIC_PATH.match(request.raw_path.split("?")[0])
        ):
            # aiohttp reads a CONNECT target as an authority, so no route matches its path.
            status = 405
        kind = _HTTP_TO_ERROR.get(status, InternalError)
        text = {404: "the server could not find the requested resource"}.get(status, exc.reason)
        if status == 405:
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


def _selector_cost(text: str, selector: Selector) -> int:
    # Measured: a parsed selector holds 9-15 bytes per character of its text.
    return 1024 + 16 * len(text)


def _body_cost(key: tuple[str, str, tuple[tuple[str, float | None], ...]], body: bytes) -> int:
    return 512 + len(body) + 2 * len(key[1])


@dataclass
class _Caches:
    """Parsed selectors and encoded answers, each bounded in bytes (``server.*_cache_bytes``)."""

    selectors: ByteBoundedCache[str, Selector]
    bodies: ByteBoundedCache[tuple[str, str, tuple[tuple[str, float | None], ...]], bytes]

    @classmethod
    def sized(cls, selector_bytes: int, response_bytes: int) -> _Caches:
        return cls(
            ByteBoundedCache(selector_bytes, _selector_cost), ByteBoundedCache(response_bytes, _body_cost)
        )


CACHES = web.AppKey("caches", _Caches)


def _parse_selector(request: web.Request) -> tuple[str, Selector]:
    text = request.query.get("labelSelector", "")
    try:
        return text, request.app[CACHES].selectors.get_or_build(text, lambda: parse_selector(text))
    except LabelSelectorError as exc:
        raise BadRequest(f"invalid labelSelector: {exc}") from exc


async def _plan(request: web.Request, user: UserInfo | None) -> tuple[str, str, Selector, list[SourceState]]:
    """Authorize, validate and pick the fresh sources; raises the Status the request must get."""
    parts = request.app[PARTS]
    namespace = request.match_info["namespace"]
    metric = request.match_info["metric"]
    if user is not None:
        await parts.authorizer.authorize(user, metric, namespace)
    if not _NAMESPACE.match(namespace):
        raise NotFound(f'namespace "{namespace}" is not a valid namespace name')
    text, selector = _parse_selector(request)
    return metric, text, selector, parts.store.asked(metric, namespace, selector, parts.clock())


async def handle_metric(request: web.Request) -> web.Response:
    user = await _authenticated(request)
    metric, text, selector, asked = await _plan(request, user)
    store = request.app[PARTS].store
    # Encodings are reused per (metric, selector, collection of each asked source): freshness and
    # authorization are still decided per request, and a new collection simply makes a new key.
    key = (metric, text, tuple((s.name, s.collected_at) for s in asked))
    body = request.app[CACHES].bodies.get_or_build(
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
        given = bearer_token(request.headers.get("Authorization", ""))
        # An unreadable or emptied token file gives "": nothing matches it.
        if not expected or given is None or not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("a valid bearer token is required")
    metric, _, selector, asked = await _plan(request, None)
    items = request.app[PARTS].store.items(metric, selector, asked)
    if not items:
        # A mean or a limit with no series has no value. KEDA counts the error as a failed scaler (its
        # fallback applies if set) and the HPA behind it holds, as the HPA does on an empty list.
        raise Unavailable(f'metric "{metric}" has no value: no series matches the selector')
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
    guard = request.app[PARTS].metrics_guard
    if guard is not None:
        await guard.check(request, "/metrics", "get")
    body = request.app[PARTS].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def handle_not_found(request: web.Request) -> web.Response:
    raise NotFound("the server could not find the requested resource")


async def handle_wrong_method(request: web.Request) -> web.Response:
    raise MethodNotAllowed(f"the server does not allow the method {request.method} here")


def create_app(
    parts: AdapterParts, *, selector_cache_bytes: int = 8 << 20, response_cache_bytes: int = 16 << 20
) -> web.Application:
    app = web.Application(middlewares=[_errors_as_status])
    app[PARTS] = parts
    caches = app[CACHES] = _Caches.sized(selector_cache_bytes, response_cache_bytes)
    parts.metrics.watch_caches({"selectors": caches.selectors, "answers": caches.bodies})
    r = app.router
    r.add_get("/healthz", handle_health, name="healthz", allow_head=False)
    r.add_get("/livez", handle_health, name="livez", allow_head=False)
    r.add_get("/readyz", handle_ready, name="readyz", allow_head=False)
    r.add_get("/metrics", handle_self_metrics, name="metrics", allow_head=False)
    r.add_get("/api", handle_api, name="api", allow_head=False)
    r.add_get("/apis", handle_apis, name="apis", allow_head=False)
    r.add_get(f"/apis/{apidocs.GROUP}", handle_group, name="group", allow_head=False)
    r.add_get(_PREFIX, handle_resources, name="resources", allow_head=False)
    metric = r.add_resource(_PREFIX + "/namespaces/{namespace}/{metric}", name="metric")
    metric.add_route("GET", handle_metric)
    keda = r.add_resource("/keda/v1/namespaces/{namespace}/{metric}", name="keda")
    keda.add_route("GET", handle_keda)
    # Every other method is a 405 Status, CONNECT and unknown ones included (aiohttp's router would
    # answer some of them 404 or a bare 405).
    for resource in (metric, keda):
        resource.add_route("*", handle_wrong_method)
    # The aggregator probes OpenAPI; a 404 Status is the accepted answer for a server without one.
    r.add_route("*", "/openapi/{tail:.*}", handle_not_found, name="openapi")
    return app
