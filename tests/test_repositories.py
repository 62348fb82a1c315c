"""Embedding repository on real PostgreSQL + pgvector: UPSERT idempotency, kNN correctness, owner scoping."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sqlalchemy import func, select

from recall_ray.errors import BadRequest
from recall_ray.orm import Asset, ImageEmbedding
from recall_ray.repositories.embeddings import knn, upsert_image_embedding, upsert_image_embeddings
from recall_ray.repositories.vector_index import register_model_version

V16 = "test_clip@v16"
V8 = "test_clip@v8"


def unit(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def db(clean_db):
    with clean_db.session() as s:
        register_model_version(s, V16, "image", 16)
        register_model_version(s, V8, "image", 8)
    return clean_db


def add_assets(db, owners, vectors, version=V16):
    ids = []
    with db.session() as s:
        for i, owner in enumerate(owners):
            a = Asset(owner_user_id=owner, storage_key=f"{owner}/{i}-{version}.jpg")
            s.add(a)
            s.flush()
            ids.append(a.id)
        upsert_image_embeddings(s, [(a, o, version, v) for a, o, v in zip(ids, owners, vectors, strict=True)])
    return ids


def test_upsert_is_idempotent(db):
    rng = np.random.default_rng(0)
    (asset_id,) = add_assets(db, ["u1"], unit(rng, 1, 16))
    new = unit(rng, 1, 16)[0]
    for _ in range(2):
        with db.session() as s:
            upsert_image_embedding(s, asset_id, "u1", V16, new)
    with db.session() as s:
        rows = s.scalars(select(ImageEmbedding).where(ImageEmbedding.asset_id == asset_id)).all()
        assert len(rows) == 1
        np.testing.assert_allclose(np.asarray(rows[0].embedding), new, atol=1e-6)


def test_versions_with_different_dimensions_live_side_by_side(db):
    rng = np.random.default_rng(1)
    (asset_id,) = add_assets(db, ["u1"], unit(rng, 1, 16))
    with db.session() as s:
        upsert_image_embedding(s, asset_id, "u1", V8, unit(rng, 1, 8)[0])
        assert s.scalar(select(func.count()).select_from(ImageEmbedding)) == 2
        with pytest.raises(BadRequest):
            upsert_image_embedding(s, asset_id, "u1", V8, unit(rng, 1, 16)[0])


def test_knn_matches_numpy_exact_search(db):
    rng = np.random.default_rng(2)
    vecs = unit(rng, 300, 16)
    owners = [f"u{i % 3}" for i in range(300)]
    ids = add_assets(db, owners, vecs)
    q = unit(rng, 1, 16)[0]
    exact_order = np.argsort(1 - vecs @ q)[:20]
    with db.session() as s:
        got = knn(s, kind="image", model_version=V16, query=q, k=20, exact=True)
        assert [n.id for n in got] == [ids[i] for i in exact_order]
        np.testing.assert_allclose([n.distance for n in got], (1 - vecs @ q)[exact_order], atol=1e-5)
        approx = knn(s, kind="image", model_version=V16, query=q, k=20, exact=False)
    recall = len({n.id for n in approx} & {ids[i] for i in exact_order}) / 20
    print(f"HNSW recall@20 on 300 random 16-d vectors: {recall:.2f}")
    assert recall >= 0.9


def test_knn_owner_scope_and_cutoff(db):
    rng = np.random.default_rng(3)
    vecs = unit(rng, 200, 16)
    owners = [f"u{i % 4}" for i in range(200)]
    ids = add_assets(db, owners, vecs)
    owner_of = dict(zip(ids, owners, strict=True))
    with db.session() as s:
        for exact in (True, False):
            got = knn(
                s, kind="image", model_version=V16, query=vecs[0], k=30, owners=["u1", "u2"], exact=exact
            )
            assert got and all(owner_of[n.id] in ("u1", "u2") for n in got)
        # The query is u0's own first vector: a tight cutoff keeps only that one.
        got = knn(s, kind="image", model_version=V16, query=vecs[0], k=10, owners=["u0"], max_distance=1e-4)
        assert [n.id for n in got] == [ids[0]]
        assert knn(s, kind="image", model_version=V16, query=vecs[0], k=10, owners=[]) == []
        with pytest.raises(BadRequest):
            knn(s, kind="image", model_version=V16, query=vecs[0], k=0)


def test_owner_scope_holds_under_concurrency(db):
    rng = np.random.default_rng(4)
    vecs = unit(rng, 400, 16)
    owners = [f"u{i % 8}" for i in range(400)]
    ids = add_assets(db, owners, vecs)
    owner_of = dict(zip(ids, owners, strict=True))

    def search(i):
        owner = f"u{i % 8}"
        with db.session() as s:
            got = knn(
                s, kind="image", model_version=V16, query=vecs[i], k=20, owners=[owner], exact=i % 2 == 0
            )
        return owner, [owner_of[n.id] for n in got]

    with ThreadPoolExecutor(8) as pool:
        for owner, seen in pool.map(search, range(64)):
            assert seen and set(seen) == {owner}


def test_hnsw_index_serves_the_knn_expression(db):
    from sqlalchemy import text

    rng = np.random.default_rng(5)
    add_assets(db, ["u1"] * 50, unit(rng, 50, 16))
    with db.session() as s:
        s.execute(text("SET LOCAL enable_seqscan = off"))
        q = "[" + ",".join(["0.25"] * 16) + "]"
        plan = "\n".join(
            r[0]
            for r in s.execute(
                text(
                    "EXPLAIN SELECT asset_id FROM image_embeddings WHERE model_version = :mv "
                    "ORDER BY embedding::vector(16) <=> CAST(:q AS vector(16)) LIMIT 5"
                ),
                {"mv": V16, "q": q},
            )
        )
    assert "hnsw_image_" in plan, plan


def test_exact_search_stays_exact_after_hnsw_plans_are_cached(db):
    """psycopg prepares a statement after a few runs and PostgreSQL caches its plan: an exact search must not
    pick up the cached HNSW plan of an earlier filtered search (the bench caught this at 100,000 rows)."""
    rng = np.random.default_rng(9)
    small = unit(rng, 60, 16)
    add_assets(db, ["big"] * 240, unit(rng, 240, 16))
    ids = add_assets(db, ["small"] * 60, small)
    q = unit(rng, 1, 16)[0]
    for _ in range(8):
        with db.session() as s:
            knn(s, kind="image", model_version=V16, query=q, k=20, owners=["big"], exact=False, ef_search=1)
    expected = [ids[i] for i in np.argsort(-(small @ q))[:20]]
    for _ in range(3):
        with db.session() as s:
            got = knn(s, kind="image", model_version=V16, query=q, k=20, owners=["small"], exact=True)
        assert [n.id for n in got] == expected
