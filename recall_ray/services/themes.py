"""``POST /ai/themes/suggest``: theme candidates for a get-together from the photos in scope, and the
proposal text. Nearest neighbours come from pgvector, the neighbourhood is clustered, each cluster is labelled
zero-shot against a curated, versioned vocabulary (CLIP text embeddings), and the LLM writes the proposal
under a JSON schema, with a deterministic template when its output is unusable."""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from sqlalchemy.orm import Session

from recall_ray.orm import ModelVersion
from recall_ray.repositories import assets as asset_repo
from recall_ray.repositories.embeddings import get_image_vectors, knn
from recall_ray.schemas.common import Caller
from recall_ray.schemas.features import Proposal, ThemeCandidate, ThemesRequest, ThemesResponse
from recall_ray.services.context import Context

log = logging.getLogger("recall.themes")
VOCABULARY = Path(__file__).resolve().parent.parent / "data" / "themes-2025-09.json"
CLIP_LOGIT_SCALE = 100.0  # CLIP's trained temperature: softmax over label similarities
CLUSTER_DISTANCE = 0.35  # cosine distance below which photos belong to one scene
WINDOW_SEED_LIMIT = 500
PROPOSAL_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 80},
        "body": {"type": "string", "minLength": 1, "maxLength": 400},
    },
    "required": ["title", "body"],
    "additionalProperties": False,
}


class Theme(BaseModel):
    id: str
    ja: str
    en: str
    prompts: list[str]


class Vocabulary(BaseModel):
    version: str
    themes: list[Theme]


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    return Vocabulary.model_validate(json.loads(VOCABULARY.read_text()))


_label_vectors: dict[tuple[str, str], np.ndarray] = {}


async def label_matrix(ctx: Context, version: str) -> np.ndarray:
    """One unit vector per theme (its prompts' mean), cached per vocabulary and model version."""
    vocab = vocabulary()
    key = (vocab.version, version)
    if key not in _label_vectors:
        prompts = [p for t in vocab.themes for p in t.prompts]
        vectors = np.stack([r["vector"] for r in await ctx.models.embed_texts(prompts, version)])
        rows, i = [], 0
        for theme in vocab.themes:
            mean = vectors[i : i + len(theme.prompts)].mean(axis=0)
            rows.append(mean / max(np.linalg.norm(mean), 1e-12))
            i += len(theme.prompts)
        _label_vectors[key] = np.stack(rows)
    return _label_vectors[key]


def cluster(vectors: np.ndarray) -> list[np.ndarray]:
    """Index groups of photos of one kind of scene (average-linkage on cosine distance), largest first."""
    if len(vectors) < 2:
        return [np.arange(len(vectors))]
    from sklearn.cluster import AgglomerativeClustering

    labels = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=CLUSTER_DISTANCE
    ).fit_predict(vectors)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    return sorted(groups, key=lambda g: (-len(g), int(g[0])))


async def suggest(ctx: Context, caller: Caller, req: ThemesRequest) -> ThemesResponse:
    user = caller.user()
    if req.member_ids:
        caller.require_trusted("pass group member ids")
    owners = list(dict.fromkeys([user, *req.member_ids]))
    version = ctx.rollout.version_for(user) or (await ctx.models.versions())["clip"][0]
    vocab = vocabulary()

    def neighbourhood(session: Session) -> dict[str, np.ndarray]:
        if req.asset_ids is not None:
            seed_ids = [a.id for a in asset_repo.get_many_owned(session, req.asset_ids, owners)]
        else:
            assert req.window is not None
            seed_ids = asset_repo.in_window(
                session, owners, req.window.start, req.window.end, WINDOW_SEED_LIMIT
            )
        if session.get(ModelVersion, version) is None:
            return {}
        seeds = get_image_vectors(session, seed_ids, version)
        if not seeds:
            return {}
        centroid = np.mean(list(seeds.values()), axis=0)
        near = knn(session, kind="image", model_version=version, query=centroid, k=req.k, owners=owners)
        return {**seeds, **get_image_vectors(session, [n.id for n in near if n.id not in seeds], version)}

    photos = await ctx.tx(neighbourhood)
    if not photos:
        return ThemesResponse(model_version=version, vocabulary_version=vocab.version, candidates=[])
    ids = list(photos)
    vectors = np.stack([photos[i] for i in ids])
    labels = await label_matrix(ctx, version)
    by_theme: dict[str, ThemeCandidate] = {}
    for group in cluster(vectors):
        centroid = vectors[group].mean(axis=0)
        centroid /= max(np.linalg.norm(centroid), 1e-12)
        logits = CLIP_LOGIT_SCALE * (labels @ centroid)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        best = int(np.argmax(probs))
        theme = vocab.themes[best]
        score = float(probs[best]) * (len(group) / len(ids)) ** 0.5
        support = [ids[i] for i in group]
        if theme.id in by_theme:
            prev = by_theme[theme.id]
            support = prev.supporting_asset_ids + support
            score = max(score, prev.score)
        by_theme[theme.id] = ThemeCandidate(
            theme_id=theme.id,
            label=theme.ja if req.locale == "ja" else theme.en,
            score=round(score, 4),
            supporting_asset_ids=support,
        )
    candidates = sorted(by_theme.values(), key=lambda c: -c.score)[: req.max_themes]
    proposal = await write_proposal(ctx, [c.label for c in candidates], req.locale)
    return ThemesResponse(
        model_version=version, vocabulary_version=vocab.version, candidates=candidates, proposal=proposal
    )


async def write_proposal(ctx: Context, labels: list[str], locale: str) -> Proposal:
    language = "Japanese" if locale == "ja" else "English"
    request: dict[str, Any] = {
        "messages": [
            {
                "role": "system",
                "content": "You write short, friendly invitations to a get-together of friends. "
                f"Answer in {language}, as JSON with a title and a body.",
            },
            {
                "role": "user",
                "content": "Themes found in our shared photos: "
                + ", ".join(labels)
                + ". Write a title of at most "
                "40 characters and a body of at most 200 characters proposing the next get-together.",
            },
        ],
        "json_schema": PROPOSAL_SCHEMA,
        "max_tokens": 160,
        "temperature": 0.0,
    }
    try:
        out = await ctx.models.generate(request)
    except Exception as exc:  # the LLM being away must not fail the suggestion
        log.warning("proposal generation failed (%s); using the template", type(exc).__name__)
        out = {"schema_valid": False, "model_version": None}
    if out.get("schema_valid") and out.get("json_value"):
        value = out["json_value"]
        return Proposal(
            title=value["title"], body=value["body"], generator="llm", model_version=out["model_version"]
        )
    return template_proposal(labels, locale)


def template_proposal(labels: list[str], locale: str) -> Proposal:
    """The deterministic fallback: the same themes always give the same text."""
    main, others = labels[0], labels[1:3]
    if locale == "ja":
        extra = "、".join(others)
        body = f"みんなの写真から「{main}」の思い出が見つかりました。次の集まりは{main}にしませんか？"
        if extra:
            body += f"（{extra}もいいかも）"
        return Proposal(title=f"{main}しませんか？", body=body, generator="template")
    body = f"Our photos are full of {main.lower()} memories. Shall we plan the next get-together around it?"
    if others:
        body += " Or maybe " + " or ".join(o.lower() for o in others) + "."
    return Proposal(title=f"How about {main.lower()}?", body=body, generator="template")
