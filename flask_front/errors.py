"""The one place where exceptions become HTTP responses: ``{"error": {"code", "message", "details"}}``.

Domain errors carry their code and status; HTTP errors from Flask and Werkzeug get ``AI_`` codes by status;
anything else is a 500 that names the request id and never shows a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify
from flask_limiter.errors import RateLimitExceeded
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from recall_ray.errors import RecallError

log = logging.getLogger("recall.front")

HTTP_CODES = {
    400: "AI_BAD_REQUEST",
    401: "AUTH_UNAUTHORIZED",
    403: "AUTH_FORBIDDEN",
    404: "AI_NOT_FOUND",
    405: "AI_METHOD_NOT_ALLOWED",
    406: "AI_NOT_ACCEPTABLE",
    409: "AI_CONFLICT",
    411: "AI_LENGTH_REQUIRED",
    413: "AI_PAYLOAD_TOO_LARGE",
    415: "AI_UNSUPPORTED_MEDIA_TYPE",
    422: "AI_VALIDATION_FAILED",
    429: "AI_RATE_LIMITED",
    500: "AI_INTERNAL",
    503: "AI_UNAVAILABLE",
}
RETRY_AFTER_S = 5


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
    resp = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    resp.status_code = status
    if status == 503:
        resp.headers["Retry-After"] = str(RETRY_AFTER_S)
    return resp


def from_exception(exc: BaseException) -> Response:
    if isinstance(exc, RecallError):
        return error_response(exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, ValidationError):
        return error_response(
            422, "AI_VALIDATION_FAILED", "the request is invalid", {"errors": validation_details(exc)}
        )
    if isinstance(exc, RateLimitExceeded):
        return error_response(429, "AI_RATE_LIMITED", f"rate limit exceeded ({exc.description})")
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        return error_response(
            status, HTTP_CODES.get(status, f"AI_HTTP_{status}"), exc.description or exc.name
        )
    request_id = getattr(g, "request_id", None)
    log.exception("unhandled error")
    return error_response(500, "AI_INTERNAL", "internal error", {"requestId": request_id})


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Where and why, never the rejected input itself (it may be large or sensitive)."""
    return [
        {"loc": ".".join(str(p) for p in e["loc"]) or "body", "type": e["type"], "msg": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]


def register(app: Flask) -> None:
    # flask-limiter adds X-RateLimit-* and Retry-After to this response in its after_request hook.
    app.register_error_handler(Exception, from_exception)
