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

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from adapter.auth import UserInfo
from adapter.auth.settings import AuthSettings
from adapter.errors import Forbidden, InternalError

log = logging.getLogger(__name__)

GROUP = "external.metrics.k8s.io"
VERSION = "v1beta1"
VERB = "list"
ALWAYS_ALLOW_GROUPS = frozenset({"system:masters"})


@dataclass(frozen=True)
class _Decision:
    allowed: bool
    reason: str


def review_body(user: UserInfo, metric: str, namespace: str) -> kubernetes.client.V1SubjectAccessReview:
    """The SubjectAccessReview sent for one metric read."""
    return kubernetes.client.V1SubjectAccessReview(
        api_version="authorization.k8s.io/v1",
        kind="SubjectAccessReview",
        spec=kubernetes.client.V1SubjectAccessReviewSpec(
            user=user.name,
            groups=list(user.groups),
            extra={k: list(v) for k, v in user.extra.items()},
            resource_attributes=kubernetes.client.V1ResourceAttributes(
                namespace=namespace, verb=VERB, group=GROUP, version=VERSION, resource=metric
            ),
        ),
    )


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
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._max_entries = max_entries
        self._timeout = timeout_seconds
        self._cache: OrderedDict[Hashable, tuple[float, _Decision]] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Task[_Decision]] = {}

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
        key = (
            user.name,
            tuple(sorted(set(user.groups))),
            tuple(sorted((k, tuple(v)) for k, v in user.extra.items())),
            metric,
            namespace,
        )
        decision = self._cached(key)
        if decision is None:
            task = self._inflight.get(key)
            if task is None:
                # Concurrent identical requests share one review instead of each sending their own.
                task = asyncio.create_task(self._review(key, user, metric, namespace))
                task.add_done_callback(_consume)
                self._inflight[key] = task
            decision = await asyncio.shield(task)
        if not decision.allowed:
            message = (
                f'{metric}.{GROUP} is forbidden: User "{user.name}" cannot {VERB} resource "{metric}" '
                f'in API group "{GROUP}" in the namespace "{namespace}"'
            )
            if decision.reason:
                message += f": {decision.reason}"
            raise Forbidden(message)

    def cache_size(self) -> int:
        return len(self._cache)

    def _cached(self, key: Hashable) -> _Decision | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        expires, decision = entry
        if self._clock() >= expires:
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return decision

    def _store(self, key: Hashable, decision: _Decision) -> None:
        if self.ttl_seconds <= 0:
            return
        self._cache[key] = (self._clock() + self.ttl_seconds, decision)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    async def _review(self, key: Hashable, user: UserInfo, metric: str, namespace: str) -> _Decision:
        try:
            decision = await asyncio.to_thread(self._call, user, metric, namespace)
            self._store(key, decision)
            return decision
        finally:
            self._inflight.pop(key, None)

    def _call(self, user: UserInfo, metric: str, namespace: str) -> _Decision:
        what = f"user {user.name!r} {VERB} {metric} in {namespace}"
        try:
            result = self._api.create_subject_access_review(
                review_body(user, metric, namespace), _request_timeout=self._timeout
            )
        except ApiException as exc:
            hint = ""
            if exc.status == 403:
                hint = " (bind the adapter's service account to the ClusterRole system:auth-delegator)"
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


def _consume(task: asyncio.Task[_Decision]) -> None:
    # When every waiter went away, the failure is already logged: do not let asyncio log it again.
    if not task.cancelled():
        task.exception()
