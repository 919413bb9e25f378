"""Who is calling and may they read this metric: the contracts the API server relies on.

Implementations: ``adapter.auth.frontproxy`` (authentication from kube-apiserver's front-proxy client
certificate), ``adapter.auth.sar`` (authorization by SubjectAccessReview), ``adapter.auth.delegated`` (bearer tokens by
TokenReview, for ``/metrics``), ``adapter.auth.tls`` (the
serving certificate, reloaded when its files change). ``Anonymous`` is the loopback development mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class Authenticator(Protocol):
    async def authenticate(self, request: web.Request) -> UserInfo:
        """Return the caller or raise ``core.errors.Unauthorized``."""
        ...


class Authorizer(Protocol):
    async def authorize(self, user: UserInfo, metric: str, namespace: str) -> None:
        """Return if ``user`` may read ``metric`` in ``namespace``; else raise ``core.errors.Forbidden``.

        Raise ``core.errors.InternalError`` when the decision cannot be made (never allow then).
        """
        ...


class PathAuthorizer(Protocol):
    async def check(self, request: web.Request, path: str, verb: str) -> None:
        """Return if the caller may ``verb`` the non-resource ``path``; else raise ``Unauthorized`` or
        ``Forbidden`` (``InternalError`` when it cannot be decided)."""
        ...


ANONYMOUS = UserInfo(name="system:anonymous", groups=("system:unauthenticated",))


class Anonymous:
    """No authentication: only for the plain-HTTP loopback development mode."""

    async def authenticate(self, request: web.Request) -> UserInfo:
        return ANONYMOUS


class AllowAll:
    async def authorize(self, user: UserInfo, metric: str, namespace: str) -> None:
        return None
