"""Deleting AI data: one asset's (its owner's request) or everything of a user's (a trusted service's)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from recall_ray.repositories import assets as asset_repo
from recall_ray.repositories import audit
from recall_ray.repositories import faces as face_repo
from recall_ray.repositories import jobs as job_repo
from recall_ray.repositories import observations as obs_repo
from recall_ray.repositories import requests as request_repo
from recall_ray.schemas.common import Caller, DeletedCounts, DeleteResponse
from recall_ray.services.context import Context


async def delete_asset(ctx: Context, caller: Caller, asset_id: str) -> DeleteResponse:
    user = caller.user()

    def run(session: Session) -> DeleteResponse:
        asset_repo.get_owned(session, asset_id, [user], for_update=True)
        counts = asset_repo.delete_assets(session, [asset_id])
        audit.record(
            session,
            actor=caller.actor,
            action="asset.delete",
            target=asset_id,
            request_id=caller.request_id,
            details=counts,
        )
        return DeleteResponse(deleted=DeletedCounts.model_validate(counts))

    return await ctx.tx(run)


async def delete_user_data(ctx: Context, caller: Caller, user_id: str) -> DeleteResponse:
    """All of a user's AI data: their assets (with embeddings, faces and observations), faces of them in
    other people's photos, observations they requested, their jobs and consent. The audit log keeps the
    record of the deletion itself."""
    caller.require_trusted("delete a user's data")

    def run(session: Session) -> DeleteResponse:
        counts = asset_repo.delete_assets(session, asset_repo.owned_ids(session, user_id))
        counts["faceEmbeddings"] += face_repo.delete_user_faces(session, user_id)
        counts["observations"] += obs_repo.delete_initiated_by(session, user_id)
        counts["jobs"] = job_repo.delete_owned_by(session, user_id)
        face_repo.forget_consent(session, user_id)
        request_repo.delete_for_user(session, user_id)
        audit.record(
            session,
            actor=caller.actor,
            action="user.delete_data",
            target=f"user:{user_id}",
            request_id=caller.request_id,
            details=counts,
        )
        return DeleteResponse(deleted=DeletedCounts.model_validate(counts))

    return await ctx.tx(run)
