"""Authorization of metric reads by SubjectAccessReview, as a delegating aggregated API server does.

The attributes are those kube-apiserver's request-info parser derives from
``GET /apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}``: the path has a resource and no
name, so the verb is ``list`` (not ``get``) and the resource is the metric name. RBAC rules written for
the HPA (``verbs: [list]`` or ``["*"]`` on ``external.metrics.k8s.io``) therefore match.

Allow and deny answers are both reused for ``ttl_seconds`` (upstream's delegating defaults are 10 s each).
A review that fails (API error, timeout, or an answer both allowed and denied) is a 500 ``InternalError``,
never an allow, and is not cached: upstream's authorization filter answers 500 for an authorizer error too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from adapter.auth import UserInfo
from adapter.auth.review_cache import ReviewCache
from adapter.auth.settings import AuthSettings
from core.errors import Forbidden, InternalError

log = logging.getLogger(__name__)

GROUP = "external.metrics.k8s.io"
VERSION = "v1beta1"
VERB = "list"
ALWAYS_ALLOW_GROUPS = frozenset({"system:masters"})


@dataclass(frozen=True)
class _Decision:
    allowed: bool
    reason: str


class SubjectAccessReviewAuthorizer:
    """``adapter.auth.Authorizer`` backed by ``authorization.k8s.io/v1`` SubjectAccessReviews."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        ttl_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_entries: int = 4096,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._api = kubernetes.client.AuthorizationV1Api(api_client)
        self._timeout = timeout_seconds
        self._cache: ReviewCache[_Decision] = ReviewCache(ttl_seconds, max_entries, clock)

    @classmethod
    def from_settings(
        cls, api_client: kubernetes.client.ApiClient, settings: AuthSettings
    ) -> SubjectAccessReviewAuthorizer:
        return cls(
            api_client,
            ttl_seconds=settings.sar_cache_seconds,
            max_entries=settings.sar_cache_entries,
            timeout_seconds=settings.sar_timeout_seconds,
        )

    async def authorize(self, user: UserInfo, metric: str, namespace: str) -> None:
        if ALWAYS_ALLOW_GROUPS.intersection(user.groups):
            return
        attributes = kubernetes.client.V1ResourceAttributes(
            namespace=namespace, verb=VERB, group=GROUP, version=VERSION, resource=metric
        )
        decision = await self._decide(user, ("resource", metric, namespace), resource=attributes)
        if not decision.allowed:
            message = (
                f'{metric}.{GROUP} is forbidden: User "{user.name}" cannot {VERB} resource "{metric}" '
                f'in API group "{GROUP}" in the namespace "{namespace}"'
            )
            raise Forbidden(message + (f": {decision.reason}" if decision.reason else ""))

    async def authorize_path(self, user: UserInfo, path: str, verb: str) -> None:
        """For a non-resource URL such as ``/metrics`` (RBAC ``nonResourceURLs``)."""
        if ALWAYS_ALLOW_GROUPS.intersection(user.groups):
            return
        attributes = kubernetes.client.V1NonResourceAttributes(path=path, verb=verb)
        decision = await self._decide(user, ("path", path, verb), non_resource=attributes)
        if not decision.allowed:
            message = f'forbidden: User "{user.name}" cannot {verb} path "{path}"'
            raise Forbidden(message + (f": {decision.reason}" if decision.reason else ""))

    def cache_size(self) -> int:
        return len(self._cache)

    async def _decide(
        self,
        user: UserInfo,
        what: tuple[str, str, str],
        *,
        resource: kubernetes.client.V1ResourceAttributes | None = None,
        non_resource: kubernetes.client.V1NonResourceAttributes | None = None,
    ) -> _Decision:
        key = (
            user.name,
            tuple(sorted(set(user.groups))),
            tuple(sorted((k, tuple(v)) for k, v in user.extra.items())),
            *what,
        )
        spec = kubernetes.client.V1SubjectAccessReviewSpec(
            user=user.name,
            groups=list(user.groups),
            extra={k: list(v) for k, v in user.extra.items()},
            resource_attributes=resource,
            non_resource_attributes=non_resource,
        )
        body = kubernetes.client.V1SubjectAccessReview(
            api_version="authorization.k8s.io/v1", kind="SubjectAccessReview", spec=spec
        )
        return await self._cache.get(key, lambda: self._call(body, f"user {user.name!r} {' '.join(what)}"))

    def _call(self, body: kubernetes.client.V1SubjectAccessReview, what: str) -> _Decision:
        try:
            result = self._api.create_subject_access_review(body, _request_timeout=self._timeout)
        except ApiException as exc:
            hint = ""
            if exc.status == 403:
                hint = " (bind the adapter's service account to the ClusterRole queuescale-adapter)"
            log.error("SubjectAccessReview for %s failed: HTTP %s %s%s", what, exc.status, exc.reason, hint)
            raise InternalError("the authorization check failed") from exc
        except Exception as exc:
            log.error("SubjectAccessReview for %s failed: %s: %s", what, exc.__class__.__name__, exc)
            raise InternalError("the authorization check failed") from exc
        status = result.status
        allowed = bool(status and status.allowed)
        denied = bool(status and status.denied)
        reason = (status.reason if status else None) or ""
        if allowed and denied:
            log.error("SubjectAccessReview for %s answered both allowed and denied", what)
            raise InternalError("the authorization check failed")
        return _Decision(allowed=allowed, reason=reason)
