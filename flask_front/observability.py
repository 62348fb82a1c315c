"""Request ids, JSON access logs, Prometheus metrics and Sentry for the front.

Metrics work with several gunicorn workers through prometheus_client's multiprocess mode when
``PROMETHEUS_MULTIPROC_DIR`` is set (the gunicorn config sets it).
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from recall_ray.config import Settings
from recall_ray.logs import mask_user, request_id_var, scrub

log = logging.getLogger("recall.front.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")

REQUEST_SECONDS = Histogram(
    "recall_http_request_duration_seconds",
    "HTTP request latency by route template, method and status",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
IN_FLIGHT = Gauge("recall_http_in_flight", "HTTP requests being served", multiprocess_mode="livesum")
ERRORS = Counter(
    "recall_http_errors_total", "Error responses by route template and error code", ["route", "code"]
)
RAY_CALL_SECONDS = Histogram(
    "recall_ray_call_duration_seconds",
    "Latency of calls into the Ray Serve application by method and outcome",
    ["method", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def observe_ray_call(method: str, outcome: str, seconds: float) -> None:
    RAY_CALL_SECONDS.labels(method, outcome).observe(seconds)


def install(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_token = request_id_var.set(g.request_id)
        g.t0 = time.perf_counter()
        IN_FLIGHT.inc()

    @app.after_request
    def _finish(resp: Response) -> Response:
        resp.headers["X-Request-ID"] = g.get("request_id", "")
        route = request.url_rule.rule if request.url_rule else "unmatched"
        seconds = time.perf_counter() - g.get("t0", time.perf_counter())
        REQUEST_SECONDS.labels(route, request.method, str(resp.status_code)).observe(seconds)
        if resp.status_code >= 400 and resp.is_json:
            code = ((resp.get_json(silent=True) or {}).get("error") or {}).get("code", "unknown")
            ERRORS.labels(route, code).inc()
        principal = g.get("principal")
        log.info(
            "%s %s %d",
            request.method,
            route,
            resp.status_code,
            extra={
                "duration_ms": round(seconds * 1000, 2),
                "status": resp.status_code,
                "user": mask_user(principal.user_id) if principal else None,
                "service": principal.service if principal else None,
            },
        )
        return resp

    @app.teardown_request
    def _teardown(_exc: BaseException | None) -> None:
        IN_FLIGHT.dec()
        token = g.pop("request_token", None)
        if token is not None:
            request_id_var.reset(token)


def metrics_response() -> Response:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        data = generate_latest(registry)
    else:
        data = generate_latest()
    return Response(data, mimetype=CONTENT_TYPE_LATEST)


def init_sentry(settings: Settings) -> bool:
    """Sentry when SENTRY_DSN is set; nothing personal or secret leaves: headers, user ids and bodies are
    scrubbed before an event is sent."""
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.recall_env,
        send_default_pii=False,
        integrations=[FlaskIntegration()],
        before_send=scrub_event,
        traces_sample_rate=0.0,
    )
    return True


_SENSITIVE_HEADERS = {"authorization", "cookie", "x-recall-signature", "x-recall-user-id", "x-recall-nonce"}


def scrub_event(event: dict[str, Any], _hint: dict[str, Any] | None = None) -> dict[str, Any]:
    req = event.get("request") or {}
    headers = req.get("headers") or {}
    req["headers"] = {k: ("[redacted]" if k.lower() in _SENSITIVE_HEADERS else v) for k, v in headers.items()}
    req.pop("data", None)  # bodies may hold user ids and URLs
    req.pop("cookies", None)
    if "query_string" in req:
        req["query_string"] = scrub(str(req["query_string"]))
    if event.get("user"):
        event["user"] = {"id": mask_user(str(event["user"].get("id")))}
    for entry in (event.get("exception") or {}).get("values", []):
        if entry.get("value"):
            entry["value"] = scrub(str(entry["value"]))
    if event.get("message"):
        event["message"] = scrub(str(event["message"]))
    return event
