"""Faces and people: matching faces against enrolled, opted-in users; enrolment (opt-in) and opt-out."""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from recall_ray.errors import Conflict, Forbidden, ValidationFailed
from recall_ray.repositories import assets as asset_repo
from recall_ray.repositories import audit
from recall_ray.repositories import faces as face_repo
from recall_ray.repositories.vector_index import register_model_version
from recall_ray.schemas.common import Caller
from recall_ray.schemas.features import (
    EnrolledFace,
    EnrollRequest,
    EnrollResponse,
    FaceMatch,
    MatchRequest,
    MatchResponse,
    OptOutResponse,
    UserMatch,
)
from recall_ray.services.context import Context
from recall_ray.services.images import asset_image


async def match(ctx: Context, caller: Caller, req: MatchRequest) -> MatchResponse:
    user = caller.user()
    if not caller.trusted and set(req.candidate_user_ids) != {user}:
        raise Forbidden(
            "only a trusted service may name other users as candidates", code="AUTH_SERVICE_REQUIRED"
        )
    threshold = ctx.settings.face_match_threshold if req.threshold is None else req.threshold
    version = (await ctx.models.versions())["faces"]

    def run(session: Session) -> list[UserMatch | FaceMatch]:
        if req.asset_id is not None:
            asset = asset_repo.get_owned(session, req.asset_id, [user])
            faces = face_repo.faces_of_asset(session, asset.id, version)
            if not faces and not asset.face_opt_in:
                raise Conflict(
                    "the photo's owner has not opted in to face recognition", code="AI_FACES_NOT_OPTED_IN"
                )
            if not faces and asset.state != "ready":
                raise Conflict(f"asset {asset.id} is still being processed", code="AI_ASSET_NOT_READY")
        else:
            faces = face_repo.faces_owned(session, req.face_ids or [], user)
        out: list[UserMatch | FaceMatch] = []
        for face in faces:
            best = face_repo.best_matches(
                session, face.model_version, np.asarray(face.embedding), req.candidate_user_ids
            )
            if best and best[0][1] >= threshold:
                out.append(UserMatch(user_id=best[0][0], score=round(best[0][1], 4)))
            else:
                out.append(FaceMatch(face_embedding_id=face.id, score=round(best[0][1], 4) if best else 0.0))
        return out

    return MatchResponse(model_version=version, threshold=threshold, matches=await ctx.tx(run))


async def enroll(ctx: Context, caller: Caller, req: EnrollRequest) -> EnrollResponse:
    """The caller's own face photos: the largest face in each becomes an enrolled face; this is opt-in."""
    user = caller.user()
    assets = await ctx.tx(lambda s: asset_repo.get_many_owned(s, req.asset_ids, [user]))
    analysed = []
    for asset in assets:
        decoded = await asset_image(ctx, asset)
        analysed.append((asset, await ctx.models.analyze_faces(np.asarray(decoded.image))))

    def write(session: Session) -> EnrollResponse:
        enrolled, skipped = [], []
        version = analysed[0][1]["model_version"]
        register_model_version(session, version, "face", int(analysed[0][1]["dim"]))
        for asset, result in analysed:
            if not result["faces"]:
                skipped.append({"assetId": asset.id, "reason": "no face found"})
                continue
            ids = face_repo.replace_asset_faces(
                session, asset_id=asset.id, owner=user, model_version=version, faces=result["faces"]
            )
            face_repo.enroll(session, ids[0], user)  # faces come largest first
            enrolled.append(
                EnrolledFace(
                    asset_id=asset.id, face_embedding_id=ids[0], detection_score=result["faces"][0]["score"]
                )
            )
        if not enrolled:
            raise ValidationFailed("no face was found in the given photos", code="AI_NO_FACE_FOUND")
        face_repo.set_consent(session, user, True)
        audit.record(
            session,
            actor=caller.actor,
            action="face.opt_in",
            target=f"user:{user}",
            request_id=caller.request_id,
            details={"enrolled": len(enrolled), "modelVersion": version},
        )
        return EnrollResponse(model_version=version, enrolled=enrolled, skipped=skipped)

    return await ctx.tx(write)


async def opt_out(ctx: Context, caller: Caller) -> OptOutResponse:
    user = caller.user()

    def write(session: Session) -> OptOutResponse:
        deleted = face_repo.delete_user_faces(session, user)
        face_repo.set_consent(session, user, False)
        audit.record(
            session,
            actor=caller.actor,
            action="face.opt_out",
            target=f"user:{user}",
            request_id=caller.request_id,
            details={"deletedFaces": deleted},
        )
        return OptOutResponse(deleted_faces=deleted)

    return await ctx.tx(write)
