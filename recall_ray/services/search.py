"""``POST /ai/search``: text to photos and photo to similar photos, within the caller's own photos."""

from __future__ import annotations

from sqlalchemy.orm import Session

from recall_ray.errors import Conflict
from recall_ray.orm import ModelVersion
from recall_ray.repositories import assets as asset_repo
from recall_ray.repositories.embeddings import get_image_vector, knn
from recall_ray.schemas.common import Caller
from recall_ray.schemas.features import (
    SearchHit,
    SearchRequest,
    SearchResponse,
    TextEmbeddingRequest,
    TextEmbeddingResponse,
)
from recall_ray.services.context import Context


async def search(ctx: Context, caller: Caller, req: SearchRequest) -> SearchResponse:
    user = caller.user()
    version = ctx.rollout.version_for(user)
    min_score = ctx.settings.search_min_score if req.min_score is None else req.min_score
    if req.text is not None:
        query = await ctx.models.embed_text(req.text, version)
        version, vector, exclude = query["model_version"], query["vector"], []
    else:
        version = version or (await ctx.models.versions())["clip"][0]

        def stored(session: Session):  # noqa: ANN202
            asset_repo.get_owned(session, req.asset_id, [user])
            vec = get_image_vector(session, req.asset_id, version)
            if vec is None:
                raise Conflict(
                    f"asset {req.asset_id} has no {version} embedding yet", code="AI_ASSET_NOT_READY"
                )
            return vec

        vector, exclude = await ctx.tx(stored), [req.asset_id]

    def run(session: Session) -> list[SearchHit]:
        if session.get(ModelVersion, version) is None:
            return []  # nothing was embedded with this version yet
        hits = knn(
            session,
            kind="image",
            model_version=version,
            query=vector,
            k=req.k,
            owners=[user],
            max_distance=1.0 - min_score,
            exclude_ids=exclude,
        )
        return [SearchHit(asset_id=h.id, score=round(1.0 - h.distance, 5)) for h in hits]

    return SearchResponse(model_version=version, min_score=min_score, results=await ctx.tx(run))


async def embed_text(ctx: Context, caller: Caller, req: TextEmbeddingRequest) -> TextEmbeddingResponse:
    """The query vector search would use for this caller (the serving version, or the canary)."""
    out = await ctx.models.embed_text(req.text, ctx.rollout.version_for(caller.user()))
    return TextEmbeddingResponse(
        model_version=out["model_version"], dim=int(out["dim"]), vector=[float(x) for x in out["vector"]]
    )
