"""How an ``/ai/*`` route is declared: one ``RouteSpec`` gives the Flask view its authentication, path and
body validation, idempotency and audit-on-failure, and gives the OpenAPI document its entry. Route functions
themselves are one line: forward the validated request to the Serve application."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel

from flask_front.auth import Authenticator, Principal
from flask_front.openapi import ROUTES, RouteSpec
from flask_front.serve_client import ServeClient
from recall_ray.config import Settings
from recall_ray.database import Database
from recall_ray.errors import BadRequest, Conflict, NotFound, RecallError, UnsupportedMedia, ValidationFailed
from recall_ray.repositories import audit
from recall_ray.repositories import requests as request_repo
from recall_ray.schemas.common import Caller

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass
class Front:
    """What the front's routes share: settings, the database (made lazily, after fork), Serve, auth."""

    settings: Settings
    serve: ServeClient
    _db: Database | None = None
    _auth: Authenticator | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database.from_settings(self.settings)
        return self._db

    @property
    def auth(self) -> Authenticator:
        if self._auth is None:
            self._auth = Authenticator(self.settings, self._use_nonce)
        return self._auth

    def _use_nonce(self, key_id: str, nonce: str) -> bool:
        with self.db.session() as s:
            return request_repo.use_nonce(s, key_id, nonce, keep_s=2 * self.settings.hmac_max_skew_s + 60)


def front() -> Front:
    return current_app.extensions["recall"]


def identify() -> None:
    """Before every request (and before the rate limiter): who is calling, or why not. The error is raised
    only by routes that need a caller, so that failed logins still count against the per-IP limit."""
    g.principal, g.auth_error = None, None
    if not request.path.startswith("/ai/"):
        return
    try:
        g.principal = front().auth.authenticate(
            request.method,
            request.path,
            request.query_string.decode("latin-1"),
            request.args,
            request.headers,
            request.get_data(cache=True),
        )
    except RecallError as exc:
        g.auth_error = exc


def principal() -> Principal:
    if g.get("auth_error") is not None:
        raise g.auth_error
    if g.get("principal") is None:
        from recall_ray.errors import Unauthorized

        raise Unauthorized("authentication required", code="AUTH_MISSING")
    return g.principal


def caller() -> Caller:
    p = principal()
    return Caller(user_id=p.user_id, service=p.service, request_id=g.get("request_id"))


def forward(operation: str, who: Caller, body: BaseModel | None = None, **path: str) -> tuple[int, Any]:
    """Run ``operation`` in the Serve application for ``who``; returns (status, JSON body)."""
    payload = body.model_dump(mode="json", by_alias=True, exclude_none=True) if body is not None else {}
    out = front().serve.api(operation, who.model_dump(), {**payload, **path})
    return out["status"], out["body"]


RouteFn = Callable[..., tuple[int, Any]]


def api_route(
    bp: Blueprint, spec: RouteSpec, audit_action: str | None = None
) -> Callable[[RouteFn], RouteFn]:
    def decorator(fn: RouteFn) -> RouteFn:
        def view(**path: str) -> Response:
            who = caller()
            for name, pattern in spec.path_params.items():
                if not re.fullmatch(pattern, path[name]):
                    raise NotFound(f"{name.replace('_', ' ')} {path[name]!r} not found", code="AI_NOT_FOUND")
            body = _body(spec.request) if spec.request is not None else None
            try:
                if spec.idempotent and request.headers.get("Idempotency-Key") is not None:
                    status, data = _idempotent(who, spec, lambda: fn(who, body, **path))
                else:
                    status, data = fn(who, body, **path)
            except RecallError as exc:
                if audit_action:
                    _audit_failure(who, audit_action, path, exc)
                raise
            resp = jsonify(data)
            resp.status_code = status
            return resp

        bp.add_url_rule(spec.path, spec.operation_id, view, methods=[spec.method])
        ROUTES.append(spec)
        return fn

    return decorator


def _body(model: type[BaseModel]) -> BaseModel:
    if not request.is_json:
        raise UnsupportedMedia("send the request body as application/json", code="AI_UNSUPPORTED_MEDIA_TYPE")
    try:
        data = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the request body is not valid JSON", code="AI_JSON_INVALID") from None
    if not isinstance(data, dict):
        raise ValidationFailed("the request body must be a JSON object", code="AI_VALIDATION_FAILED")
    return model.model_validate(data)


def _idempotent(who: Caller, spec: RouteSpec, run: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
    """Idempotency-Key: a retry gets the stored response, a concurrent duplicate 409, another body 422."""
    key = request.headers["Idempotency-Key"]
    if not _IDEMPOTENCY_KEY.match(key):
        raise BadRequest(
            "Idempotency-Key must be 1-255 printable ASCII characters", code="AI_IDEMPOTENCY_KEY"
        )
    settings, db = front().settings, front().db
    digest = hashlib.sha256(
        request.method.encode() + b" " + request.path.encode() + b"\n" + request.get_data()
    )
    scope = {"caller": who.actor, "route": f"{spec.method} {spec.path}", "key": key}
    with db.session() as s:
        state = request_repo.begin_idempotent(
            s, **scope, request_hash=digest.hexdigest(), ttl_s=settings.idempotency_ttl_s
        )
    if state.outcome == "mismatch":
        raise ValidationFailed(
            "this Idempotency-Key was used with a different request", code="AI_IDEMPOTENCY_KEY_REUSED"
        )
    if state.outcome == "in_flight":
        raise Conflict(
            "a request with this Idempotency-Key is still in progress", code="AI_IDEMPOTENCY_IN_FLIGHT"
        )
    if state.outcome == "replay":
        g.idempotent_replay = True
        return int(state.status_code or 200), state.body
    try:
        status, data = run()
    except RecallError as exc:
        _settle(db, scope, exc.status, exc.to_dict())
        raise
    except BaseException:
        with db.session() as s:
            request_repo.release_idempotent(s, **scope)
        raise
    _settle(db, scope, status, data)
    return status, data


def _settle(db: Database, scope: dict[str, str], status: int, body: Any) -> None:
    """Keep answers a retry would get again (2xx, 4xx); forget failures a retry may not meet (5xx, 429)."""
    with db.session() as s:
        if status >= 500 or status == 429:
            request_repo.release_idempotent(s, **scope)
        else:
            request_repo.complete_idempotent(s, **scope, status_code=status, body=body)


def _audit_failure(who: Caller, action: str, path: dict[str, str], exc: RecallError) -> None:
    target = next(iter(path.values()), None) or (f"user:{who.user_id}" if who.user_id else None)
    try:
        with front().db.session() as s:
            audit.record(
                s,
                actor=who.actor,
                action=action,
                target=target,
                request_id=who.request_id,
                outcome=exc.code,
                details={"status": exc.status},
            )
    except Exception:  # the database being down must not hide the original error
        pass


def replay_header(resp: Response) -> Response:
    if g.get("idempotent_replay"):
        resp.headers["Idempotent-Replayed"] = "true"
    return resp


__all__ = ["ROUTES", "Front", "api_route", "caller", "forward", "front", "identify", "replay_header"]
