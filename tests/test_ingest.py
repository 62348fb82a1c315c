"""Ingest end to end: Flask -> Serve ingress -> job row -> Ray task (intake, CLIP, faces) -> PostgreSQL,
with retries, dead letters, signed webhooks, crash recovery and the operators' CLI."""

import datetime as dt
import hashlib
import hmac
import json
import os
import signal
import time

import numpy as np
from PIL import Image
from sqlalchemy import func, select, update

from recall_ray.orm import Asset, DeadLetter, FaceEmbedding, ImageEmbedding, Job
from recall_ray.repositories import jobs as job_repo
from tests.conftest import WEBHOOK_SECRET
from tests.flows import ingest, register, upload, wait_job
from tests.images import astronaut, noise_image


def rows(db, model, **where):
    with db.session() as s:
        stmt = select(func.count()).select_from(model)
        for k, v in where.items():
            stmt = stmt.where(getattr(model, k) == v)
        return s.scalar(stmt)


def test_ingest_embeds_and_detects_faces_when_opted_in(alice, clean_db):
    with_faces = ingest(alice, "alice", astronaut(), "astro", faceOptIn=True)
    without = ingest(alice, "alice", astronaut(), "astro-private")
    view = alice.get(f"/ai/assets/{with_faces}").get_json()
    assert (
        view["state"] == "ready" and view["faceCount"] == 1 and (view["width"], view["height"]) == (512, 512)
    )
    assert [e["modelVersion"] for e in view["embeddings"]] == ["openclip_tiny@test-1"]
    assert view["job"]["state"] == "succeeded" and view["job"]["attempts"] == 1
    assert alice.get(f"/ai/assets/{without}").get_json()["faceCount"] == 0
    assert rows(clean_db, ImageEmbedding) == 2 and rows(clean_db, FaceEmbedding) == 1


def test_registering_the_same_key_twice_is_idempotent(alice, clean_db):
    key = upload("alice", noise_image(90, 60, seed=4), "dup")
    first = alice.post("/ai/assets", {"storageKey": key}).get_json()
    second = alice.post("/ai/assets", {"storageKey": key}).get_json()
    assert first["assetId"] == second["assetId"] and first["created"] and not second["created"]
    wait_job(alice, first["jobId"])
    assert rows(clean_db, Asset) == 1 and rows(clean_db, ImageEmbedding) == 1


def test_users_register_only_their_own_upload_keys(alice, functions, clean_db):
    resp = alice.post("/ai/assets", {"storageKey": "users/bob/holiday.jpg"})
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "AUTH_STORAGE_KEY_SCOPE"
    # A trusted service may register any key for the user it acts for.
    key = "app-bucket/users/alice/holiday.jpg"
    from recall_ray.config import get_settings
    from recall_ray.storage import storage_from_settings
    from tests.images import encode

    storage_from_settings(get_settings()).put(key, encode(noise_image(seed=8)), "image/jpeg")
    reg = functions("alice").post("/ai/assets", {"storageKey": key})
    assert reg.status_code == 202
    assert wait_job(alice, reg.get_json()["jobId"])["state"] == "succeeded"


def test_upload_url_round_trip(alice, clean_db):
    import requests

    made = alice.post("/ai/uploads", {"contentType": "image/jpeg"})
    assert made.status_code == 201
    body = made.get_json()
    from tests.images import encode

    put = requests.put(
        body["uploadUrl"], data=encode(noise_image(seed=5)), headers={"Content-Type": "image/jpeg"}
    )
    assert put.status_code == 200
    reg = alice.post("/ai/assets", {"storageKey": body["storageKey"]}).get_json()
    assert wait_job(alice, reg["jobId"])["state"] == "succeeded"


