"""Schedule from image: the parser on its own, the evaluation set through Tesseract, and the route end to end
(sync, cached repeat, async with webhook, deletion, audit)."""

import datetime as dt
import time

import numpy as np
import pytest
from sqlalchemy import select

from recall_ray import evalset
from recall_ray.orm import AuditLog, VlmDetectionEntity, VlmObservation
from recall_ray.services.schedule_text import Line, extract
from tests.flows import ingest, wait_job
from tests.images import astronaut

REF = "2025-09-02T12:00:00+09:00"
# Reached on this set with Tesseract 5 (jpn+eng): see the issue notes; a drop below fails the build.
MIN_FIELD_ACCURACY = {"title": 0.9, "date": 1.0, "start": 1.0, "end": 1.0, "location": 1.0}
MIN_ALL_FIELDS = 0.9


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("9月14日(日) 14:00〜18:00", "2025-09-14T05:00:00+00:00", "2025-09-14T09:00:00+00:00"),
        ("2025/9/14 14時", "2025-09-14T05:00:00+00:00", None),
        ("Sep 14, 2-6pm", "2025-09-14T05:00:00+00:00", "2025-09-14T09:00:00+00:00"),
        ("来週土曜 11:00", "2025-09-13T02:00:00+00:00", None),
        ("next Saturday 10am", "2025-09-13T01:00:00+00:00", None),
        ("10月5日(日) 午後7時半〜午後9時", "2025-10-05T10:30:00+00:00", "2025-10-05T12:00:00+00:00"),
        ("Dec 31 11pm-1am", "2025-12-31T14:00:00+00:00", "2025-12-31T16:00:00+00:00"),
    ],
)
def test_dates_and_times_in_japanese_and_english(text, start, end):
    lines = [Line("Event", [0, 0, 100, 60], 0.9), Line(text, [0, 70, 100, 100], 0.9)]
    (cand,), _ = extract(lines, dt.datetime.fromisoformat(REF), "Asia/Tokyo")
    assert cand.start.isoformat() == start and (cand.end.isoformat() if cand.end else None) == end
    assert cand.title == "Event" and cand.start.tzinfo == dt.UTC


def test_time_zone_and_notes():
    lines = [
        Line("Picnic", [0, 0, 100, 60], 0.9),
        Line("Sep 14 10:00", [0, 70, 100, 100], 0.9),
        Line("RSVP by Sep 10", [0, 110, 100, 140], 0.9),
    ]
    (cand,), notes = extract(lines, dt.datetime.fromisoformat(REF), "America/New_York")
    assert cand.start.isoformat() == "2025-09-14T14:00:00+00:00" and notes == ["RSVP by Sep 10"]


def test_evaluation_set_accuracy_through_tesseract():
    """Field-level accuracy over the project's own rendered posters and whiteboards (Japanese and English;
    noise, rotation, low contrast) read by Tesseract."""
    from deployments.ocr import TesseractReader

    reader = TesseractReader().load()

    def read(img):
        lines = [Line(t.text, t.box, t.confidence) for t in reader.read(np.asarray(img))]
        cands, _ = extract(lines, evalset.REFERENCE, evalset.TIMEZONE)
        c = cands[0] if cands else None
        return c and {
            "title": c.title,
            "start": c.start,
            "end": c.end,
            "all_day": c.all_day,
            "location": c.location,
        }

    result = evalset.evaluate(read)
    print(
        "\nschedule extraction accuracy over",
        result["n"],
        "images:",
        result["accuracy"],
        "all fields:",
        result["all_fields"],
    )
    assert result["n"] >= 20
    for field, minimum in MIN_FIELD_ACCURACY.items():
        assert result["accuracy"][field] >= minimum, (field, result["accuracy"], result["rows"])
    assert result["all_fields"] >= MIN_ALL_FIELDS


def poster(name):
    i, p = next((i, p) for i, p in enumerate(evalset.POSTERS) if p.name == name)
    return evalset.render(p, seed=i)


def vlm_reads(recall_app):
    return recall_app.models_status.remote().result()["vlm"]["reads"]


