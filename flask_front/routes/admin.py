"""``/metrics`` (Prometheus; a bearer METRICS_TOKEN, or a direct loopback request), ``/openapi.json`` and
``/docs``. The reverse proxy never forwards ``/metrics`` (deploy/Caddyfile)."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, jsonify, request

from flask_front.api import front
from flask_front.observability import metrics_response
from flask_front.openapi import build_spec, docs_page
from recall_ray.errors import Unauthorized

bp = Blueprint("admin", __name__)


def _metrics_allowed() -> bool:
    token = front().settings.metrics_token
    auth = request.headers.get("Authorization", "")
    if token is not None and auth.startswith("Bearer "):
        return hmac.compare_digest(auth[7:].strip(), token.get_secret_value())
    # A scraper on the same host, straight to gunicorn: no proxy in between (which would add X-Forwarded-For).
    direct = "X-Forwarded-For" not in request.headers and "Forwarded" not in request.headers
    return direct and request.remote_addr in ("127.0.0.1", "::1")


@bp.get("/metrics")
def metrics() -> Response:
    if not _metrics_allowed():
        raise Unauthorized(
            "metrics need the METRICS_TOKEN bearer token or a loopback scrape", code="AUTH_METRICS"
        )
    return metrics_response()


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(build_spec())


@bp.get("/docs")
def docs() -> Response:
    return Response(docs_page(build_spec()), mimetype="text/html")
