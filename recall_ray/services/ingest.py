"""Ingest: register an asset and its job; the job embeds the photo with CLIP (every loaded version) and,
when its owner opted in, detects and embeds faces; results are UPSERTed."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from recall_ray.errors import Forbidden
from recall_ray.orm import Asset, Job
from recall_ray.repositories import assets as asset_repo
from recall_ray.repositories import faces as face_repo
from recall_ray.repositories import jobs as job_repo
from recall_ray.repositories.embeddings import upsert_image_embedding
from recall_ray.repositories.vector_index import register_model_version
from recall_ray.schemas.assets import RegisterAssetRequest, RegisterAssetResponse
from recall_ray.schemas.common import Caller
from recall_ray.services.context import Context
from recall_ray.services.images import asset_image
from recall_ray.storage import user_key_prefix, validate_key

KIND = "ingest"


def register(
    session: Session, caller: Caller, req: RegisterAssetRequest, max_attempts: int
) -> RegisterAssetResponse:
    owner = caller.user()
    validate_key(req.storage_key)
    if not caller.trusted and not req.storage_key.startswith(user_key_prefix(owner)):
        # Users register their own uploads only; a trusted service may register any key for a user.
        raise Forbidden(
            "a user may register only keys under their own upload prefix (from POST /ai/uploads)",
            code="AUTH_STORAGE_KEY_SCOPE",
        )
    asset, created = asset_repo.register(
        session,
        owner=owner,
        storage_key=req.storage_key,
        face_opt_in=req.face_opt_in,
        taken_at=req.taken_at,
        content_type=req.content_type,
    )
    job, job_created = job_repo.create(
        session,
        kind=KIND,
        owner=owner,
        payload={"asset_id": asset.id},
        idempotency_key=asset.id,
        max_attempts=max_attempts,
    )
    if not created and not job_created and job.state in ("succeeded", "dead"):
        # Registering the same photo again (new bytes under the key, changed consent) ingests it again.
        job_repo.requeue(session, job)
        asset.state = "registered"
    return RegisterAssetResponse(asset_id=asset.id, job_id=job.id, state=job.state, created=created)


async def run(ctx: Context, job: Job) -> dict[str, Any]:
    asset_id = job.payload["asset_id"]

    def load(session: Session) -> tuple[Asset | None, bool]:
        asset = session.get(Asset, asset_id)
        if asset is None:
            return None, False
        asset.state = "processing"
        return asset, asset.face_opt_in and not face_repo.consent_revoked(session, asset.owner_user_id)

    asset, with_faces = await ctx.tx(load)
    if asset is None:
        return {"skipped": "the asset was deleted"}
    decoded = await asset_image(ctx, asset)
    out = await ctx.models.ingest(np.asarray(decoded.image), with_faces)

    def write(session: Session) -> dict[str, Any]:
        if session.get(Asset, asset_id, with_for_update=True) is None:
            return {"skipped": "the asset was deleted"}
        for emb in out["clip"]:
            register_model_version(session, emb["model_version"], "image", int(emb["dim"]))
            upsert_image_embedding(
                session, asset_id, asset.owner_user_id, emb["model_version"], emb["vector"]
            )
        face_ids: list[str] = []
        if out["faces"] is not None:
            version = out["faces"]["model_version"]
            register_model_version(session, version, "face", int(out["faces"]["dim"]))
            face_ids = face_repo.replace_asset_faces(
                session,
                asset_id=asset_id,
                owner=asset.owner_user_id,
                model_version=version,
                faces=out["faces"]["faces"],
            )
        asset_repo.update_decoded(
            session,
            asset_id,
            width=decoded.width,
            height=decoded.height,
            byte_size=decoded.byte_size,
            content_type=decoded.content_type,
        )
        asset_repo.set_state(session, asset_id, "ready")
        return {
            "assetId": asset_id,
            "imageModelVersions": [e["model_version"] for e in out["clip"]],
            "faces": len(face_ids),
        }

    return await ctx.tx(write)


def on_dead(session: Session, job: Job) -> None:
    asset_repo.set_state(session, job.payload["asset_id"], "failed")
