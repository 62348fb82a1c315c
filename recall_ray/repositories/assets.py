"""Assets: registration, owner-scoped reads and deletion. Every read takes the owners it may see."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from recall_ray.errors import NotFound
from recall_ray.orm import Asset, FaceEmbedding, ImageEmbedding, Job, VlmObservation


def register(
    session: Session,
    *,
    owner: str,
    storage_key: str,
    face_opt_in: bool,
    taken_at: dt.datetime | None,
    content_type: str | None,
) -> tuple[Asset, bool]:
    """The asset for (owner, storage key), created if new; returns (asset, created).

    Registering the same key again is idempotent; a changed face opt-in or taken_at is recorded.
    """
    stmt = (
        insert(Asset)
        .values(
            owner_user_id=owner,
            storage_key=storage_key,
            face_opt_in=face_opt_in,
            taken_at=taken_at,
            content_type=content_type,
        )
        .on_conflict_do_nothing(constraint="uq_assets_owner_key")
        .returning(Asset.id)
    )
    new_id = session.execute(stmt).scalar_one_or_none()
    asset = session.scalars(
        select(Asset).where(Asset.owner_user_id == owner, Asset.storage_key == storage_key)
    ).one()
    if new_id is None:
        asset.face_opt_in = face_opt_in
        if taken_at is not None:
            asset.taken_at = taken_at
    return asset, new_id is not None


def get_owned(session: Session, asset_id: str, owners: Sequence[str], *, for_update: bool = False) -> Asset:
    """The asset if one of ``owners`` owns it; otherwise NotFound (whether or not it exists)."""
    stmt = select(Asset).where(Asset.id == asset_id, Asset.owner_user_id.in_(list(owners)))
    if for_update:
        stmt = stmt.with_for_update()
    asset = session.scalars(stmt).one_or_none()
    if asset is None:
        raise NotFound(f"asset {asset_id} not found", code="AI_ASSET_NOT_FOUND")
    return asset


def get_many_owned(session: Session, asset_ids: Sequence[str], owners: Sequence[str]) -> list[Asset]:
    """All of ``asset_ids``, each owned by one of ``owners``; NotFound names the first one missing."""
    found = {
        a.id: a
        for a in session.scalars(
            select(Asset).where(Asset.id.in_(list(asset_ids)), Asset.owner_user_id.in_(list(owners)))
        )
    }
    for asset_id in asset_ids:
        if asset_id not in found:
            raise NotFound(f"asset {asset_id} not found", code="AI_ASSET_NOT_FOUND")
    return [found[a] for a in asset_ids]


def in_window(
    session: Session, owners: Sequence[str], start: dt.datetime, end: dt.datetime, limit: int
) -> list[str]:
    """Ids of the owners' assets taken (or, lacking a capture time, registered) within [start, end)."""
    when = func.coalesce(Asset.taken_at, Asset.created_at)
    rows = session.scalars(
        select(Asset.id)
        .where(Asset.owner_user_id.in_(list(owners)), when >= start, when < end, Asset.state != "deleted")
        .order_by(when.desc())
        .limit(limit)
    )
    return list(rows)


def update_decoded(
    session: Session, asset_id: str, *, width: int, height: int, byte_size: int, content_type: str
) -> None:
    asset = session.get(Asset, asset_id)
    if asset is not None:
        asset.width, asset.height = width, height
        asset.byte_size, asset.content_type = byte_size, content_type


def set_state(session: Session, asset_id: str, state: str) -> None:
    asset = session.get(Asset, asset_id)
    if asset is not None:
        asset.state = state


def counts_for_assets(session: Session, asset_ids: Sequence[str]) -> dict[str, int]:
    ids = list(asset_ids)

    def count(model, column) -> int:  # noqa: ANN001
        return int(session.scalar(select(func.count()).select_from(model).where(column.in_(ids))) or 0)

    return {
        "assets": len(ids),
        "imageEmbeddings": count(ImageEmbedding, ImageEmbedding.asset_id),
        "faceEmbeddings": count(FaceEmbedding, FaceEmbedding.asset_id),
        "observations": count(VlmObservation, VlmObservation.asset_id),
    }


def delete_assets(session: Session, asset_ids: Sequence[str]) -> dict[str, int]:
    """Delete assets with their embeddings, faces and observations (FK cascades); pending jobs are dropped."""
    ids = list(asset_ids)
    if not ids:
        return {"assets": 0, "imageEmbeddings": 0, "faceEmbeddings": 0, "observations": 0}
    counts = counts_for_assets(session, ids)
    session.execute(
        delete(Job).where(
            Job.payload["asset_id"].astext.in_(ids), Job.state.in_(("queued", "failed", "running"))
        )
    )
    session.execute(delete(Asset).where(Asset.id.in_(ids)))
    return counts


def owned_ids(session: Session, owner: str) -> list[str]:
    return list(session.scalars(select(Asset.id).where(Asset.owner_user_id == owner)))
