"""``POST /ai/schedule/from_image``: a photo of a whiteboard, poster or group becomes schedule candidates,
member candidates and notes, stored as a VLM observation (idempotent by ``observation_hash``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from recall_ray.errors import Forbidden
from recall_ray.orm import Asset, Job, VlmObservation
from recall_ray.repositories import assets as asset_repo
from recall_ray.repositories import audit
from recall_ray.repositories import faces as face_repo
from recall_ray.repositories import jobs as job_repo
from recall_ray.repositories import observations as obs_repo
from recall_ray.repositories.vector_index import register_model_version
from recall_ray.schemas.common import Caller
from recall_ray.schemas.features import (
    AcceptedJob,
    FaceMatch,
    ScheduleCandidate,
    ScheduleRequest,
    ScheduleResponse,
    UserMatch,
)
from recall_ray.services.context import Context
from recall_ray.services.images import asset_image, url_image
from recall_ray.services.schedule_text import Line, extract, normalise

KIND = "schedule"
PROMPT_VERSION = (
    "schedule-v1"  # bump when the reading or parsing rules change: stored results are keyed by it
)


def _check_candidates(caller: Caller, candidates: list[str]) -> None:
    if candidates and not caller.trusted and set(candidates) != {caller.user()}:
        raise Forbidden(
            "only a trusted service may name other users as candidates", code="AUTH_SERVICE_REQUIRED"
        )


async def from_image(ctx: Context, caller: Caller, req: ScheduleRequest) -> ScheduleResponse | AcceptedJob:
    user = caller.user()
    _check_candidates(caller, req.candidate_user_ids)
    asset = None
    if req.asset_id is not None:
        asset = await ctx.tx(lambda s: asset_repo.get_owned(s, req.asset_id, [user]))
    run_async = req.mode == "async" or req.asset_ids is not None
    if req.mode == "auto" and asset is not None:
        size = asset.byte_size or (await _object_size(ctx, asset))
        run_async = size > ctx.settings.schedule_async_bytes
    if run_async:
        if req.asset_ids is not None:
            await ctx.tx(lambda s: asset_repo.get_many_owned(s, req.asset_ids, [user]))

        def enqueue(session: Session) -> Job:
            job, _ = job_repo.create(
                session,
                kind=KIND,
                owner=user,
                payload={"request": req.dump(), "caller": caller.model_dump()},
                max_attempts=ctx.settings.job_max_attempts,
            )
            return job

        job = await ctx.tx(enqueue)
        return AcceptedJob(job_id=job.id, state=job.state, status_url=f"/ai/jobs/{job.id}")
    return await extract_one(ctx, caller, req, asset=asset, url=req.image_url)


async def _object_size(ctx: Context, asset: Asset) -> int:
    import asyncio

    return (await asyncio.to_thread(ctx.storage.head, asset.storage_key)).size


async def extract_one(
    ctx: Context, caller: Caller, req: ScheduleRequest, *, asset: Asset | None, url: str | None
) -> ScheduleResponse:
    user = caller.user()
    tz = req.timezone or ctx.settings.default_timezone
    reference = req.reference_time or dt.datetime.now(dt.UTC)
    decoded = await (asset_image(ctx, asset) if asset is not None else url_image(ctx, url or ""))
    versions = await ctx.models.versions()
    used = {"vlm": versions["vlm"], "ocr": versions["ocr"], "faces": versions["faces"]}
    # The initiator and time zone are part of the key: two users' identical photos never share a result.
    key = {"image": decoded.sha256, "models": used, "prompt": PROMPT_VERSION, "tz": tz, "initiator": user}
    observation_hash = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    existing = await ctx.tx(lambda s: _stored(s, observation_hash))
    if existing is not None:
        return existing

    t0 = time.monotonic()
    # Faces are read when there is someone to match them with, or the photo's owner opted in to keep them.
    with_faces = bool(req.candidate_user_ids) or bool(asset is not None and asset.face_opt_in)
    out = await ctx.models.read_schedule(np.asarray(decoded.image), with_faces)
    lines = _usable_lines(out["reading"]["lines"], trust_vlm=not versions.get("vlm_random", False))
    candidates, notes = extract(lines, reference, tz)
    faces = (out.get("faces") or {}).get("faces", [])

    def persist(session: Session) -> ScheduleResponse:
        face_ids = _store_faces(session, asset, out.get("faces"))
        members = _members(session, versions["faces"], faces, face_ids, req.candidate_user_ids, ctx)
        response = ScheduleResponse(
            observation_id="pending",
            asset_id=asset.id if asset else None,
            schedule_candidates=[
                ScheduleCandidate(
                    title=c.title,
                    start=c.start,
                    end=c.end,
                    all_day=c.all_day,
                    location=c.location,
                    confidence=c.confidence,
                )
                for c in candidates
            ],
            member_candidates=members,
            notes=notes,
            model_versions=used,
        )
        latency_ms = int((time.monotonic() - t0) * 1000)
        parsed = response.dump()
        parsed.pop("observationId")
        obs, _ = obs_repo.upsert(
            session,
            observation_hash=observation_hash,
            asset_id=asset.id if asset else None,
            model_version=";".join(f"{k}={v}" for k, v in used.items()),
            prompt_version=PROMPT_VERSION,
            raw_output={
                "lines": out["reading"]["lines"],
                "caption": out["reading"].get("caption"),
                "faces": [{"bbox": f["bbox"], "score": f["score"]} for f in faces],
                "timezone": tz,
                "referenceTime": reference.isoformat(),
            },
            parsed_result=parsed,
            initiator=user,
            latency_ms=latency_ms,
            entities=_entities(response),
        )
        audit.record(
            session,
            actor=caller.actor,
            action="observation.create",
            target=obs.id,
            request_id=caller.request_id,
            details={"modelVersion": obs.model_version, "assetId": obs.asset_id, "latencyMs": latency_ms},
        )
        return response.model_copy(update={"observation_id": obs.id})

    return await ctx.tx(persist)


def _stored(session: Session, observation_hash: str) -> ScheduleResponse | None:
    obs = obs_repo.by_hash(session, observation_hash)
    if obs is None:
        return None
    return ScheduleResponse.model_validate({**obs.parsed_result, "observationId": obs.id, "reused": True})


def _usable_lines(raw: list[dict[str, Any]], *, trust_vlm: bool) -> list[Line]:
    """Tesseract's lines, plus the VLM's where it read something Tesseract did not.

    A VLM with random test weights (the offline profile) emits noise; its lines are stored, not parsed.
    """
    lines, seen = [], set()
    for engine in ("tesseract", "florence2"):
        if engine == "florence2" and not trust_vlm:
            continue
        for item in raw:
            key = normalise(item["text"]).replace(" ", "")
            if item["engine"] == engine and key and key not in seen:
                seen.add(key)
                lines.append(Line(item["text"], item["box"], item.get("confidence")))
    lines.sort(key=lambda line: (line.box[1], line.box[0]))
    return lines


def _store_faces(session: Session, asset: Asset | None, faces: dict[str, Any] | None) -> list[str]:
    """Face ids for an asset whose owner opted in (stored, so they can be matched later); else none."""
    if asset is None or faces is None or not asset.face_opt_in:
        return []
    if face_repo.consent_revoked(session, asset.owner_user_id):
        return []
    register_model_version(session, faces["model_version"], "face", int(faces["dim"]))
    return face_repo.replace_asset_faces(
        session,
        asset_id=asset.id,
        owner=asset.owner_user_id,
        model_version=faces["model_version"],
        faces=faces["faces"],
    )


def _members(
    session: Session,
    face_version: str,
    faces: list[dict[str, Any]],
    face_ids: list[str],
    candidates: list[str],
    ctx: Context,
) -> list[UserMatch | FaceMatch]:
    threshold = ctx.settings.face_match_threshold
    best: dict[str, float] = {}
    unmatched: list[FaceMatch] = []
    for i, face in enumerate(faces):
        matches = (
            face_repo.best_matches(session, face_version, face["vector"], candidates) if candidates else []
        )
        if matches and matches[0][1] >= threshold:
            user, score = matches[0]
            best[user] = max(best.get(user, -1.0), round(score, 4))
        elif i < len(face_ids):
            unmatched.append(
                FaceMatch(face_embedding_id=face_ids[i], score=round(matches[0][1], 4) if matches else 0.0)
            )
    ranked: list[UserMatch | FaceMatch] = [
        UserMatch(user_id=u, score=s) for u, s in sorted(best.items(), key=lambda kv: -kv[1])
    ]
    return ranked + unmatched


def _entities(response: ScheduleResponse) -> list[tuple[str, dict[str, Any], float | None]]:
    out: list[tuple[str, dict[str, Any], float | None]] = []
    for c in response.schedule_candidates:
        out.append(("schedule", c.dump(), c.confidence))
        if c.location:
            out.append(("location", {"location": c.location}, c.confidence))
    out.extend(("note", {"text": n}, None) for n in response.notes)
    out.extend(("member", m.dump(), m.score) for m in response.member_candidates)
    return out


async def run_job(ctx: Context, job: Job) -> dict[str, Any]:
    """The async path: every image of the request, one observation each."""
    req = ScheduleRequest.model_validate(job.payload["request"])
    caller = Caller.model_validate(job.payload["caller"])
    user = caller.user()
    ids = req.asset_ids or ([req.asset_id] if req.asset_id else [])
    results = []
    for asset_id in ids:
        asset = await ctx.tx(lambda s, a=asset_id: asset_repo.get_owned(s, a, [user]))
        results.append(await extract_one(ctx, caller, req, asset=asset, url=None))
    if req.image_url:
        results.append(await extract_one(ctx, caller, req, asset=None, url=req.image_url))
    return {"observations": [r.dump() for r in results]}


async def delete(ctx: Context, caller: Caller, observation_id: str) -> dict[str, Any]:
    user = caller.user()

    def remove(session: Session) -> dict[str, Any]:
        entities = obs_repo.delete_owned(session, observation_id, user)
        audit.record(
            session,
            actor=caller.actor,
            action="observation.delete",
            target=observation_id,
            request_id=caller.request_id,
            details={"entities": entities},
        )
        return {"deleted": {"observations": 1, "entities": entities}}

    return await ctx.tx(remove)


async def get(ctx: Context, caller: Caller, observation_id: str) -> ScheduleResponse:
    def read(session: Session) -> ScheduleResponse:
        obs: VlmObservation = obs_repo.get_owned(session, observation_id, caller.user())
        return ScheduleResponse.model_validate({**obs.parsed_result, "observationId": obs.id, "reused": True})

    return await ctx.tx(read)
