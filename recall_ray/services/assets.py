"""Assets and jobs as the API shows them, and upload URLs for new photos."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recall_ray.ids import new_ulid
from recall_ray.orm import FaceEmbedding, ImageEmbedding, Job
from recall_ray.repositories import assets as asset_repo
from recall_ray.repositories import jobs as job_repo
from recall_ray.schemas.assets import (
    AssetView,
    EmbeddingView,
    JobView,
    RegisterAssetRequest,
    RegisterAssetResponse,
    UploadUrlRequest,
    UploadUrlResponse,
)
from recall_ray.schemas.common import Caller
from recall_ray.services import ingest
from recall_ray.services.context import Context
from recall_ray.storage import user_key_prefix

_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/heic": "heic",
    "image/heif": "heic",
}


async def register(ctx: Context, caller: Caller, req: RegisterAssetRequest) -> RegisterAssetResponse:
    return await ctx.tx(ingest.register, caller, req, ctx.settings.job_max_attempts)


def job_view(job: Job) -> JobView:
    return JobView(
        job_id=job.id,
        kind=job.kind,
        state=job.state,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        last_error=job.last_error,
        next_run_at=job.next_run_at if job.state in ("queued", "failed") else None,
        result=job.result,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
    )


async def get_asset(ctx: Context, caller: Caller, asset_id: str) -> AssetView:
    user = caller.user()

    def read(session: Session) -> AssetView:
        asset = asset_repo.get_owned(session, asset_id, [user])
        embeddings = session.execute(
            select(ImageEmbedding.model_version, ImageEmbedding.updated_at).where(
                ImageEmbedding.asset_id == asset.id
            )
        ).all()
        faces = session.scalar(
            select(func.count()).select_from(FaceEmbedding).where(FaceEmbedding.asset_id == asset.id)
        )
        job = job_repo.latest_for_asset(session, asset.id)
        return AssetView(
            asset_id=asset.id,
            owner_user_id=asset.owner_user_id,
            storage_key=asset.storage_key,
            state=asset.state,
            face_opt_in=asset.face_opt_in,
            content_type=asset.content_type,
            byte_size=asset.byte_size,
            width=asset.width,
            height=asset.height,
            taken_at=asset.taken_at,
            embeddings=[EmbeddingView(model_version=v, updated_at=u) for v, u in embeddings],
            face_count=int(faces or 0),
            job=job_view(job) if job else None,
        )

    return await ctx.tx(read)


async def get_job(ctx: Context, caller: Caller, job_id: str) -> JobView:
    return await ctx.tx(lambda s: job_view(job_repo.get_owned(s, job_id, caller.user())))


async def upload_url(ctx: Context, caller: Caller, req: UploadUrlRequest) -> UploadUrlResponse:
    """A key under the caller's own prefix and a short-lived presigned PUT for it."""
    user = caller.user()
    key = f"{user_key_prefix(user)}{new_ulid()}.{_EXTENSIONS[req.content_type]}"
    expiry = ctx.settings.s3_presign_expiry_s
    url = await asyncio.to_thread(ctx.storage.presign_put, key, req.content_type, expiry)
    return UploadUrlResponse(storage_key=key, upload_url=url, expires_in=expiry)