def test_schedule_from_asset_is_stored_and_a_repeat_is_not_recomputed(alice, clean_db, recall_app):
    asset = ingest(alice, "alice", poster("ja-boardgames"), "poster")
    resp = alice.post("/ai/schedule/from_image", {"assetId": asset, "referenceTime": REF})
    assert resp.status_code == 200, resp.get_json()
    out = resp.get_json()
    assert out["observationId"].startswith("obs_") and not out["reused"]
    (cand,) = out["scheduleCandidates"]
    assert cand["title"] == "週末ボードゲーム会" and cand["location"] == "渋谷カフェ"
    assert (cand["start"], cand["end"]) == ("2025-09-13T05:00:00Z", "2025-09-13T09:00:00Z")
    assert out["notes"] == ["RSVP by Sep 10"] and out["memberCandidates"] == []
    assert out["modelVersions"]["vlm"] == "florence2_tiny@test-1" and out["modelVersions"]["ocr"].startswith(
        "tesseract@"
    )

    reads = vlm_reads(recall_app)
    t0 = time.perf_counter()
    again = alice.post("/ai/schedule/from_image", {"assetId": asset, "referenceTime": REF}).get_json()
    assert again["observationId"] == out["observationId"] and again["reused"]
    assert again["scheduleCandidates"] == out["scheduleCandidates"]
    assert vlm_reads(recall_app) == reads, "the models ran again for a stored observation"
    print(f"\nrepeat answered in {(time.perf_counter() - t0) * 1000:.0f} ms")

    with clean_db.session() as s:
        obs = s.get(VlmObservation, out["observationId"])
        assert obs.initiator_user_id == "alice" and obs.asset_id == asset and obs.latency_ms > 0
        kinds = sorted(
            e.kind
            for e in s.scalars(select(VlmDetectionEntity).where(VlmDetectionEntity.observation_id == obs.id))
        )
        assert kinds == ["location", "note", "schedule"]
        log = s.scalars(select(AuditLog).where(AuditLog.action == "observation.create")).one()
        assert log.target == obs.id and log.details["latencyMs"] == obs.latency_ms
        assert "florence2_tiny@test-1" in log.details["modelVersion"] and log.details["assetId"] == asset


def test_member_candidates_from_faces(alice, functions, clean_db):
    me = ingest(alice, "alice", astronaut(), "me", faceOptIn=True)
    assert alice.post("/ai/people/enroll", {"assetIds": [me]}).status_code == 201
    out = (
        functions("alice")
        .post(
            "/ai/schedule/from_image",
            {"assetId": me, "candidateUserIds": ["alice", "bob"], "referenceTime": REF},
        )
        .get_json()
    )
    assert out["memberCandidates"] and out["memberCandidates"][0]["userId"] == "alice"


def test_async_schedule_for_several_images_with_webhook(alice, clean_db, webhook_receiver):
    ids = [ingest(alice, "alice", poster(n), n) for n in ("en-gamenight", "ja-hanami")]
    resp = alice.post("/ai/schedule/from_image", {"assetIds": ids, "referenceTime": REF})
    assert resp.status_code == 202, resp.get_json()
    accepted = resp.get_json()
    assert accepted["statusUrl"] == f"/ai/jobs/{accepted['jobId']}"
    job = wait_job(alice, accepted["jobId"], timeout_s=180)
    assert job["state"] == "succeeded", job
    titles = [o["scheduleCandidates"][0]["title"] for o in job["result"]["observations"]]
    assert titles == ["Board Game Night", "お花見ピクニック"]
    deadline = time.monotonic() + 30
    while not any(
        e["event"] == "schedule.succeeded" and e["data"]["jobId"] == accepted["jobId"]
        for e in webhook_receiver.events()
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_delete_observation_and_scoping(alice, bob, clean_db):
    asset = ingest(alice, "alice", poster("en-lunch"), "lunch")
    obs = alice.post("/ai/schedule/from_image", {"assetId": asset, "referenceTime": REF}).get_json()[
        "observationId"
    ]
    assert bob.get(f"/ai/observations/{obs}").status_code == 404
    assert bob.delete(f"/ai/observations/{obs}").status_code == 404
    assert alice.get(f"/ai/observations/{obs}").status_code == 200
    deleted = alice.delete(f"/ai/observations/{obs}")
    assert deleted.status_code == 200 and deleted.get_json()["deleted"]["observations"] == 1
    assert alice.get(f"/ai/observations/{obs}").status_code == 404
    with clean_db.session() as s:
        assert s.get(VlmObservation, obs) is None
        assert not s.scalars(select(VlmDetectionEntity).where(VlmDetectionEntity.observation_id == obs)).all()
        actions = [(a.action, a.outcome, a.actor) for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert ("observation.delete", "AI_OBSERVATION_NOT_FOUND", "user:bob") in actions  # the attempt is audited
    assert ("observation.delete", "ok", "user:alice") in actions


def test_refused_urls_and_bad_requests(alice):
    for url, code in [
        ("http://photos.example.com/a.jpg", "AI_URL_SCHEME"),
        ("https://169.254.169.254/latest/meta-data", "AI_URL_ADDRESS_REFUSED"),
        ("https://localhost/a.jpg", "AI_URL_ADDRESS_REFUSED"),
        ("https://evil.example.com/a.jpg", "AI_URL_HOST_NOT_ALLOWED"),
    ]:
        resp = alice.post("/ai/schedule/from_image", {"imageUrl": url})
        assert resp.status_code == 422 and resp.get_json()["error"]["code"] == code, (url, resp.get_json())
    assert (
        alice.post("/ai/schedule/from_image", {"imageUrl": "https://x", "timezone": "Mars/Base"}).status_code
        == 422
    )
    assert alice.post("/ai/schedule/from_image", {}).status_code == 422
