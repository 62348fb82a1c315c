"""State of the HTTP edge that must be shared by every worker: idempotency keys and service-call nonces."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from recall_ray.orm import IdempotencyKey, ServiceNonce


@dataclass(frozen=True)
class IdempotencyState:
    """``new`` (this request owns the key), ``replay`` (a stored response), ``in_flight`` or ``mismatch``."""

    outcome: str
    status_code: int | None = None
    body: dict[str, Any] | None = None


def begin_idempotent(
    session: Session, *, caller: str, route: str, key: str, request_hash: str, ttl_s: int
) -> IdempotencyState:
    """Claim ``key`` for this caller and route, or say what an earlier request with it left."""
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.caller == caller,
            IdempotencyKey.route == route,
            IdempotencyKey.key == key,
            IdempotencyKey.expires_at < func.now(),
        )
    )
    inserted = session.execute(
        insert(IdempotencyKey)
        .values(
            caller=caller,
            route=route,
            key=key,
            request_hash=request_hash,
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl_s),
        )
        .on_conflict_do_nothing(constraint="uq_idempotency_caller_route_key")
        .returning(IdempotencyKey.id)
    ).scalar_one_or_none()
    if inserted is not None:
        return IdempotencyState("new")
    row = session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.caller == caller, IdempotencyKey.route == route, IdempotencyKey.key == key
        )
    ).one()
    if row.request_hash != request_hash:
        return IdempotencyState("mismatch")
    if row.status_code is None:
        return IdempotencyState("in_flight")
    return IdempotencyState("replay", row.status_code, row.response_body)


def complete_idempotent(
    session: Session, *, caller: str, route: str, key: str, status_code: int, body: dict[str, Any]
) -> None:
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.caller == caller, IdempotencyKey.route == route, IdempotencyKey.key == key)
        .values(status_code=status_code, response_body=body)
    )


def release_idempotent(session: Session, *, caller: str, route: str, key: str) -> None:
    """Forget a key whose request failed for a reason a retry may not meet (5xx): the retry runs afresh."""
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.caller == caller, IdempotencyKey.route == route, IdempotencyKey.key == key
        )
    )


def delete_for_user(session: Session, user_id: str) -> int:
    """Stored responses of requests made by the user or by a service acting for them (callers are actors)."""
    mine = f"user:{user_id}"
    result = session.execute(
        delete(IdempotencyKey).where(
            or_(IdempotencyKey.caller == mine, IdempotencyKey.caller.endswith(f"/{mine}", autoescape=True))
        )
    )
    return int(result.rowcount or 0)


def use_nonce(session: Session, key_id: str, nonce: str, keep_s: int) -> bool:
    """Record a service call's nonce; False when it was seen before (a replay)."""
    session.execute(
        delete(ServiceNonce).where(ServiceNonce.seen_at < func.now() - dt.timedelta(seconds=keep_s))
    )
    inserted = session.execute(
        insert(ServiceNonce)
        .values(key_id=key_id, nonce=nonce)
        .on_conflict_do_nothing(index_elements=[ServiceNonce.key_id, ServiceNonce.nonce])
        .returning(ServiceNonce.nonce)
    ).scalar_one_or_none()
    return inserted is not None
