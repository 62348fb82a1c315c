"""Signed webhooks to the configured Firebase Functions URL, delivered as durable, retried jobs.

Signature: ``X-Recall-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(WEBHOOK_SECRET, "<t>.<body>")>``;
receivers recompute it, compare in constant time, refuse old timestamps and dedupe on ``X-Recall-Delivery``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

from sqlalchemy.orm import Session

from recall_ray.config import Settings
from recall_ray.errors import Unavailable, UrlRefused
from recall_ray.orm import Job
from recall_ray.repositories import jobs as job_repo
from recall_ray.services.context import Context

KIND = "webhook"
_RETRYABLE_4XX = {408, 409, 425, 429}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def enqueue(
    session: Session, settings: Settings, *, event: str, owner: str | None, data: dict[str, Any]
) -> None:
    """Queue one delivery of ``event`` when a webhook URL is configured (in the caller's transaction)."""
    if not settings.webhook_url:
        return
    job_repo.create(
        session,
        kind=KIND,
        owner=owner,
        payload={"event": event, "data": data},
        max_attempts=settings.job_max_attempts,
    )


async def run(ctx: Context, job: Job) -> dict[str, Any]:
    settings = ctx.settings
    if not settings.webhook_url or settings.webhook_secret is None:
        return {"skipped": "no WEBHOOK_URL configured"}
    body = json.dumps(
        {"deliveryId": job.id, "event": job.payload["event"], "data": job.payload["data"]},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Recall-Event": job.payload["event"],
        "X-Recall-Delivery": job.id,
        "X-Recall-Signature": sign(settings.webhook_secret.get_secret_value(), int(time.time()), body),
    }
    status = await asyncio.to_thread(_post, settings.webhook_url, body, headers, settings.webhook_timeout_s)
    if 200 <= status < 300:
        return {"status": status}
    if 400 <= status < 500 and status not in _RETRYABLE_4XX:
        raise UrlRefused(
            f"the webhook receiver refused the delivery: HTTP {status}", code="AI_WEBHOOK_REFUSED"
        )
    raise Unavailable(f"the webhook receiver answered HTTP {status}", code="AI_WEBHOOK_FAILED")


def _post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    import requests

    try:
        resp = requests.post(url, data=body, headers=headers, timeout=timeout_s, allow_redirects=False)
    except requests.RequestException as exc:
        raise Unavailable(
            f"the webhook receiver is unreachable: {type(exc).__name__}", code="AI_WEBHOOK_FAILED"
        ) from None
    return resp.status_code
