"""face consent, service nonces, backfill runs, dead letters; job worker and finish time; one face row per
(asset, model version, face index)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 04:42:29.057940
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "backfill_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("owner_user_id", sa.String(length=128), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=16), server_default="running", nullable=False),
        sa.Column("total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ray_job_id", sa.String(length=64), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "state IN ('running', 'succeeded', 'failed', 'interrupted')", name="ck_backfill_runs_state"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_backfill_runs_model_version"), "backfill_runs", ["model_version"], unique=False)
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("item_id", sa.String(length=64), nullable=True),
        sa.Column("model_version", sa.String(length=128), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_dead_letters_item_id"), "dead_letters", ["item_id"], unique=False)
    op.create_index("ix_dead_letters_source_run", "dead_letters", ["source", "run_id"], unique=False)
    op.create_table(
        "face_consents",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("opted_in", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "service_nonces",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "nonce"),
    )
    op.create_index(op.f("ix_service_nonces_seen_at"), "service_nonces", ["seen_at"], unique=False)
    op.create_unique_constraint(
        "uq_face_embeddings_asset_face", "face_embeddings", ["asset_id", "model_version", "face_index"]
    )
    op.add_column("jobs", sa.Column("worker", sa.String(length=128), nullable=True))
    op.add_column("jobs", sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "finished_at")
    op.drop_column("jobs", "worker")
    op.drop_constraint("uq_face_embeddings_asset_face", "face_embeddings", type_="unique")
    op.drop_index(op.f("ix_service_nonces_seen_at"), table_name="service_nonces")
    op.drop_table("service_nonces")
    op.drop_table("face_consents")
    op.drop_index("ix_dead_letters_source_run", table_name="dead_letters")
    op.drop_index(op.f("ix_dead_letters_item_id"), table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_index(op.f("ix_backfill_runs_model_version"), table_name="backfill_runs")
    op.drop_table("backfill_runs")
