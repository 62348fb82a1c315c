"""Domain exceptions. Each carries a stable code and the HTTP status the front maps it to.

Codes follow one rule: ``AI_`` for everything the AI service decides, ``AUTH_`` for authentication and
authorization, ``CONFIG_`` for start-up configuration.
"""

from __future__ import annotations

from typing import Any


class RecallError(Exception):
    code = "AI_INTERNAL"
    status = 500

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def __reduce__(self):  # keeps code and details across Ray's pickling
        return (_rebuild, (type(self), self.message, self.code, self.details))


def _rebuild(cls: type[RecallError], message: str, code: str, details: dict[str, Any]) -> RecallError:
    return cls(message, code=code, details=details)


class ConfigError(RecallError):
    code = "CONFIG_INVALID"
    status = 500


class BadRequest(RecallError):
    code = "AI_BAD_REQUEST"
    status = 400


class Unauthorized(RecallError):
    code = "AUTH_UNAUTHORIZED"
    status = 401


class Forbidden(RecallError):
    code = "AUTH_FORBIDDEN"
    status = 403


class ValidationFailed(RecallError):
    code = "AI_VALIDATION_FAILED"
    status = 422


class NotFound(RecallError):
    code = "AI_NOT_FOUND"
    status = 404


class Conflict(RecallError):
    code = "AI_CONFLICT"
    status = 409


class PayloadTooLarge(RecallError):
    code = "AI_PAYLOAD_TOO_LARGE"
    status = 413


class UnsupportedMedia(RecallError):
    code = "AI_UNSUPPORTED_MEDIA_TYPE"
    status = 415


class ImageRejected(RecallError):
    """An image that cannot be used; the code says why (empty, truncated, bomb, ...)."""

    code = "AI_IMAGE_INVALID"
    status = 422


class UrlRefused(RecallError):
    """A signed URL that the intake refuses to fetch; the code says why."""

    code = "AI_URL_REFUSED"
    status = 422


class RateLimited(RecallError):
    code = "AI_RATE_LIMITED"
    status = 429


class Unavailable(RecallError):
    code = "AI_UNAVAILABLE"
    status = 503


class ModelUnavailable(Unavailable):
    code = "AI_MODEL_UNAVAILABLE"


def permanent(exc: BaseException) -> bool:
    """Whether retrying cannot help: the request or its data is wrong (a 4xx), not the system (5xx, crash)."""
    return isinstance(exc, RecallError) and 400 <= exc.status < 500 and exc.status != 429


def unwrap(exc: BaseException) -> BaseException:
    """The original exception behind Ray's wrappers (RayTaskError and the like carry it as ``cause``)."""
    # Ray re-raises a task's exception as a class deriving from both RayTaskError and the original type, whose
    # class attributes (our ``code``) shadow the original's instance values: always take ``cause``.
    for _ in range(5):
        cause = getattr(exc, "cause", None)
        if not isinstance(cause, BaseException):
            break
        exc = cause
    return exc
