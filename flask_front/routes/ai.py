"""The ``/ai/*`` routes. Each is a declaration and one line: forward to the Serve application, which runs the
service for the caller with every read scoped to them."""

from __future__ import annotations

from flask import Blueprint

from flask_front.api import api_route, forward
from flask_front.openapi import RouteSpec
from recall_ray.schemas.assets import (
    AssetView,
    JobView,
    RegisterAssetRequest,
    RegisterAssetResponse,
    UploadUrlRequest,
    UploadUrlResponse,
)
from recall_ray.schemas.common import DeleteResponse
from recall_ray.schemas.features import (
    AcceptedJob,
    EnrollRequest,
    EnrollResponse,
    MatchRequest,
    MatchResponse,
    OptOutResponse,
    PingResponse,
    ScheduleRequest,
    ScheduleResponse,
    SearchRequest,
    SearchResponse,
    TextEmbeddingRequest,
    TextEmbeddingResponse,
    ThemesRequest,
    ThemesResponse,
)

bp = Blueprint("ai", __name__)

ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
USER = r"[A-Za-z0-9_.:@-]{1,128}"
SERVICE_ONLY = ("hmacAuth",)


@api_route(
    bp,
    RouteSpec(
        "POST",
        "/ai/uploads",
        "createUpload",
        "A presigned PUT URL for a new photo",
        "assets",
        UploadUrlRequest,
        UploadUrlResponse,
        status=201,
    ),
)
def create_upload(who, body):  # noqa: ANN001, ANN201
    return forward("uploads.create", who, body)


@api_route(
    bp,
    RouteSpec(
        "POST",
        "/ai/assets",
        "registerAsset",
        "Register a photo and queue its ingest job",
        "assets",
        RegisterAssetRequest,
        RegisterAssetResponse,
        status=202,
        errors=(403,),
        idempotent=True,
    ),
)
def register_asset(who, body):  # noqa: ANN001, ANN201
    return forward("assets.register", who, body)


@api_route(
    bp,
    RouteSpec(
        "GET",
        "/ai/assets/<asset_id>",
        "getAsset",
        "An asset's state, embeddings and job",
        "assets",
        response=AssetView,
        errors=(404,),
        path_params={"asset_id": ULID},
    ),
)
def get_asset(who, _body, asset_id):  # noqa: ANN001, ANN201
    return forward("assets.get", who, asset_id=asset_id)


@api_route(
    bp,
    RouteSpec(
        "DELETE",
        "/ai/assets/<asset_id>",
        "deleteAsset",
        "Delete an asset's AI data: embeddings, faces and observations",
        "deletion",
        response=DeleteResponse,
        errors=(404,),
        path_params={"asset_id": ULID},
    ),
    audit_action="asset.delete",
)
def delete_asset(who, _body, asset_id):  # noqa: ANN001, ANN201
    return forward("assets.delete", who, asset_id=asset_id)


@api_route(
    bp,
    RouteSpec(
        "GET",
        "/ai/jobs/<job_id>",
        "getJob",
        "A job's state, attempts and last error",
        "jobs",
        response=JobView,
        errors=(404,),
        path_params={"job_id": f"job_{ULID}"},
    ),
)
def get_job(who, _body, job_id):  # noqa: ANN001, ANN201
    return forward("jobs.get", who, job_id=job_id)


@api_route(
    bp,
    RouteSpec(
        "POST",
        "/ai/search",
        "search",
        "Text to photos, or photo to similar photos",
        "search",
        SearchRequest,
        SearchResponse,
        errors=(404, 409),
    ),
)
def search(who, body):  # noqa: ANN001, ANN201
    return forward("search", who, body)


@api_route(
    bp,
    RouteSpec(
        "POST",
        "/ai/embeddings/text",
        "embedText",
        "The CLIP text vector of the version serving the caller",
        "search",
        TextEmbeddingRequest,
        TextEmbeddingResponse,
    ),
)
def embed_text(who, body):  # noqa: ANN001, ANN201
    return forward("embeddings.text", who, body)


