"""initial schema: assets, embeddings, faces, VLM observations, audit, idempotency keys, jobs

Revision ID: 0001
Revises:
Create Date: 2026-12-03 21:35:33.571107
"""

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The extension outlives a downgrade: other schemas on the same server may use it.
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "assets",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("owner_user_id", sa.String(length=128), nullable=False),
        sa.Column("storage_key", sa.String(length=1024), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=True),
        sa.Column("byte_size", sa.BigInteger(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("face_opt_in", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("state", sa.String(length=16), server_default="registered", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "state IN ('registered', 'processing', 'ready', 'failed', 'deleted')", name="ck_assets_state"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_user_id", "storage_key", name="uq_assets_owner_key"),
    )
    op.create_index("ix_assets_owner_taken", "assets", ["owner_user_id", "taken_at"], unique=False)
    op.create_index(op.f("ix_assets_owner_user_id"), "assets", ["owner_user_id"], unique=False)
    op.create_table(
        "audit_logs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.String(length=160), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=256), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_audit_logs_action"), "audit_logs", ["action"], unique=False)
    op.create_index(op.f("ix_audit_logs_at"), "audit_logs", ["at"], unique=False)
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("caller", sa.String(length=160), nullable=False),
        sa.Column("route", sa.String(length=256), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("caller", "route", "key", name="uq_idempotency_caller_route_key"),
    )
    op.create_index(op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"], unique=False)
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("owner_user_id", sa.String(length=128), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="5", nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed', 'dead')", name="ck_jobs_state"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "idempotency_key", name="uq_jobs_kind_idempotency_key"),
    )
    op.create_index(op.f("ix_jobs_owner_user_id"), "jobs", ["owner_user_id"], unique=False)
    op.create_index("ix_jobs_state_next_run", "jobs", ["state", "next_run_at"], unique=False)
    op.create_table(
        "model_versions",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("index_name", sa.String(length=63), nullable=False),
        sa.Column("serving", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('image', 'face')", name="ck_model_versions_kind"),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("index_name"),
    )
    op.create_table(
        "face_embeddings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("asset_id", sa.String(length=26), nullable=False),
        sa.Column("owner_user_id", sa.String(length=128), nullable=False),
        sa.Column("subject_user_id", sa.String(length=128), nullable=True),
        sa.Column("face_index", sa.Integer(), nullable=False),
        sa.Column("bbox", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("detection_score", sa.Float(), nullable=False),
        sa.Column("landmarks", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("embedding", pgvector.sqlalchemy.vector.VECTOR(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["model_version"],
            ["model_versions.name"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_face_embeddings_asset", "face_embeddings", ["asset_id"], unique=False)
    op.create_index(
        "ix_face_embeddings_owner_version",
        "face_embeddings",
        ["owner_user_id", "model_version"],
        unique=False,
    )
    op.create_index(
        "ix_face_embeddings_subject_version",
        "face_embeddings",
        ["subject_user_id", "model_version"],
        unique=False,
    )
    op.create_table(
        "image_embeddings",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("asset_id", sa.String(length=26), nullable=False),
        sa.Column("owner_user_id", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("embedding", pgvector.sqlalchemy.vector.VECTOR(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["model_version"],
            ["model_versions.name"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("asset_id", "model_version", name="uq_image_embeddings_asset_version"),
    )
    op.create_index(
        "ix_image_embeddings_owner_version",
        "image_embeddings",
        ["owner_user_id", "model_version"],
        unique=False,
    )
    op.create_table(
        "vlm_observations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("asset_id", sa.String(length=26), nullable=True),
        sa.Column("observation_hash", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=256), nullable=False),
        sa.Column("prompt_version", sa.String(length=64), nullable=False),
        sa.Column("raw_output", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("parsed_result", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("initiator_user_id", sa.String(length=128), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("observation_hash"),
    )
    op.create_index(op.f("ix_vlm_observations_asset_id"), "vlm_observations", ["asset_id"], unique=False)
    op.create_index(
        op.f("ix_vlm_observations_initiator_user_id"), "vlm_observations", ["initiator_user_id"], unique=False
    )
    op.create_table(
        "vlm_detection_entities",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("observation_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('schedule', 'member', 'note', 'location')", name="ck_vlm_entities_kind"),
        sa.ForeignKeyConstraint(["observation_id"], ["vlm_observations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_vlm_detection_entities_observation_id"),
        "vlm_detection_entities",
        ["observation_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_vlm_detection_entities_observation_id"), table_name="vlm_detection_entities")
    op.drop_table("vlm_detection_entities")
    op.drop_index(op.f("ix_vlm_observations_initiator_user_id"), table_name="vlm_observations")
    op.drop_index(op.f("ix_vlm_observations_asset_id"), table_name="vlm_observations")
    op.drop_table("vlm_observations")
    op.drop_index("ix_image_embeddings_owner_version", table_name="image_embeddings")
    op.drop_table("image_embeddings")
    op.drop_index("ix_face_embeddings_subject_version", table_name="face_embeddings")
    op.drop_index("ix_face_embeddings_owner_version", table_name="face_embeddings")
    op.drop_index("ix_face_embeddings_asset", table_name="face_embeddings")
    op.drop_table("face_embeddings")
    op.drop_table("model_versions")
    op.drop_index("ix_jobs_state_next_run", table_name="jobs")
    op.drop_index(op.f("ix_jobs_owner_user_id"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index(op.f("ix_audit_logs_at"), table_name="audit_logs")
    op.drop_index(op.f("ix_audit_logs_action"), table_name="audit_logs")
    op.drop_table("audit_logs")
    op.drop_index(op.f("ix_assets_owner_user_id"), table_name="assets")
    op.drop_index("ix_assets_owner_taken", table_name="assets")
    op.drop_table("assets")
