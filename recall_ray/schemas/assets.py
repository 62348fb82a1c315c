"""Assets, their ingest jobs, and upload URLs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from recall_ray.schemas.common import ApiModel


class RegisterAssetRequest(ApiModel):
    storage_key: str = Field(min_length=1, max_length=1024, examples=["users/u_123/2025/09/IMG_0001.jpg"])
    face_opt_in: bool = Field(default=False, description="the owner consents to face recognition")
    taken_at: dt.datetime | None = Field(default=None, description="capture time (ISO 8601 with offset)")
    content_type: str | None = Field(default=None, max_length=64, examples=["image/jpeg"])


class RegisterAssetResponse(ApiModel):
    asset_id: str
    job_id: str
    state: str
    created: bool


class JobView(ApiModel):
    job_id: str
    kind: str
    state: str
    attempts: int
    max_attempts: int
    last_error: str | None = None
    next_run_at: dt.datetime | None = None
    result: dict[str, Any] | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None = None


class EmbeddingView(ApiModel):
    model_version: str
    updated_at: dt.datetime


class AssetView(ApiModel):
    asset_id: str
    owner_user_id: str
    storage_key: str
    state: str
    face_opt_in: bool
    content_type: str | None = None
    byte_size: int | None = None
    width: int | None = None
    height: int | None = None
    taken_at: dt.datetime | None = None
    embeddings: list[EmbeddingView]
    face_count: int
    job: JobView | None = None


class UploadUrlRequest(ApiModel):
    content_type: str = Field(pattern=r"^image/(jpeg|png|webp|heic|heif)$")


class UploadUrlResponse(ApiModel):
    storage_key: str
    upload_url: str
    method: str = "PUT"
    expires_in: int
