"""Error hierarchy, split by who is at fault.

Every error the API server turns into a ``metav1.Status`` derives from :class:`ApiError` and carries
the HTTP code and the Kubernetes ``reason``; configuration errors stop the process at start.
"""

from __future__ import annotations


class QueuescaleError(Exception):
    """Base of every error raised on purpose by queuescale."""


class ConfigError(QueuescaleError):
    """The operator's configuration is wrong; the message names the field."""


class SourceError(QueuescaleError):
    """A backend (Trino, Spark, Prometheus) failed or answered something we cannot use."""


class ApiError(QueuescaleError):
    """An error answered to an API client as a ``metav1.Status``."""

    code = 500
    reason = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ApiError):
    code = 400
    reason = "BadRequest"


class Unauthorized(ApiError):
    code = 401
    reason = "Unauthorized"


class Forbidden(ApiError):
    code = 403
    reason = "Forbidden"


class NotFound(ApiError):
    code = 404
    reason = "NotFound"


class MethodNotAllowed(ApiError):
    code = 405
    reason = "MethodNotAllowed"


class NotAcceptable(ApiError):
    code = 406
    reason = "NotAcceptable"


class InternalError(ApiError):
    code = 500
    reason = "InternalError"


class Unavailable(ApiError):
    """The metric exists but its data is missing or too old: the HPA must hold, not guess."""

    code = 503
    reason = "ServiceUnavailable"
