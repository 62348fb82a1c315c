"""The operations the front can ask the ingress for: name -> service call, with its request model.

Each operation validates its payload with the same pydantic model the front validated it with (every boundary
checks), runs the service for the caller and answers ``{"status", "body", "kick_jobs"}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from recall_ray.errors import NotFound
from recall_ray.schemas.assets import RegisterAssetRequest, UploadUrlRequest
from recall_ray.schemas.common import Caller
from recall_ray.schemas.features import (
    EnrollRequest,
    MatchRequest,
    ScheduleRequest,
    SearchRequest,
    TextEmbeddingRequest,
    ThemesRequest,
)
from recall_ray.services import assets, deletion, people, schedule, search, themes
from recall_ray.services.context import Context

Handler = Callable[[Context, Caller, Any], Awaitable[BaseModel | dict[str, Any]]]


@dataclass(frozen=True)
class Operation:
    handler: Handler
    request: type[BaseModel] | None = None  # None: the payload holds path parameters only
    status: int = 200
    kick_jobs: bool = False  # the operation may queue jobs


async def _ping() -> dict[str, Any]:
    return {"ok": True}


OPERATIONS: dict[str, Operation] = {
    "ping": Operation(lambda c, who, p: _ping()),  # the whole path, models aside
    "embeddings.text": Operation(search.embed_text, TextEmbeddingRequest),
    "assets.register": Operation(assets.register, RegisterAssetRequest, status=202, kick_jobs=True),
    "assets.get": Operation(lambda c, who, p: assets.get_asset(c, who, p["asset_id"])),
    "assets.delete": Operation(lambda c, who, p: deletion.delete_asset(c, who, p["asset_id"])),
    "uploads.create": Operation(assets.upload_url, UploadUrlRequest, status=201),
    "jobs.get": Operation(lambda c, who, p: assets.get_job(c, who, p["job_id"])),
    "search": Operation(search.search, SearchRequest),
    "themes.suggest": Operation(themes.suggest, ThemesRequest),
    "people.match": Operation(people.match, MatchRequest),
    "people.enroll": Operation(people.enroll, EnrollRequest, status=201),
    "people.opt_out": Operation(lambda c, who, p: people.opt_out(c, who)),
    "schedule.from_image": Operation(schedule.from_image, ScheduleRequest, kick_jobs=True),
    "observations.get": Operation(lambda c, who, p: schedule.get(c, who, p["observation_id"])),
    "observations.delete": Operation(lambda c, who, p: schedule.delete(c, who, p["observation_id"])),
    "users.delete_data": Operation(lambda c, who, p: deletion.delete_user_data(c, who, p["user_id"])),
}


async def run(ctx: Context, name: str, caller: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    op = OPERATIONS.get(name)
    if op is None:
        raise NotFound(f"unknown operation {name!r}", code="AI_OPERATION_UNKNOWN")
    who = Caller.model_validate(caller)
    arg = op.request.model_validate(payload) if op.request is not None else payload
    result = await op.handler(ctx, who, arg)
    body = result.dump() if hasattr(result, "dump") else result
    status = op.status
    if isinstance(body, dict) and "statusUrl" in body:
        status = 202  # accepted as a job
    return {"status": status, "body": body, "kick_jobs": op.kick_jobs}
