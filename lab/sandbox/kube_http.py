"""HTTP plumbing of the Kubernetes API sandbox: JSON answers, request bodies, query flags, list
continuation tokens and the middleware that turns every error into a ``metav1.Status``."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from lab.sandbox.kube_errors import (
    StatusError,
    bad_request,
    method_not_allowed,
    not_found_resource,
)

log = logging.getLogger(__name__)

JSON = "application/json"
Obj = dict[str, Any]


def continue_token(rv: int, after: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "after": list(after)}).encode()).decode()


def read_continue(token: str) -> tuple[str, str]:
    """The (namespace, name) a continued list goes on after."""
    try:
        doc = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(doc["after"][0]), str(doc["after"][1])
    except (ValueError, KeyError, IndexError, TypeError):
        raise bad_request("continue key is not valid") from None


def truthy(value: str | None) -> bool:
    return value is not None and value.lower() not in ("", "false", "0")


def dry_run(request: web.Request) -> bool:
    return request.query.get("dryRun") == "All"


def json_response(doc: Obj, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(doc), status=status, content_type=JSON)


async def read_json(request: web.Request) -> Obj:
    try:
        body = await request.json()
    except ValueError as exc:
        raise StatusError(400, "BadRequest", f"the request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise StatusError(400, "BadRequest", "the request body is not a JSON object")
    return body


@web.middleware
async def status_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except StatusError as exc:
        return json_response(exc.body(), status=exc.code)
    except web.HTTPNotFound:
        return json_response(not_found_resource().body(), status=404)
    except web.HTTPMethodNotAllowed:
        return json_response(method_not_allowed().body(), status=405)
    except web.HTTPException:
        raise
    except Exception as exc:
        # A sandbox bug must still answer a Status, or the client reports an unreadable body.
        log.exception("sandbox failed serving %s %s", request.method, request.path)
        error = StatusError(500, "InternalError", f"sandbox error: {exc.__class__.__name__}: {exc}")
        return json_response(error.body(), status=500)
