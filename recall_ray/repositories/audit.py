"""The audit log: who did what to which target, with the request id and the outcome."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recall_ray.orm import AuditLog


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str | None,
    request_id: str | None,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLog(
            actor=actor[:160],
            action=action,
            target=(target or "")[:256] or None,
            request_id=request_id,
            outcome=outcome[:32],
            details=details or {},
        )
    )


def recent(session: Session, *, action: str | None = None, limit: int = 50) -> list[AuditLog]:
    stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    return list(session.scalars(stmt))
