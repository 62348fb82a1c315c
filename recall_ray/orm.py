"""ORM models (SQLAlchemy 2). Only vectors, AI observations and the jobs that make them live here.

Vectors are stored in an undimensioned ``vector`` column so that model versions with different dimensions
share one table; each model version gets its own partial HNSW index over ``embedding::vector(dim)``
(see ``recall_ray.repositories.vector_index``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from recall_ray.ids import new_id, new_ulid

ASSET_STATES = ("registered", "processing", "ready", "failed", "deleted")
JOB_STATES = ("queued", "running", "succeeded", "failed", "dead")
ENTITY_KINDS = ("schedule", "member", "note", "location")
MODEL_KINDS = ("image", "face")
RUN_STATES = ("running", "succeeded", "failed", "interrupted")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB, list[Any]: JSONB}


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=_now
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=_now, onupdate=_now
    )


class Asset(Timestamps, Base):
    __tablename__ = "assets"
    __table_args__ = (
        CheckConstraint(f"state IN {ASSET_STATES}", name="ck_assets_state"),
        UniqueConstraint("owner_user_id", "storage_key", name="uq_assets_owner_key"),
        Index("ix_assets_owner_taken", "owner_user_id", "taken_at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_ulid)
    owner_user_id: Mapped[str] = mapped_column(String(128), index=True)
    storage_key: Mapped[str] = mapped_column(String(1024))
    content_type: Mapped[str | None] = mapped_column(String(64))
    byte_size: Mapped[int | None] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    taken_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    face_opt_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    state: Mapped[str] = mapped_column(String(16), default="registered", server_default="registered")

    image_embeddings: Mapped[list[ImageEmbedding]] = relationship(
        back_populates="asset", cascade="all, delete-orphan", passive_deletes=True
    )


class ModelVersion(Timestamps, Base):
    """A registered model version; its vector dimension fixes the expression its HNSW index is built on."""

    __tablename__ = "model_versions"
    __table_args__ = (CheckConstraint(f"kind IN {MODEL_KINDS}", name="ck_model_versions_kind"),)

    name: Mapped[str] = mapped_column(String(128), primary_key=True)  # e.g. openclip_vitb32@2025-08
    kind: Mapped[str] = mapped_column(String(16))
    dim: Mapped[int] = mapped_column(Integer)
    index_name: Mapped[str] = mapped_column(String(63), unique=True)
    serving: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")


class ImageEmbedding(Timestamps, Base):
    __tablename__ = "image_embeddings"
    __table_args__ = (
        UniqueConstraint("asset_id", "model_version", name="uq_image_embeddings_asset_version"),
        Index("ix_image_embeddings_owner_version", "owner_user_id", "model_version"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    # Denormalised from assets so that owner-scoped kNN filters without a join.
    owner_user_id: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(ForeignKey("model_versions.name"))
    embedding: Mapped[Any] = mapped_column(Vector())

    asset: Mapped[Asset] = relationship(back_populates="image_embeddings")


class FaceEmbedding(Timestamps, Base):
    """A detected face. ``subject_user_id`` is set when its person enrolled it as their own face."""

    __tablename__ = "face_embeddings"
    __table_args__ = (
        UniqueConstraint("asset_id", "model_version", "face_index", name="uq_face_embeddings_asset_face"),
        Index("ix_face_embeddings_owner_version", "owner_user_id", "model_version"),
        Index("ix_face_embeddings_subject_version", "subject_user_id", "model_version"),
        Index("ix_face_embeddings_asset", "asset_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("face"))
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    owner_user_id: Mapped[str] = mapped_column(String(128))
    subject_user_id: Mapped[str | None] = mapped_column(String(128))
    face_index: Mapped[int] = mapped_column(Integer, default=0)
    bbox: Mapped[list[Any]] = mapped_column(JSONB)
    detection_score: Mapped[float] = mapped_column(Float)
    landmarks: Mapped[list[Any] | None] = mapped_column(JSONB)
    model_version: Mapped[str] = mapped_column(ForeignKey("model_versions.name"))
    embedding: Mapped[Any] = mapped_column(Vector())


class VlmObservation(Timestamps, Base):
    __tablename__ = "vlm_observations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("obs"))
    asset_id: Mapped[str | None] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    observation_hash: Mapped[str] = mapped_column(String(64), unique=True)
    model_version: Mapped[str] = mapped_column(String(256))
    prompt_version: Mapped[str] = mapped_column(String(64))
    raw_output: Mapped[dict[str, Any]] = mapped_column(JSONB)
    parsed_result: Mapped[dict[str, Any]] = mapped_column(JSONB)
    initiator_user_id: Mapped[str] = mapped_column(String(128), index=True)
    latency_ms: Mapped[int] = mapped_column(Integer)

    entities: Mapped[list[VlmDetectionEntity]] = relationship(
        back_populates="observation", cascade="all, delete-orphan", passive_deletes=True
    )


class VlmDetectionEntity(Base):
    __tablename__ = "vlm_detection_entities"
    __table_args__ = (CheckConstraint(f"kind IN {ENTITY_KINDS}", name="ck_vlm_entities_kind"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    observation_id: Mapped[str] = mapped_column(
        ForeignKey("vlm_observations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    confidence: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=_now
    )

    observation: Mapped[VlmObservation] = relationship(back_populates="entities")


class AuditLog(Base):
    __tablename__ = "audit_logs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=_now, index=True
    )
    actor: Mapped[str] = mapped_column(String(160))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(256))
    request_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("caller", "route", "key", name="uq_idempotency_caller_route_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    caller: Mapped[str] = mapped_column(String(160))
    route: Mapped[str] = mapped_column(String(256))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)  # NULL while the first request is in flight
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=_now
    )
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class Job(Timestamps, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"state IN {JOB_STATES}", name="ck_jobs_state"),
        UniqueConstraint("kind", "idempotency_key", name="uq_jobs_kind_idempotency_key"),
        Index("ix_jobs_state_next_run", "state", "next_run_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("job"))
    kind: Mapped[str] = mapped_column(String(64))
    owner_user_id: Mapped[str | None] = mapped_column(String(128), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    next_run_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=_now)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    # The Ray worker (node and pid) running the current attempt, for operators.
    worker: Mapped[str | None] = mapped_column(String(128))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class FaceConsent(Base):
    """A user's face-recognition consent; absent means never asked (treated as not opted in)."""

    __tablename__ = "face_consents"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    opted_in: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=_now, onupdate=_now
    )


class ServiceNonce(Base):
    """Nonces of signed service requests, kept past the timestamp window so that a replay is refused."""

    __tablename__ = "service_nonces"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=_now, index=True
    )


class BackfillRun(Timestamps, Base):
    """One re-embedding run (a Ray Job): its scope and progress."""

    __tablename__ = "backfill_runs"
    __table_args__ = (CheckConstraint(f"state IN {RUN_STATES}", name="ck_backfill_runs_state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("bf"))
    model_version: Mapped[str] = mapped_column(String(128), index=True)
    owner_user_id: Mapped[str | None] = mapped_column(String(128))
    since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16), default="running", server_default="running")
    total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ray_job_id: Mapped[str | None] = mapped_column(String(64))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class DeadLetter(Base):
    """An item that failed for good: a dead job's last error, or one asset a backfill could not embed."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_source_run", "source", "run_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))  # "job:<kind>" or "backfill"
    run_id: Mapped[str | None] = mapped_column(String(32))
    item_id: Mapped[str | None] = mapped_column(String(64), index=True)
    model_version: Mapped[str | None] = mapped_column(String(128))
    error_code: Mapped[str] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=_now
    )
