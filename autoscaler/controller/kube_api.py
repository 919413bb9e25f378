"""The controller's one edge to the Kubernetes client: a refused call becomes a typed error.

The official client raises ``ApiException`` for every refusal, with the HTTP code, its reason and the
API server's ``Status`` object as a JSON body. Code past this module never sees it: :func:`call` (in a
worker thread, for the event loop) and :func:`call_here` (on the calling thread, for the informers' and
the leader's threads) — or a ``with translated():`` block around a list and its watch stream — turn it
into :class:`KubeError`, or one of the three subclasses a caller acts on —
:class:`NotFound` (404: gone, or never there), :class:`Conflict` (409: a stale ``resourceVersion`` or an
existing name; read again and retry) and :class:`Gone` (410: a watch's ``resourceVersion`` was compacted;
list again). Each carries the Status as sent (``status``), its ``reason`` (``NotFound``, ``Conflict``,
``Expired``, ...) and its message, so a log line names what the API server said.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ParamSpec, TypeVar

from kubernetes.client.exceptions import ApiException

__all__ = ["Conflict", "Gone", "KubeError", "NotFound", "call", "call_here", "kube_error", "translated"]

P = ParamSpec("P")
T = TypeVar("T")


class KubeError(Exception):
    """A call the API server refused (or the client could not make): ``code`` is the HTTP status (0 when
    no answer came), ``reason`` the Status reason or HTTP reason phrase, ``status`` the Status object as
    sent (empty when the body was not one)."""

    def __init__(self, code: int, reason: str, message: str, status: Mapping[str, Any]) -> None:
        super().__init__(f"{code} {reason}" + (f": {message}" if message else ""))
        self.code = code
        self.reason = reason
        self.message = message
        self.status: Mapping[str, Any] = status

    @property
    def brief(self) -> str:
        """``"<code> <reason>"``, as the controller's log lines have always shown a refusal."""
        return f"{self.code} {self.reason}"


class NotFound(KubeError):
    """404: the object (or its namespace) does not exist."""


class Conflict(KubeError):
    """409: the write raced another (stale ``resourceVersion``) or the name is taken."""


class Gone(KubeError):
    """410: the ``resourceVersion`` a list or watch started from is older than the server keeps."""


_BY_CODE: dict[int, type[KubeError]] = {404: NotFound, 409: Conflict, 410: Gone}


def _status_body(exc: ApiException) -> Mapping[str, Any]:
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body:
        return {}
    try:
        doc = json.loads(body)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) and doc.get("kind") == "Status" else {}


def kube_error(exc: ApiException) -> KubeError:
    """The typed error for a client's ``ApiException``. The HTTP reason phrase is kept as ``reason``
    (what earlier log lines showed); the Status's own reason is in ``status["reason"]``."""
    code = int(exc.status or 0)
    status = _status_body(exc)
    message = str(status.get("message") or "")
    return _BY_CODE.get(code, KubeError)(code, str(exc.reason or ""), message, status)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Within the block, a refusal raises :class:`KubeError` (a watch stream reports a compacted
    ``resourceVersion`` by raising, so the whole list-and-watch goes inside)."""
    try:
        yield
    except ApiException as exc:
        raise kube_error(exc) from exc


async def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` in a worker thread (the client is synchronous); a refusal raises
    :class:`KubeError`."""
    with translated():
        return await asyncio.to_thread(fn, *args, **kwargs)


def call_here(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on this thread; a refusal raises :class:`KubeError`."""
    with translated():
        return fn(*args, **kwargs)
