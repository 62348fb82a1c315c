"""OpenAPI 3.1, generated from the route declarations and their pydantic models, and a docs page."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from recall_ray.schemas.common import ErrorResponse

API_VERSION = "1.0.0"
ERROR_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not authenticated (any AUTH_* code)",
    403: "Authenticated, but not allowed",
    404: "Not found, or not the caller's (no existence leak)",
    409: "Conflict: the resource is not ready, or an identical request is in flight",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Rate limited (see X-RateLimit-* and Retry-After)",
    500: "Internal error",
    503: "Ray Serve or a model is unavailable (see Retry-After)",
}
COMMON_ERRORS = (400, 401, 413, 422, 429, 500, 503)
PATH_PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str  # Flask syntax: /ai/assets/<asset_id>
    operation_id: str
    summary: str
    tag: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    auth: tuple[str, ...] = ("bearerAuth", "hmacAuth")
    idempotent: bool = False
    extra_responses: dict[int, type[BaseModel]] = field(default_factory=dict)
    path_params: dict[str, str] = field(default_factory=dict)  # name -> regex pattern

    @property
    def openapi_path(self) -> str:
        return PATH_PARAM.sub(lambda m: "{" + _camel(m.group(1)) + "}", self.path)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


ROUTES: list[RouteSpec] = []


def build_spec(server_url: str = "/") -> dict[str, Any]:
    models = {ErrorResponse}
    for r in ROUTES:
        models.update(m for m in (r.request, r.response, *r.extra_responses.values()) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    keys = [(m, "validation" if any(r.request is m for r in ROUTES) else "serialization") for m in ordered]
    refs, defs = models_json_schema(keys, ref_template="#/components/schemas/{model}", by_alias=True)
    schemas = defs.get("$defs", {})

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        mode = "validation" if any(r.request is model for r in ROUTES) else "serialization"
        return refs[(model, mode)]

    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        op: dict[str, Any] = {
            "operationId": r.operation_id,
            "summary": r.summary,
            "tags": [r.tag],
            "security": [{s: []} for s in r.auth],
            "responses": {},
        }
        params = [
            {
                "name": _camel(name),
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": pattern},
            }
            for name, pattern in r.path_params.items()
        ]
        params.append(
            {
                "name": "X-Request-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{8,64}$"},
            }
        )
        if r.idempotent:
            params.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "a retry with the same key and body gets the stored response (24 h)",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                }
            )
        op["parameters"] = params
        if r.request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(r.request)}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if r.response is not None:
            ok["content"] = {"application/json": {"schema": ref(r.response)}}
        op["responses"][str(r.status)] = ok
        for status, model in r.extra_responses.items():
            op["responses"][str(status)] = {
                "description": "Accepted" if status == 202 else "OK",
                "content": {"application/json": {"schema": ref(model)}},
            }
        for status in sorted(set(COMMON_ERRORS) | set(r.errors)):
            op["responses"][str(status)] = {
                "description": ERROR_DESCRIPTIONS[status],
                "content": {"application/json": {"schema": ref(ErrorResponse)}},
            }
        paths.setdefault(r.openapi_path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Recall AI backend",
            "version": API_VERSION,
            "description": 'AI routes of Recall. Errors: {"error": {"code", "message", "details"}}.',
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "Firebase or Google ID token (RS256), or a self-hosted HS256 token",
                },
                "hmacAuth": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Recall-Signature",
                    "description": "Firebase Functions: X-Recall-Key-Id, X-Recall-Timestamp, "
                    "X-Recall-Nonce and X-Recall-Signature = hex HMAC-SHA256 over method, path, sorted "
                    "query, timestamp, nonce, SHA-256 of the body and X-Recall-User-Id, one per line. "
                    "Only these callers may send X-Recall-User-Id to act for a user.",
                },
            },
        },
    }


def docs_page(spec: dict[str, Any]) -> str:
    """A self-contained page (no scripts from elsewhere): every operation with its request and responses."""
    rows = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            responses = ", ".join(sorted(op["responses"]))
            auth = " or ".join(next(iter(s)) for s in op.get("security", [])) or "none"
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['summary'])}</td><td>{auth}</td><td>{responses}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Recall AI API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 8px;border-bottom:1px solid #ddd}"
        "</style></head><body><h1>Recall AI API</h1><p>Machine-readable: <a href='/openapi.json'>"
        '/openapi.json</a> (OpenAPI 3.1). Errors: <code>{"error": {"code", "message", "details"}}</code>.'
        "</p><table><tr><th>method</th><th>path</th><th>what</th><th>auth</th><th>responses</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
