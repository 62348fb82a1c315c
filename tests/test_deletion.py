"""Deleting AI data: one asset (its owner), all of a user's (trusted services only); rows counted before
and after, both audited."""

from sqlalchemy import func, or_, select

from recall_ray.orm import (
    Asset,
    AuditLog,
    FaceConsent,
    FaceEmbedding,
    ImageEmbedding,
    Job,
    VlmObservation,
)
from tests.flows import ingest
from tests.images import astronaut, noise_image
from tests.test_schedule import REF, poster


def count(db, model, *where):
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_delete_asset_removes_its_embeddings_faces_and_observations(alice, bob, clean_db):
    asset = ingest(alice, "alice", astronaut(), "astro", faceOptIn=True)
    keep = ingest(alice, "alice", noise_image(seed=3), "keep")
    assert alice.post("/ai/schedule/from_image", {"assetId": asset, "referenceTime": REF}).status_code == 200
    before = [
        count(clean_db, m, m.asset_id == asset) for m in (ImageEmbedding, FaceEmbedding, VlmObservation)
    ]
    assert before == [1, 1, 1]
    assert bob.delete(f"/ai/assets/{asset}").status_code == 404  # not bob's
    resp = alice.delete(f"/ai/assets/{asset}")
    assert resp.status_code == 200
    assert resp.get_json()["deleted"] == {
        "assets": 1,
        "imageEmbeddings": 1,
        "faceEmbeddings": 1,
        "observations": 1,
        "jobs": 0,
    }
    after = [count(clean_db, m, m.asset_id == asset) for m in (ImageEmbedding, FaceEmbedding, VlmObservation)]
    assert after == [0, 0, 0] and count(clean_db, Asset, Asset.id == asset) == 0
    assert (
        count(clean_db, ImageEmbedding, ImageEmbedding.asset_id == keep) == 1
    )  # the other photo is untouched
    assert alice.get(f"/ai/assets/{asset}").status_code == 404
    assert count(clean_db, AuditLog, AuditLog.action == "asset.delete", AuditLog.outcome == "ok") == 1


def test_delete_all_of_a_users_data(alice, bob, functions, clean_db):
    mine = [
        ingest(alice, "alice", astronaut(), "a", faceOptIn=True),
        ingest(alice, "alice", noise_image(seed=4), "b"),
    ]
    bobs = ingest(bob, "bob", noise_image(seed=5), "c")
    assert alice.post("/ai/people/enroll", {"assetIds": [mine[0]]}).status_code == 201
    asset = ingest(alice, "alice", poster("en-lunch"), "lunch")
    assert alice.post("/ai/schedule/from_image", {"assetId": asset, "referenceTime": REF}).status_code == 200
    mine.append(asset)

    def alices():
        return (
            count(clean_db, Asset, Asset.owner_user_id == "alice"),
            count(clean_db, ImageEmbedding, ImageEmbedding.owner_user_id == "alice"),
            count(
                clean_db,
                FaceEmbedding,
                or_(FaceEmbedding.owner_user_id == "alice", FaceEmbedding.subject_user_id == "alice"),
            ),
            count(clean_db, VlmObservation, VlmObservation.initiator_user_id == "alice"),
            count(clean_db, Job, Job.owner_user_id == "alice"),
            count(clean_db, FaceConsent, FaceConsent.user_id == "alice"),
        )

    assert alices()[:4] == (3, 3, 1, 1) and alices()[4] >= 3
    denied = alice.delete("/ai/users/alice/data")
    assert denied.status_code == 403 and denied.get_json()["error"]["code"] == "AUTH_SERVICE_REQUIRED"
    resp = functions().delete("/ai/users/alice/data")
    assert resp.status_code == 200, resp.get_json()
    deleted = resp.get_json()["deleted"]
    assert deleted["assets"] == 3 and deleted["imageEmbeddings"] == 3 and deleted["faceEmbeddings"] == 1
    assert deleted["observations"] == 1
    assert alices() == (0, 0, 0, 0, 0, 0)
    assert count(clean_db, ImageEmbedding, ImageEmbedding.asset_id == bobs) == 1  # others keep theirs
    with clean_db.session() as s:
        denied_log, log = s.scalars(
            select(AuditLog).where(AuditLog.action == "user.delete_data").order_by(AuditLog.id)
        ).all()
        assert denied_log.actor == "user:alice" and denied_log.outcome == "AUTH_SERVICE_REQUIRED"
        assert log.actor == "service:fn-2025" and log.target == "user:alice" and log.outcome == "ok"
        assert log.details["assets"] == 3
