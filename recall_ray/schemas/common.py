"""Shared pieces of the API models and the caller identity that travels from the front into services."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from recall_ray.errors import BadRequest, Forbidden

_ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
UserId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:@-]{1,128}$")]
AssetId = Annotated[str, StringConstraints(pattern=rf"^{_ULID}$")]
FaceId = Annotated[str, StringConstraints(pattern=rf"^face_{_ULID}$")]
ObservationId = Annotated[str, StringConstraints(pattern=rf"^obs_{_ULID}$")]
JobId = Annotated[str, StringConstraints(pattern=rf"^job_{_ULID}$")]


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(to_camel),
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=True,
    )

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ErrorDetail(ApiModel):
    code: str = Field(examples=["AI_ASSET_NOT_FOUND"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(ApiModel):
    error: ErrorDetail


class Caller(BaseModel):
    """Who is calling: a user (their own token) or a trusted service, acting for ``user_id`` when set."""

    user_id: str | None = None
    service: str | None = None
    request_id: str | None = None

    @property
    def actor(self) -> str:
        parts = [f"service:{self.service}"] if self.service else []
        if self.user_id:
            parts.append(f"user:{self.user_id}")
        return "/".join(parts) or "anonymous"

    @property
    def trusted(self) -> bool:
        return self.service is not None

    def user(self) -> str:
        if self.user_id is None:
            raise BadRequest(
                "this route acts for a user: a service caller must name one in X-Recall-User-Id",
                code="AUTH_USER_REQUIRED",
            )
        return self.user_id

    def require_trusted(self, what: str) -> None:
        if not self.trusted:
            raise Forbidden(f"only a trusted service may {what}", code="AUTH_SERVICE_REQUIRED")


class DeletedCounts(ApiModel):
    assets: int = 0
    image_embeddings: int = 0
    face_embeddings: int = 0
    observations: int = 0
    jobs: int = 0


class DeleteResponse(ApiModel):
    deleted: DeletedCounts
