"""Re-embedding runs: which assets still lack a model version's vector, run progress, per-item failures and
coverage per version.

A run pages its work out of PostgreSQL by asset id ranges; every page query asks again which assets still
lack the version, so a resubmitted run skips what an earlier one finished.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from recall_ray.errors import Conflict
from recall_ray.orm import Asset, BackfillRun, DeadLetter, ImageEmbedding, ModelVersion

SOURCE = "backfill"
ERROR_MAX_CHARS = 2000


@dataclass(frozen=True)
class Scope:
    """Which assets a run covers: every ready asset, or one owner's, or those taken (or made) since a date."""

    model_version: str
    owner: str | None = None
    since: dt.datetime | None = None

    def where(self) -> list[Any]:
        lacking = ~exists().where(
            and_(ImageEmbedding.asset_id == Asset.id, ImageEmbedding.model_version == self.model_version)
        )
        clauses = [Asset.state == "ready", lacking]
        if self.owner is not None:
            clauses.append(Asset.owner_user_id == self.owner)
        if self.since is not None:
            clauses.append(func.coalesce(Asset.taken_at, Asset.created_at) >= self.since)
        return clauses


@contextlib.contextmanager
def version_lock(engine: Engine, model_version: str) -> Iterator[bool]:
    """Hold the session-level advisory lock of one version's backfill while the block runs; yields whether
    it was taken. Only one run per version at a time; a driver that dies releases it with its connection."""
    params = {"k": f"recall:backfill:{model_version}"}
    with engine.connect() as conn:
        taken = bool(conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:k))"), params).scalar_one())
        conn.commit()  # the lock is session-level: it outlives this transaction
        try:
            yield taken
        finally:
            if taken:
                conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), params)
                conn.commit()


def start_run(session: Session, scope: Scope, ray_job_id: str | None) -> BackfillRun:
    """Mark earlier runs of this version that are still 'running' as interrupted (the caller holds the
    version's lock, so their drivers are gone) and record a new run with the work left."""
    session.execute(
        update(BackfillRun)
        .where(BackfillRun.model_version == scope.model_version, BackfillRun.state == "running")
        .values(state="interrupted", finished_at=func.now())
    )
    total = session.scalar(select(func.count()).select_from(Asset).where(*scope.where())) or 0
    run = BackfillRun(
        model_version=scope.model_version,
        owner_user_id=scope.owner,
        since=scope.since,
        total=int(total),
        ray_job_id=ray_job_id,
    )
    session.add(run)
    session.flush()
    return run


def page_starts(session: Session, scope: Scope, page_size: int) -> list[str]:
    """The first asset id of every page of at most ``page_size`` pending assets, in id order."""
    numbered = (
        select(Asset.id, func.row_number().over(order_by=Asset.id).label("n"))
        .where(*scope.where())
        .subquery()
    )
    return list(
        session.scalars(
            select(numbered.c.id).where((numbered.c.n - 1) % page_size == 0).order_by(numbered.c.n)
        )
    )


def pending_page(session: Session, scope: Scope, first: str, before: str | None) -> list[dict[str, Any]]:
    """The assets in [first, before) that still lack the version (another run may have done some since)."""
    clauses = [Asset.id >= first, *scope.where()]
    if before is not None:
        clauses.append(Asset.id < before)
    rows = session.execute(
        select(Asset.id, Asset.owner_user_id, Asset.storage_key, Asset.content_type)
        .where(*clauses)
        .order_by(Asset.id)
    )
    return [
        {
            "asset_id": r.id,
            "owner": r.owner_user_id,
            "storage_key": r.storage_key,
            "content_type": r.content_type,
        }
        for r in rows
    ]


def record_batch(
    session: Session,
    run_id: str,
    model_version: str,
    vectors: Sequence[tuple[str, str, Sequence[float]]],
    failures: Sequence[tuple[str, str, str]],
) -> tuple[int, int]:
    """UPSERT a batch's vectors (asset id, owner, vector), write its failures (asset id, code, message) as
    dead letters and add both to the run's progress, in one transaction; returns (written, failed).

    Assets deleted while the run was going are skipped, not resurrected."""
    from recall_ray.repositories.embeddings import as_vector

    dim = session.get_one(ModelVersion, model_version).dim
    written = 0
    if vectors:
        live = set(session.scalars(select(Asset.id).where(Asset.id.in_([v[0] for v in vectors]))))
        values = [
            {
                "asset_id": a,
                "owner_user_id": o,
                "model_version": model_version,
                "embedding": as_vector(v, dim),
            }
            for a, o, v in vectors
            if a in live
        ]
        if values:
            stmt = insert(ImageEmbedding).values(values)
            stmt = stmt.on_conflict_do_update(
                constraint="uq_image_embeddings_asset_version",
                set_={"embedding": stmt.excluded.embedding, "updated_at": func.now()},
            )
            session.execute(stmt)
        written = len(values)
    for asset_id, code, message in failures:
        session.add(
            DeadLetter(
                source=SOURCE,
                run_id=run_id,
                item_id=asset_id,
                model_version=model_version,
                error_code=code[:64],
                error=message[:ERROR_MAX_CHARS],
            )
        )
    session.execute(
        update(BackfillRun)
        .where(BackfillRun.id == run_id)
        .values(
            done=BackfillRun.done + written,
            failed=BackfillRun.failed + len(failures),
            updated_at=func.now(),
        )
    )
    return written, len(failures)


def finish_run(session: Session, run_id: str, state: str) -> BackfillRun:
    run = session.get_one(BackfillRun, run_id)
    run.state, run.finished_at = state, dt.datetime.now(dt.UTC)
    return run


def running_run(session: Session, model_version: str) -> BackfillRun | None:
    return session.scalars(
        select(BackfillRun)
        .where(BackfillRun.model_version == model_version, BackfillRun.state == "running")
        .order_by(BackfillRun.created_at.desc())
        .limit(1)
    ).first()


def refuse_concurrent(session: Session, model_version: str) -> None:
    run = running_run(session, model_version)
    raise Conflict(
        f"a backfill of {model_version} is already running"
        + (f" (run {run.id}, {run.done}/{run.total} done)" if run else ""),
        code="AI_BACKFILL_RUNNING",
    )


def coverage(session: Session) -> list[dict[str, Any]]:
    """Per registered image model version: ready assets with its vector, out of all ready assets."""
    ready = int(session.scalar(select(func.count()).select_from(Asset).where(Asset.state == "ready")) or 0)
    counts = dict(
        session.execute(
            select(ImageEmbedding.model_version, func.count())
            .join(Asset, Asset.id == ImageEmbedding.asset_id)
            .where(Asset.state == "ready")
            .group_by(ImageEmbedding.model_version)
        ).all()
    )
    versions = session.scalars(
        select(ModelVersion).where(ModelVersion.kind == "image").order_by(ModelVersion.name)
    )
    return [
        {
            "version": mv.name,
            "dim": mv.dim,
            "embedded": int(counts.get(mv.name, 0)),
            "ready_assets": ready,
            "coverage": (counts.get(mv.name, 0) / ready) if ready else 1.0,
        }
        for mv in versions
    ]


def recent_runs(session: Session, model_version: str | None = None, limit: int = 20) -> list[BackfillRun]:
    stmt = select(BackfillRun).order_by(BackfillRun.created_at.desc()).limit(limit)
    if model_version:
        stmt = stmt.where(BackfillRun.model_version == model_version)
    return list(session.scalars(stmt))