@api_route(
    bp,
    RouteSpec(
        "GET",
        "/ai/ping",
        "ping",
        "The whole path works for this caller: authentication, limits and the AI service",
        "health",
        response=PingResponse,
    ),
)
def ping(who, _body):  # noqa: ANN001, ANN201
    return forward("ping", who)


@api_route(
    bp,
    RouteSpec(
        "POST",
        "/ai/themes/suggest",
        "suggestThemes",
        "Theme candidates for a get-together and the proposal text",
        "themes",
        ThemesRequest,
        ThemesResponse,
        errors=(403, 404),
    ),
)
def suggest_themes(who, body):  # noqa: ANN001, ANN201
    return forward("themes.suggest", who, body)


@api_route(
    bp,
    RouteSpec(
        "POST",
        "/ai/people/match",
        "matchPeople",
        "Faces matched against the enrolled faces of candidate users",
        "people",
        MatchRequest,
        MatchResponse,
        errors=(403, 404, 409),
    ),
)
def match_people(who, body):  # noqa: ANN001, ANN201
    return forward("people.match", who, body)


@api_route(
    bp,
    RouteSpec(
        "POST",
        "/ai/people/enroll",
        "enrollFaces",
        "Enroll the caller's own face (opt-in)",
        "people",
        EnrollRequest,
        EnrollResponse,
        status=201,
        errors=(404,),
        idempotent=True,
    ),
    audit_action="face.opt_in",
)
def enroll_faces(who, body):  # noqa: ANN001, ANN201
    return forward("people.enroll", who, body)


@api_route(
    bp,
    RouteSpec(
        "DELETE",
        "/ai/people/me/faces",
        "optOutFaces",
        "Opt out: delete all of the caller's face vectors and enrolments",
        "people",
        response=OptOutResponse,
    ),
    audit_action="face.opt_out",
)
def opt_out(who, _body):  # noqa: ANN001, ANN201
    return forward("people.opt_out", who)


@api_route(
    bp,
    RouteSpec(
        "POST",
        "/ai/schedule/from_image",
        "scheduleFromImage",
        "Schedule candidates, member candidates and notes from a photo (VLM + OCR)",
        "schedule",
        ScheduleRequest,
        ScheduleResponse,
        errors=(403, 404, 415),
        idempotent=True,
        extra_responses={202: AcceptedJob},
    ),
)
def schedule_from_image(who, body):  # noqa: ANN001, ANN201
    return forward("schedule.from_image", who, body)


@api_route(
    bp,
    RouteSpec(
        "GET",
        "/ai/observations/<observation_id>",
        "getObservation",
        "A stored observation",
        "schedule",
        response=ScheduleResponse,
        errors=(404,),
        path_params={"observation_id": f"obs_{ULID}"},
    ),
)
def get_observation(who, _body, observation_id):  # noqa: ANN001, ANN201
    return forward("observations.get", who, observation_id=observation_id)


@api_route(
    bp,
    RouteSpec(
        "DELETE",
        "/ai/observations/<observation_id>",
        "deleteObservation",
        "Delete an observation on request",
        "deletion",
        errors=(404,),
        path_params={"observation_id": f"obs_{ULID}"},
    ),
    audit_action="observation.delete",
)
def delete_observation(who, _body, observation_id):  # noqa: ANN001, ANN201
    return forward("observations.delete", who, observation_id=observation_id)


@api_route(
    bp,
    RouteSpec(
        "DELETE",
        "/ai/users/<user_id>/data",
        "deleteUserData",
        "Delete all of a user's AI data (trusted services only)",
        "deletion",
        response=DeleteResponse,
        errors=(403,),
        auth=SERVICE_ONLY,
        path_params={"user_id": USER},
    ),
    audit_action="user.delete_data",
)
def delete_user_data(who, _body, user_id):  # noqa: ANN001, ANN201
    return forward("users.delete_data", who, user_id=user_id)
