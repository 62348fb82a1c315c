"""The HTTP edge: authentication, scopes, rate limits, validation, idempotency, errors, audit and
observability. No model runs here: every ``/ai/*`` request is forwarded into the Ray Serve application."""

from __future__ import annotations

from flask import Flask, g, request
from flask_limiter import ApplicationLimit, Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

from recall_ray.config import Settings, get_settings

UNLIMITED_PATHS = ("/healthz", "/readyz", "/metrics", "/version")


def _ip() -> str:
    return request.remote_addr or "unknown"


def _unlimited() -> bool:
    return request.path in UNLIMITED_PATHS


def _user_or_ip() -> str:
    principal = g.get("principal")
    return f"actor:{principal.actor}" if principal is not None else f"ip:{_ip()}"


def create_app(settings: Settings | None = None, serve_client=None) -> Flask:  # noqa: ANN001
    from flask_front import errors, observability
    from flask_front.api import Front, identify, replay_header
    from flask_front.routes import admin, ai, health, storage
    from flask_front.serve_client import ServeClient
    from recall_ray import logs

    settings = settings or get_settings()
    logs.configure()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False
    if settings.proxy_hops:
        # Behind Caddy (or another proxy): trust exactly that many X-Forwarded-* hops, no more.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops)
    app.extensions["recall"] = Front(
        settings, serve_client or ServeClient(settings, observe=observability.observe_ray_call)
    )

    observability.install(app)
    app.before_request(identify)  # before the limiter, so the per-user limit knows the user
    Limiter(
        _ip,
        app=app,
        # Limits of one window are checked in this order, and the first one's numbers go into the
        # X-RateLimit-* headers until one is breached: the per-user limit is the tighter, so it comes first.
        # exempt_when goes on each limit: flask-limiter applies its application-wide default only to
        # limits it builds itself, not to ApplicationLimit objects given here.
        application_limits=[
            ApplicationLimit(
                settings.rate_limit_user, key_function=_user_or_ip, scope="user", exempt_when=_unlimited
            ),
            ApplicationLimit(
                settings.rate_limit_ip, key_function=lambda: f"ip:{_ip()}", scope="ip", exempt_when=_unlimited
            ),
        ],
        headers_enabled=True,
        storage_uri=settings.redis_url or "memory://",
        strategy="moving-window",
    )
    app.after_request(replay_header)
    for blueprint in (ai.bp, health.bp, admin.bp, storage.bp):
        app.register_blueprint(blueprint)
    errors.register(app)
    observability.init_sentry(settings)
    return app