def test_bad_image_goes_dead_at_once_with_its_reason(alice, clean_db, webhook_receiver):
    from recall_ray.config import get_settings
    from recall_ray.storage import storage_from_settings, user_key_prefix
    from tests.images import encode

    key = f"{user_key_prefix('alice')}broken.jpg"
    data = encode(noise_image(200, 200))
    storage_from_settings(get_settings()).put(key, data[: len(data) // 2], "image/jpeg")
    reg = alice.post("/ai/assets", {"storageKey": key}).get_json()
    job = wait_job(alice, reg["jobId"])
    # A broken file cannot get better by retrying: dead on the first attempt, reason kept.
    assert job["state"] == "dead" and job["attempts"] == 1 and "AI_IMAGE_TRUNCATED" in job["lastError"]
    assert alice.get(f"/ai/assets/{reg['assetId']}").get_json()["state"] == "failed"
    with clean_db.session() as s:
        letter = s.scalars(select(DeadLetter).where(DeadLetter.run_id == reg["jobId"])).one()
        assert letter.error_code == "AI_IMAGE_TRUNCATED" and letter.item_id == reg["assetId"]
    deadline = time.monotonic() + 30
    while not any(
        e["event"] == "ingest.dead" and e["data"]["jobId"] == reg["jobId"] for e in webhook_receiver.events()
    ):
        assert time.monotonic() < deadline, "no ingest.dead webhook"
        time.sleep(0.2)


def test_webhook_is_signed_and_retried(alice, clean_db, webhook_receiver):
    webhook_receiver.fail_next = 2  # the receiver answers 503 twice before it accepts
    reg = register(alice, "alice", noise_image(seed=11), "hooked")
    wait_job(alice, reg["jobId"])
    deadline = time.monotonic() + 60
    while True:
        mine = [
            d
            for d in webhook_receiver.deliveries
            if json.loads(d["body"])["data"].get("jobId") == reg["jobId"]
        ]
        if mine:
            break
        assert time.monotonic() < deadline, "webhook not delivered"
        time.sleep(0.2)
    delivery = mine[0]
    body, headers = delivery["body"], {k.lower(): v for k, v in delivery["headers"].items()}
    ts, sig = (part.split("=", 1)[1] for part in headers["x-recall-signature"].split(","))
    expected = hmac.new(WEBHOOK_SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(sig, expected) and abs(time.time() - int(ts)) < 120
    event = json.loads(body)
    assert event["event"] == "ingest.succeeded" and event["data"]["assetId"] == reg["assetId"]
    with clean_db.session() as s:
        hook = s.get(Job, event["deliveryId"])
        assert hook.kind == "webhook" and hook.state == "succeeded" and hook.attempts == 3


def test_attempts_back_off_then_die(clean_db):
    """The retry state machine on real PostgreSQL: failed attempts wait with growing, jittered backoff; the
    fifth failure is final."""
    with clean_db.session() as s:
        job, _ = job_repo.create(s, kind="ingest", owner="alice", payload={"asset_id": "x"}, max_attempts=5)
    waits = []
    for attempt in range(1, 6):
        with clean_db.session() as s:
            s.execute(update(Job).where(Job.id == job.id).values(next_run_at=func.now()))
        with clean_db.session() as s:
            (claimed,) = job_repo.claim_due(s, 10, lease_s=30)
            assert claimed.id == job.id and claimed.attempts == attempt
        with clean_db.session() as s:
            state = job_repo.fail(
                s,
                job.id,
                attempt,
                error_code="AI_STORAGE_UNAVAILABLE",
                error="s3 down",
                permanent=False,
                base_s=2.0,
                max_s=300.0,
            )
            row = s.get(Job, job.id)
            if attempt < 5:
                assert state == "failed"
                waits.append((row.next_run_at - dt.datetime.now(dt.UTC)).total_seconds())
            else:
                assert state == "dead" and "s3 down" in row.last_error
    for attempt, wait in enumerate(waits, start=1):
        ceiling = 2.0 * 2 ** (attempt - 1)
        assert 0.5 * ceiling - 0.5 <= wait <= ceiling + 0.5, (attempt, wait)
    assert rows(clean_db, DeadLetter, run_id=job.id) == 1


def test_killed_worker_mid_ingest_is_retried_without_duplicates(alice, clean_db):
    """SIGKILL the Ray worker running an ingest attempt: the next attempt completes the job, and the asset
    has exactly one embedding row per model version."""
    big = Image.fromarray(np.random.default_rng(1).integers(0, 255, (4200, 4200, 3), dtype=np.uint8))
    reg = register(alice, "alice", big, "big")  # decoding and resizing this takes a while
    deadline = time.monotonic() + 60
    while True:
        with clean_db.session() as s:
            job = s.get(Job, reg["jobId"])
            if job.worker and job.state == "running":
                break
            assert job.state in ("queued", "running"), job.state
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.01)
    os.kill(int(job.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    done = wait_job(alice, reg["jobId"], timeout_s=180)
    assert done["state"] == "succeeded" and done["attempts"] >= 2, done
    assert "WorkerCrashed" in (done.get("lastError") or "") or done["attempts"] >= 2
    assert rows(clean_db, ImageEmbedding, asset_id=reg["assetId"]) == 1


def test_job_left_running_by_a_crashed_dispatcher_is_picked_up_again(alice, clean_db):
    """Job state lives in PostgreSQL: a job whose dispatcher died mid-attempt (lease expired) is claimed
    again and completes."""
    key = upload("alice", noise_image(seed=21), "orphan")
    reg = alice.post("/ai/assets", {"storageKey": key}).get_json()
    wait_job(alice, reg["jobId"])
    with clean_db.session() as s:
        s.execute(
            update(Job)
            .where(Job.id == reg["jobId"])
            .values(
                state="running",
                attempts=1,
                worker="10.0.0.9:4242",
                locked_until=func.now() - dt.timedelta(seconds=5),
            )
        )
    done = wait_job(alice, reg["jobId"])
    assert done["state"] == "succeeded" and done["attempts"] == 2
    assert rows(clean_db, ImageEmbedding, asset_id=reg["assetId"]) == 1


def test_operators_list_and_retry_dead_jobs(alice, clean_db, stack_env):
    from click.testing import CliRunner

    from recall_ray.cli import main
    from recall_ray.config import get_settings
    from recall_ray.storage import storage_from_settings, user_key_prefix
    from tests.images import encode

    key = f"{user_key_prefix('alice')}later.jpg"
    reg = alice.post("/ai/assets", {"storageKey": key}).get_json()  # the object is not there yet
    job = wait_job(alice, reg["jobId"])
    assert job["state"] == "dead" and "AI_OBJECT_NOT_FOUND" in job["lastError"]
    listed = CliRunner().invoke(main, ["jobs", "list", "--state", "dead"])
    assert listed.exit_code == 0 and reg["jobId"] in listed.output
    storage_from_settings(get_settings()).put(key, encode(noise_image(seed=3)), "image/jpeg")
    retried = CliRunner().invoke(main, ["jobs", "retry", reg["jobId"]])
    assert retried.exit_code == 0, retried.output
    done = wait_job(alice, reg["jobId"])
    assert done["state"] == "succeeded" and done["attempts"] == 1
