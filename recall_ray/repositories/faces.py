"""Face embeddings, enrolments and consent.

A face row belongs to the owner of the photo it was found in. Enrolling marks a face as its person's own
(``subject_user_id``); matching compares faces only with enrolled faces of users who opted in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from recall_ray.errors import NotFound
from recall_ray.orm import Asset, FaceConsent, FaceEmbedding
from recall_ray.repositories.embeddings import as_vector, vector_literal
from recall_ray.repositories.vector_index import get_model_version


def replace_asset_faces(
    session: Session, *, asset_id: str, owner: str, model_version: str, faces: Sequence[dict[str, Any]]
) -> list[str]:
    """The asset's faces for one model version become exactly ``faces`` (UPSERT by face index).

    Enrolment marks on faces that are found again survive a re-run. Returns the face ids in order.
    """
    dim = get_model_version(session, model_version, "face").dim
    ids: list[str] = []
    for i, face in enumerate(faces):
        stmt = insert(FaceEmbedding).values(
            asset_id=asset_id,
            owner_user_id=owner,
            face_index=i,
            bbox=[float(v) for v in face["bbox"]],
            detection_score=float(face["score"]),
            landmarks=face.get("landmarks"),
            model_version=model_version,
            embedding=as_vector(face["vector"], dim),
        )
        stmt = stmt.on_conflict_do_update(
            constraint="uq_face_embeddings_asset_face",
            set_={
                "bbox": stmt.excluded.bbox,
                "detection_score": stmt.excluded.detection_score,
                "landmarks": stmt.excluded.landmarks,
                "embedding": stmt.excluded.embedding,
                "updated_at": func.now(),
            },
        ).returning(FaceEmbedding.id)
        ids.append(session.execute(stmt).scalar_one())
    session.execute(
        delete(FaceEmbedding).where(
            FaceEmbedding.asset_id == asset_id,
            FaceEmbedding.model_version == model_version,
            FaceEmbedding.face_index >= len(faces),
        )
    )
    return ids


def faces_of_asset(session: Session, asset_id: str, model_version: str) -> list[FaceEmbedding]:
    return list(
        session.scalars(
            select(FaceEmbedding)
            .where(FaceEmbedding.asset_id == asset_id, FaceEmbedding.model_version == model_version)
            .order_by(FaceEmbedding.face_index)
        )
    )


def faces_owned(session: Session, face_ids: Sequence[str], owner: str) -> list[FaceEmbedding]:
    """The faces, each found in one of ``owner``'s photos; NotFound names the first one missing."""
    found = {
        f.id: f
        for f in session.scalars(
            select(FaceEmbedding).where(
                FaceEmbedding.id.in_(list(face_ids)), FaceEmbedding.owner_user_id == owner
            )
        )
    }
    for face_id in face_ids:
        if face_id not in found:
            raise NotFound(f"face {face_id} not found", code="AI_FACE_NOT_FOUND")
    return [found[f] for f in face_ids]


def enroll(session: Session, face_id: str, user_id: str) -> None:
    session.execute(update(FaceEmbedding).where(FaceEmbedding.id == face_id).values(subject_user_id=user_id))


def best_matches(
    session: Session, model_version: str, vector: np.ndarray, candidates: Sequence[str]
) -> list[tuple[str, float]]:
    """(user, best cosine similarity) over the enrolled faces of opted-in candidates, best first."""
    if not candidates:
        return []
    dim = get_model_version(session, model_version, "face").dim
    vec = as_vector(vector, dim)
    rows = session.execute(
        text(
            f"SELECT f.subject_user_id AS user_id, "
            f"max(1 - (f.embedding::vector({dim}) <=> CAST(:q AS vector({dim})))) AS score "
            "FROM face_embeddings f JOIN face_consents c ON c.user_id = f.subject_user_id AND c.opted_in "
            "WHERE f.model_version = :mv AND f.subject_user_id = ANY(:cands) "
            "GROUP BY f.subject_user_id ORDER BY score DESC"
        ),
        {"q": vector_literal(vec), "mv": model_version, "cands": list(candidates)},
    ).all()
    return [(r.user_id, float(r.score)) for r in rows]


def set_consent(session: Session, user_id: str, opted_in: bool) -> None:
    stmt = insert(FaceConsent).values(user_id=user_id, opted_in=opted_in)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[FaceConsent.user_id], set_={"opted_in": opted_in, "updated_at": func.now()}
        )
    )


def consent_revoked(session: Session, user_id: str) -> bool:
    """True when the user explicitly opted out of face recognition (and has not opted in since)."""
    return session.scalar(select(FaceConsent.opted_in).where(FaceConsent.user_id == user_id)) is False


def delete_user_faces(session: Session, user_id: str) -> int:
    """Every face vector of the user: found in their photos, and enrolled as them in anyone's photos."""
    result = session.execute(
        delete(FaceEmbedding).where(
            or_(FaceEmbedding.owner_user_id == user_id, FaceEmbedding.subject_user_id == user_id)
        )
    )
    # New uploads of theirs are not analysed for faces until they opt in again.
    session.execute(update(Asset).where(Asset.owner_user_id == user_id).values(face_opt_in=False))
    return int(result.rowcount or 0)


def forget_consent(session: Session, user_id: str) -> None:
    session.execute(delete(FaceConsent).where(FaceConsent.user_id == user_id))
