"""Per-model-version HNSW indexes over an undimensioned ``vector`` column.

Model versions may differ in dimension, so ``image_embeddings.embedding`` and ``face_embeddings.embedding``
are plain ``vector``. Each registered version gets a partial expression index

    CREATE INDEX hnsw_<table>_<hash> ON <table>
        USING hnsw ((embedding::vector(<dim>)) vector_cosine_ops) WHERE model_version = '<name>'

and every kNN query repeats that exact expression and predicate, so the planner can use it.
"""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from recall_ray.errors import BadRequest, NotFound
from recall_ray.orm import MODEL_KINDS, ModelVersion

TABLE_FOR_KIND = {"image": "image_embeddings", "face": "face_embeddings"}
_VERSION_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}@[A-Za-z0-9_.-]{1,63}$")


def validate_version_name(name: str) -> str:
    if not _VERSION_RE.match(name):
        raise BadRequest(
            f"model version {name!r} must look like 'name@version' (e.g. openclip_vitb32@2025-08)",
            code="AI_MODEL_VERSION_INVALID",
        )
    return name


def index_name(kind: str, version: str) -> str:
    digest = hashlib.sha256(version.encode()).hexdigest()[:16]
    return f"hnsw_{kind}_{digest}"


def register_model_version(session: Session, name: str, kind: str, dim: int) -> ModelVersion:
    """Record a model version and build its HNSW index; a second call with the same values is a no-op."""
    validate_version_name(name)
    if kind not in MODEL_KINDS:
        raise BadRequest(f"unknown model kind {kind!r}", code="AI_MODEL_KIND_INVALID")
    if not 1 <= dim <= 2000:  # pgvector's HNSW limit for vector
        raise BadRequest(f"vector dimension {dim} is outside 1..2000", code="AI_MODEL_DIM_INVALID")
    existing = session.get(ModelVersion, name)
    created = False
    if existing is None:
        # Replicas and tasks may register the same version at once: the insert is a no-op for all but one.
        created = (
            session.execute(
                insert(ModelVersion)
                .values(name=name, kind=kind, dim=dim, index_name=index_name(kind, name))
                .on_conflict_do_nothing(index_elements=[ModelVersion.name])
                .returning(ModelVersion.name)
            ).scalar_one_or_none()
            is not None
        )
        existing = session.get(ModelVersion, name, populate_existing=True)
        assert existing is not None
    if existing.kind != kind or existing.dim != dim:
        raise BadRequest(
            f"model version {name} is registered as {existing.kind}/{existing.dim}-d, not {kind}/{dim}-d",
            code="AI_MODEL_VERSION_CONFLICT",
        )
    if not created:
        return existing
    session.execute(text(create_index_sql(existing)))
    return existing


def create_index_sql(mv: ModelVersion) -> str:
    """The version's partial HNSW index. Name, dimension and version are validated at registration; DDL
    cannot take bind parameters."""
    return (
        f"CREATE INDEX IF NOT EXISTS {mv.index_name} ON {TABLE_FOR_KIND[mv.kind]} USING hnsw "
        f"((embedding::vector({mv.dim})) vector_cosine_ops) WHERE model_version = '{mv.name}'"
    )


def get_model_version(session: Session, name: str, kind: str | None = None) -> ModelVersion:
    mv = session.get(ModelVersion, name)
    if mv is None or (kind is not None and mv.kind != kind):
        raise NotFound(f"model version {name} is not registered", code="AI_MODEL_VERSION_UNKNOWN")
    return mv


def list_model_versions(session: Session) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.kind, ModelVersion.name)))
