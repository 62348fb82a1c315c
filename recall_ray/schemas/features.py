"""Search, themes, people and schedule: the request and response models of the AI routes."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator

from recall_ray.schemas.common import ApiModel, AssetId, FaceId, UserId


def _exactly_one(model: ApiModel, *fields: str) -> None:
    given = [f for f in fields if getattr(model, f) not in (None, [])]
    if len(given) != 1:
        from pydantic_core import PydanticCustomError

        names = " or ".join(type(model).model_fields[f].alias or f for f in fields)
        raise PydanticCustomError("exactly_one", f"give exactly one of {names}")


# --- search ------------------------------------------------------------------------------------------------


class SearchRequest(ApiModel):
    text: str | None = Field(default=None, min_length=1, max_length=300, examples=["beach barbecue"])
    asset_id: AssetId | None = None
    k: int = Field(default=20, ge=1, le=100)
    min_score: float | None = Field(default=None, ge=-1, le=1, description="cosine similarity cutoff")

    @model_validator(mode="after")
    def _one_query(self) -> SearchRequest:
        _exactly_one(self, "text", "asset_id")
        return self


class SearchHit(ApiModel):
    asset_id: str
    score: float


class SearchResponse(ApiModel):
    model_version: str
    min_score: float
    results: list[SearchHit]


class TextEmbeddingRequest(ApiModel):
    text: str = Field(min_length=1, max_length=300, examples=["beach barbecue"])


class TextEmbeddingResponse(ApiModel):
    """The CLIP text vector (L2-normalised) of the version serving the caller."""

    model_version: str
    dim: int
    vector: list[float]


class PingResponse(ApiModel):
    ok: bool


# --- themes ------------------------------------------------------------------------------------------------


class TimeWindow(ApiModel):
    start: dt.datetime
    end: dt.datetime

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a UTC offset")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ThemesRequest(ApiModel):
    asset_ids: list[AssetId] | None = Field(default=None, min_length=1, max_length=200)
    window: TimeWindow | None = None
    member_ids: list[UserId] = Field(default_factory=list, max_length=50, description="trusted callers only")
    locale: Literal["ja", "en"] = "ja"
    k: int = Field(default=20, ge=1, le=200)
    max_themes: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _one_scope(self) -> ThemesRequest:
        _exactly_one(self, "asset_ids", "window")
        return self


class ThemeCandidate(ApiModel):
    theme_id: str
    label: str
    score: float
    supporting_asset_ids: list[str]


class Proposal(ApiModel):
    title: str
    body: str
    generator: Literal["llm", "template"]
    model_version: str | None = None


class ThemesResponse(ApiModel):
    model_version: str
    vocabulary_version: str
    candidates: list[ThemeCandidate]
    proposal: Proposal | None = None


# --- people ------------------------------------------------------------------------------------------------


class UserMatch(ApiModel):
    user_id: str
    score: float


class FaceMatch(ApiModel):
    face_embedding_id: str
    score: float


class MatchRequest(ApiModel):
    asset_id: AssetId | None = None
    face_ids: list[FaceId] | None = Field(default=None, min_length=1, max_length=50)
    candidate_user_ids: list[UserId] = Field(min_length=1, max_length=100)
    threshold: float | None = Field(default=None, ge=-1, le=1)

    @model_validator(mode="after")
    def _one_source(self) -> MatchRequest:
        _exactly_one(self, "asset_id", "face_ids")
        return self


class MatchResponse(ApiModel):
    model_version: str
    threshold: float
    matches: list[UserMatch | FaceMatch]


class EnrollRequest(ApiModel):
    asset_ids: list[AssetId] = Field(min_length=1, max_length=10)


class EnrolledFace(ApiModel):
    asset_id: str
    face_embedding_id: str
    detection_score: float


class EnrollResponse(ApiModel):
    model_version: str
    enrolled: list[EnrolledFace]
    skipped: list[dict[str, str]]


class OptOutResponse(ApiModel):
    deleted_faces: int
    face_opt_in: bool = False


# --- schedule ----------------------------------------------------------------------------------------------


class ScheduleRequest(ApiModel):
    asset_id: AssetId | None = None
    image_url: str | None = Field(default=None, max_length=4096, description="a signed https URL")
    asset_ids: list[AssetId] | None = Field(default=None, min_length=1, max_length=20)
    timezone: str | None = Field(default=None, examples=["Asia/Tokyo"])
    reference_time: dt.datetime | None = Field(default=None, description="'now' for relative dates")
    candidate_user_ids: list[UserId] = Field(default_factory=list, max_length=100)
    mode: Literal["auto", "sync", "async"] = "auto"

    @model_validator(mode="after")
    def _one_image(self) -> ScheduleRequest:
        _exactly_one(self, "asset_id", "image_url", "asset_ids")
        return self

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception:
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class ScheduleCandidate(ApiModel):
    title: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    all_day: bool = False
    location: str | None = None
    confidence: float


class ScheduleResponse(ApiModel):
    observation_id: str
    asset_id: str | None = None
    schedule_candidates: list[ScheduleCandidate]
    member_candidates: list[UserMatch | FaceMatch]
    notes: list[str]
    model_versions: dict[str, str | None]
    reused: bool = False


class AcceptedJob(ApiModel):
    job_id: str
    state: str
    status_url: str
