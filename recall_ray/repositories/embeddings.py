"""Image embeddings: idempotent UPSERT and owner-scoped k-nearest-neighbour search."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from recall_ray.errors import BadRequest
from recall_ray.orm import ImageEmbedding
from recall_ray.repositories.vector_index import TABLE_FOR_KIND, get_model_version

# Below this many candidate rows an exact scan is cheaper than HNSW and has perfect recall.
EXACT_SEARCH_MAX_ROWS = 20_000
HNSW_EF_SEARCH_MAX = 1000


@dataclass(frozen=True)
class Neighbour:
    id: str
    distance: float


def as_vector(values: Sequence[float] | np.ndarray, dim: int) -> np.ndarray:
    vec = np.asarray(values, dtype=np.float32).reshape(-1)
    if vec.shape[0] != dim:
        raise BadRequest(f"vector has {vec.shape[0]} dimensions, expected {dim}", code="AI_VECTOR_DIM")
    if not np.all(np.isfinite(vec)):
        raise BadRequest("vector contains NaN or infinity", code="AI_VECTOR_INVALID")
    return vec


def upsert_image_embedding(
    session: Session, asset_id: str, owner_user_id: str, model_version: str, vector: Sequence[float]
) -> None:
    """Insert or replace the one row for (asset, model version)."""
    mv = get_model_version(session, model_version, "image")
    vec = as_vector(vector, mv.dim)
    stmt = insert(ImageEmbedding).values(
        asset_id=asset_id, owner_user_id=owner_user_id, model_version=model_version, embedding=vec
    )
    stmt = stmt.on_conflict_do_update(
        constraint="uq_image_embeddings_asset_version",
        set_={"embedding": stmt.excluded.embedding, "updated_at": func.now()},
    )
    session.execute(stmt)


def upsert_image_embeddings(session: Session, rows: Sequence[tuple[str, str, str, Sequence[float]]]) -> int:
    """Batch form of :func:`upsert_image_embedding`: rows are (asset_id, owner, model_version, vector)."""
    if not rows:
        return 0
    dims = {v: get_model_version(session, v, "image").dim for v in {r[2] for r in rows}}
    values = [
        {"asset_id": a, "owner_user_id": o, "model_version": v, "embedding": as_vector(vec, dims[v])}
        for a, o, v, vec in rows
    ]
    stmt = insert(ImageEmbedding).values(values)
    stmt = stmt.on_conflict_do_update(
        constraint="uq_image_embeddings_asset_version",
        set_={"embedding": stmt.excluded.embedding, "updated_at": func.now()},
    )
    session.execute(stmt)
    return len(values)


def ef_search_for(k: int, selectivity: float = 1.0) -> int:
    """ef_search from k; a filter that keeps a fraction of rows needs a proportionally wider beam.

    13 x k: on 100,000 clustered 512-d vectors (bench/vector_search.py) k=20 needs ef_search 250 for
    recall@20 >= 0.98; 2 x k gave 0.85."""
    base = max(64, 13 * k)
    widened = base / max(selectivity, 1e-3)
    return int(min(HNSW_EF_SEARCH_MAX, math.ceil(widened)))


def knn(
    session: Session,
    *,
    kind: str,
    model_version: str,
    query: Sequence[float] | np.ndarray,
    k: int,
    owners: Sequence[str] | None = None,
    max_distance: float | None = None,
    exclude_ids: Sequence[str] = (),
    exact: bool | None = None,
    ef_search: int | None = None,
) -> list[Neighbour]:
    """Nearest neighbours by cosine distance, restricted to ``owners`` when given.

    Returns ids (asset ids for images, face ids for faces) and cosine distances, nearest first. HNSW is used
    unless the candidate set is small (then an exact scan gives perfect recall at lower cost); ``exact``
    forces either way. ``ef_search`` overrides the beam width chosen from k and the filter (benchmarks).
    """
    if not 1 <= k <= 1000:
        raise BadRequest("k must be between 1 and 1000", code="AI_K_INVALID")
    if owners is not None and len(owners) == 0:
        return []
    mv = get_model_version(session, model_version, kind)
    vec = as_vector(query, mv.dim)
    table = TABLE_FOR_KIND[kind]
    id_col = "asset_id" if kind == "image" else "id"
    dist = f"(embedding::vector({mv.dim}) <=> CAST(:q AS vector({mv.dim})))"
    # The version is inlined (validated at registration) so that a prepared, generic plan still matches the
    # partial index's predicate; a bind parameter would hide it from the planner.
    where = [f"model_version = '{mv.name}'"]
    params: dict[str, object] = {"q": vector_literal(vec), "k": k + len(exclude_ids)}
    if owners is not None:
        where.append("owner_user_id = ANY(:owners)")
        params["owners"] = list(owners)

    if exact is None or owners is not None:
        total = _version_rows(session, table, mv.name, mv.index_name)
        candidates = total if owners is None else _count(session, table, model_version, owners)
        if exact is None:
            exact = candidates <= EXACT_SEARCH_MAX_ROWS
        selectivity = min(1.0, candidates / total) if total else 1.0
    else:
        selectivity = 1.0

    select = f"SELECT {id_col} AS id, {dist} AS distance FROM "
    if exact:
        # A materialised CTE hides the rows' order from the planner, so no index can answer the ORDER BY and
        # the scan is exact. A planner setting (enable_indexscan) would not do: psycopg prepares repeated
        # statements, and a cached plan keeps the index scan whatever the settings are when it runs.
        sql = (
            f"WITH candidates AS MATERIALIZED (SELECT {id_col}, embedding FROM {table} "
            f"WHERE {' AND '.join(where)}) {select}candidates ORDER BY distance LIMIT :k"
        )
    else:
        ef = int(ef_search) if ef_search is not None else ef_search_for(k, selectivity)
        session.execute(text(f"SET LOCAL hnsw.ef_search = {max(1, min(ef, HNSW_EF_SEARCH_MAX))}"))
        sql = f"{select}{table} WHERE {' AND '.join(where)} ORDER BY {dist} LIMIT :k"
    rows = session.execute(text(sql), params).all()
    excluded = set(exclude_ids)
    out = [Neighbour(r.id, float(r.distance)) for r in rows if r.id not in excluded]
    if max_distance is not None:
        out = [n for n in out if n.distance <= max_distance]
    return out[:k]


def _version_rows(session: Session, table: str, model_version: str, index_name: str) -> int:
    """Rows of one version: the statistics of its partial index (kept by autovacuum and ANALYZE), so that a
    query does not count a large table; counted when the index has no statistics yet (-1) or looks small,
    where a count is cheap and an exact answer decides between exact scan and HNSW."""
    estimate = session.execute(
        text("SELECT reltuples FROM pg_class WHERE relname = :name"), {"name": index_name}
    ).scalar_one_or_none()
    if estimate is not None and estimate > 2 * EXACT_SEARCH_MAX_ROWS:
        return int(estimate)
    return _count(session, table, model_version)


def _count(session: Session, table: str, model_version: str, owners: Sequence[str] | None = None) -> int:
    sql = f"SELECT count(*) FROM {table} WHERE model_version = :mv"
    params: dict[str, object] = {"mv": model_version}
    if owners is not None:
        sql += " AND owner_user_id = ANY(:owners)"
        params["owners"] = list(owners)
    return int(session.execute(text(sql), params).scalar_one())


def vector_literal(vec: np.ndarray) -> str:
    return "[" + ",".join(repr(float(x)) for x in vec) + "]"


def get_image_vector(session: Session, asset_id: str, model_version: str) -> np.ndarray | None:
    row = session.scalar(
        select(ImageEmbedding.embedding).where(
            ImageEmbedding.asset_id == asset_id, ImageEmbedding.model_version == model_version
        )
    )
    return None if row is None else np.asarray(row, dtype=np.float32)


def get_image_vectors(
    session: Session, asset_ids: Sequence[str], model_version: str
) -> dict[str, np.ndarray]:
    """Stored vectors of the given assets for one version; assets without one are absent."""
    if not asset_ids:
        return {}
    rows = session.execute(
        select(ImageEmbedding.asset_id, ImageEmbedding.embedding).where(
            ImageEmbedding.asset_id.in_(list(asset_ids)), ImageEmbedding.model_version == model_version
        )
    )
    return {r.asset_id: np.asarray(r.embedding, dtype=np.float32) for r in rows}
