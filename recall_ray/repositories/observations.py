"""VLM observations and their detected entities, idempotent by ``observation_hash``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, selectinload

from recall_ray.errors import NotFound
from recall_ray.orm import VlmDetectionEntity, VlmObservation


def by_hash(session: Session, observation_hash: str) -> VlmObservation | None:
    return session.scalars(
        select(VlmObservation).where(VlmObservation.observation_hash == observation_hash)
    ).one_or_none()


def get_owned(session: Session, observation_id: str, initiator: str) -> VlmObservation:
    obs = session.scalars(
        select(VlmObservation)
        .where(VlmObservation.id == observation_id, VlmObservation.initiator_user_id == initiator)
        .options(selectinload(VlmObservation.entities))
    ).one_or_none()
    if obs is None:
        raise NotFound(f"observation {observation_id} not found", code="AI_OBSERVATION_NOT_FOUND")
    return obs


def upsert(
    session: Session,
    *,
    observation_hash: str,
    asset_id: str | None,
    model_version: str,
    prompt_version: str,
    raw_output: dict[str, Any],
    parsed_result: dict[str, Any],
    initiator: str,
    latency_ms: int,
    entities: Sequence[tuple[str, dict[str, Any], float | None]],
) -> tuple[VlmObservation, bool]:
    """Store an observation with its entities; a concurrent twin with the same hash wins and is returned.

    Returns (observation, created). A re-analysis under the same hash replaces the stored result.
    """
    stmt = insert(VlmObservation).values(
        observation_hash=observation_hash,
        asset_id=asset_id,
        model_version=model_version,
        prompt_version=prompt_version,
        raw_output=raw_output,
        parsed_result=parsed_result,
        initiator_user_id=initiator,
        latency_ms=latency_ms,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[VlmObservation.observation_hash],
        set_={
            "raw_output": stmt.excluded.raw_output,
            "parsed_result": stmt.excluded.parsed_result,
            "latency_ms": stmt.excluded.latency_ms,
            "updated_at": func.now(),
        },
    ).returning(VlmObservation.id, literal_column("(xmax = 0)"))  # xmax = 0: the row was inserted
    obs_id, created = session.execute(stmt).one()
    session.execute(delete(VlmDetectionEntity).where(VlmDetectionEntity.observation_id == obs_id))
    session.add_all(
        VlmDetectionEntity(observation_id=obs_id, kind=kind, payload=payload, confidence=conf)
        for kind, payload, conf in entities
    )
    session.flush()
    return session.get_one(VlmObservation, obs_id, populate_existing=True), bool(created)


def delete_owned(session: Session, observation_id: str, initiator: str) -> int:
    """Delete one observation with its entities; returns how many entities went with it."""
    obs = get_owned(session, observation_id, initiator)
    n = len(obs.entities)
    session.delete(obs)
    return n


def delete_initiated_by(session: Session, user_id: str) -> int:
    result = session.execute(delete(VlmObservation).where(VlmObservation.initiator_user_id == user_id))
    return int(result.rowcount or 0)
