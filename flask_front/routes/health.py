"""``/healthz`` (the process is alive), ``/readyz`` (it can serve: database, Serve app, every model
deployment) and ``/version`` (git SHA, build time, model versions)."""

from __future__ import annotations

import concurrent.futures
import logging
import subprocess
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify

from flask_front.api import front
from flask_front.errors import error_response
from flask_front.serve_client import ServeClient

bp = Blueprint("health", __name__)
log = logging.getLogger("recall.front.health")
CHECK_TIMEOUT_S = 3.0
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")
_versions_cache: dict[str, Any] = {"at": 0.0, "value": None}


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


def _check(fn) -> dict[str, Any]:  # noqa: ANN001
    """Run one check with a deadline: a hung dependency fails its check instead of hanging /readyz."""
    t0 = time.perf_counter()
    try:
        detail = _pool.submit(fn).result(timeout=CHECK_TIMEOUT_S)
        return {"ok": True, "ms": round((time.perf_counter() - t0) * 1000, 1), **(detail or {})}
    except concurrent.futures.TimeoutError:
        return {"ok": False, "error": f"no answer within {CHECK_TIMEOUT_S:.0f}s"}
    except Exception as exc:
        log.warning(
            "readiness check %s failed: %s: %s", getattr(fn, "__name__", "check"), type(exc).__name__, exc
        )
        return {"ok": False, "error": type(exc).__name__}


def _serve_check(serve: ServeClient) -> dict[str, Any]:
    status = serve.status()
    bad = {n: s for n, s in status["deployments"].items() if s != "HEALTHY"}
    if status["status"] != "RUNNING" or bad or not status["deployments"]:
        raise RuntimeError(f"application {status['status']}, deployments {bad or status['deployments']}")
    return {"deployments": status["deployments"]}


@bp.get("/readyz")
def readyz() -> Response:
    f = front()  # the checks run on other threads, outside the request's app context
    checks = {
        "database": _check(f.db.ping),
        "serve": _check(lambda: _serve_check(f.serve)),
        "ingress": _check(lambda: f.serve.call("noop", timeout_s=CHECK_TIMEOUT_S) and None),
    }
    if all(c["ok"] for c in checks.values()):
        return jsonify({"status": "ready", "checks": checks})
    failed = sorted(k for k, c in checks.items() if not c["ok"])
    return error_response(503, "AI_NOT_READY", "not ready: " + ", ".join(failed), {"checks": checks})


@lru_cache(maxsize=1)
def _git_sha() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=2
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _model_versions() -> dict[str, Any] | None:
    if time.monotonic() - _versions_cache["at"] > 30 or _versions_cache["value"] is None:
        try:
            status = front().serve.call("models_status", timeout_s=CHECK_TIMEOUT_S)
            _versions_cache["value"] = {
                name: info.get("versions", info.get("version"))
                for name, info in status.items()
                if name != "jobs"
            }
            _versions_cache["at"] = time.monotonic()
        except Exception:
            return _versions_cache["value"]
    return _versions_cache["value"]


@bp.get("/version")
def version() -> Response:
    from flask_front.openapi import API_VERSION

    settings = front().settings
    return jsonify(
        {
            "apiVersion": API_VERSION,
            "gitSha": settings.git_sha or _git_sha(),
            "buildTime": settings.build_time,
            "modelProfile": settings.model_profile,
            "models": _model_versions(),
        }
    )
