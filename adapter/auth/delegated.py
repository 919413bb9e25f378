"""Delegated authentication and authorization of the adapter's own ``/metrics``, as Kubernetes does it.

``/metrics`` carries every cached figure, so in secure mode it is guarded like the API that serves the
same figures. Kubernetes' own components (and prometheus-adapter) serve theirs behind delegated auth:
the caller's bearer token is checked with a TokenReview, then a SubjectAccessReview for the
non-resource URL (``nonResourceAttributes: {path: /metrics, verb: get}``), which RBAC grants with
``nonResourceURLs: ["/metrics"]``. A request proxied by kube-apiserver (front-proxy certificate) is
authenticated the same way as a metric read. ``/livez``, ``/readyz`` and ``/healthz`` stay open.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import kubernetes.client
from aiohttp import web
from kubernetes.client.exceptions import ApiException

from adapter.auth import UserInfo
from adapter.auth.frontproxy import FrontProxyAuthenticator
from adapter.auth.review_cache import ReviewCache
from adapter.auth.sar import SubjectAccessReviewAuthorizer
from core.errors import InternalError, Unauthorized

log = logging.getLogger(__name__)


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, as Kubernetes reads it; else None.

    The scheme is matched without regard to case (RFC 7235); the token must be one non-empty word."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or token != token.strip() or " " in token:
        return None
    return token


class TokenReviewAuthenticator:
    """Who a bearer token belongs to, asked of kube-apiserver with an ``authentication.k8s.io/v1``
    TokenReview. Answers, including "not authenticated", are kept ``ttl_seconds`` under the token's
    SHA-256 (the token itself is never kept)."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        ttl_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_entries: int = 4096,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._api = kubernetes.client.AuthenticationV1Api(api_client)
        self._timeout = timeout_seconds
        self._cache: ReviewCache[UserInfo | None] = ReviewCache(ttl_seconds, max_entries, clock)

    async def authenticate(self, token: str) -> UserInfo:
        key = hashlib.sha256(token.encode()).digest()
        user = await self._cache.get(key, lambda: self._call(token))
        if user is None:
            raise Unauthorized("Unauthorized")
        return user

    def _call(self, token: str) -> UserInfo | None:
        body = kubernetes.client.V1TokenReview(
            api_version="authentication.k8s.io/v1",
            kind="TokenReview",
            spec=kubernetes.client.V1TokenReviewSpec(token=token),
        )
        try:
            # The answer is read as JSON: only its status matters, and the client's model of the spec
            # refuses an answer that leaves the token out.
            response: Any = self._api.create_token_review(
                body, _request_timeout=self._timeout, _preload_content=False
            )
            status = json.loads(response.data).get("status") or {}
        except ApiException as exc:
            hint = ""
            if exc.status == 403:
                hint = " (bind the adapter's service account to the ClusterRole queuescale-adapter)"
            log.error("TokenReview failed: HTTP %s %s%s", exc.status, exc.reason, hint)
            raise InternalError("the authentication check failed") from exc
        except Exception as exc:
            log.error("TokenReview failed: %s: %s", exc.__class__.__name__, exc)
            raise InternalError("the authentication check failed") from exc
        return user_of(status)


def user_of(status: Mapping[str, Any]) -> UserInfo | None:
    """The user of a TokenReview ``status``, or None when the token is not authenticated."""
    user = status.get("user") or {}
    name = user.get("username")
    if status.get("authenticated") is not True or not isinstance(name, str) or not name:
        return None
    groups = tuple(str(g) for g in user.get("groups") or ())
    extra = {str(k): tuple(str(x) for x in v or ()) for k, v in (user.get("extra") or {}).items()}
    return UserInfo(name=name, groups=groups, extra=extra)


class DelegatedPathAuth:
    """``adapter.auth.PathAuthorizer``: bearer token (TokenReview) or front-proxy certificate, then a
    SubjectAccessReview for the path."""

    def __init__(
        self,
        tokens: TokenReviewAuthenticator,
        authorizer: SubjectAccessReviewAuthorizer,
        front_proxy: FrontProxyAuthenticator | None = None,
    ) -> None:
        self._tokens = tokens
        self._authorizer = authorizer
        self._front_proxy = front_proxy

    async def check(self, request: web.Request, path: str, verb: str) -> None:
        header = request.headers.get("Authorization", "")
        token = bearer_token(header)
        if token is not None:
            user = await self._tokens.authenticate(token)
        elif self._front_proxy is not None and not header:
            user = await self._front_proxy.authenticate(request)
        else:
            raise Unauthorized("Unauthorized")
        await self._authorizer.authorize_path(user, path, verb)
