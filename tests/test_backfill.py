"""Re-embedding as a Ray Data pipeline on the session's Ray, resumed after a kill, with per-item failures; and
the rollout of a new image-model version (switch and rollback) on the running Serve application."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import ray
from click.testing import CliRunner
from sqlalchemy import func, select

from recall_ray import config
from recall_ray.cli import main
from recall_ray.jobs.reembed import BackfillOptions, run_backfill
from recall_ray.orm import Asset, BackfillRun, DeadLetter, ImageEmbedding
from recall_ray.storage import storage_from_settings, user_key_prefix
from tests.flows import ingest
from tests.images import encode, noise_image

NEW = "openclip_tiny@test-2"
OLD = "openclip_tiny@test-1"


def seed(db, owner: str, n: int, corrupt: dict[int, bytes] | None = None) -> list[str]:
    """``n`` ready assets of ``owner`` with small photos in storage; ``corrupt`` replaces some bytes."""
    storage = storage_from_settings(config.get_settings())
    corrupt = corrupt or {}
    ids = []
    with db.session() as s:
        for i in range(n):
            key = f"{user_key_prefix(owner)}bf/{i}.png"
            storage.put(key, corrupt.get(i, encode(noise_image(40, 32, seed=i), "PNG")), "image/png")
            asset = Asset(owner_user_id=owner, storage_key=key, content_type="image/png", state="ready")
            s.add(asset)
            s.flush()
            ids.append(asset.id)
    return ids


def embedded(db, version: str, owner: str | None = None) -> int:
    with db.session() as s:
        stmt = select(func.count()).select_from(ImageEmbedding).where(ImageEmbedding.model_version == version)
        if owner:
            stmt = stmt.where(ImageEmbedding.owner_user_id == owner)
        return int(s.scalar(stmt))


def per_asset_max(db, version: str) -> int:
    with db.session() as s:
        counts = s.scalars(
            select(func.count())
            .select_from(ImageEmbedding)
            .where(ImageEmbedding.model_version == version)
            .group_by(ImageEmbedding.asset_id)
        ).all()
    return max(counts, default=0)


@pytest.fixture
def backfill_ready(clean_db, recall_app, settings):
    """The session's stack (Ray, storage, models) with an empty database."""
    return clean_db


def test_backfill_embeds_every_asset_once_and_records_bad_items(backfill_ready, settings):
    db = backfill_ready
    truncated = encode(noise_image(40, 32, seed=1), "PNG")[:60]
    corrupt = {7: b"", 50: truncated, 123: b"%!PS-Adobe-3.0 EPSF-3.0\n"}
    ids = seed(db, "dora", 300, corrupt)
    summary = run_backfill(BackfillOptions(model_version=NEW, page_size=64, batch_size=16), settings)
    assert (summary.state, summary.total, summary.done, summary.failed) == ("succeeded", 300, 297, 3)
    assert embedded(db, NEW) == 297 and per_asset_max(db, NEW) == 1
    with db.session() as s:
        letters = {
            d.item_id: d.error_code
            for d in s.scalars(select(DeadLetter).where(DeadLetter.run_id == summary.run_id))
        }
        run = s.get(BackfillRun, summary.run_id)
        assert (run.state, run.done, run.failed) == ("succeeded", 297, 3)
    assert letters == {
        ids[7]: "AI_IMAGE_EMPTY",
        ids[50]: "AI_IMAGE_TRUNCATED",
        ids[123]: "AI_IMAGE_UNSUPPORTED_FORMAT",
    }
    # Idempotent and resumable: a second run has only the three bad items left, and writes nothing twice.
    again = run_backfill(BackfillOptions(model_version=NEW), settings)
    assert (again.total, again.done, again.failed) == (3, 0, 3)
    assert embedded(db, NEW) == 297 and per_asset_max(db, NEW) == 1
    # Scope: one owner's assets only.
    seed(db, "emil", 5)
    only = run_backfill(BackfillOptions(model_version=NEW, owner="emil"), settings)
    assert (only.total, only.done) == (5, 5) and embedded(db, NEW, "emil") == 5


def test_killed_backfill_resumes_without_duplicates_or_redone_work(backfill_ready, settings, stack_env):
    db = backfill_ready
    n = 240
    seed(db, "fred", n)
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    args = ["--model", NEW, "--page-size", "16", "--batch-size", "4"]
    driver = subprocess.Popen(
        [sys.executable, "-m", "recall_ray.jobs.reembed", *args], env=env, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while embedded(db, NEW) < 20:
        assert driver.poll() is None, "the backfill ended before it could be killed"
        assert time.monotonic() < deadline, "the backfill made no progress"
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(3)  # Ray stops the dead driver's tasks and actors; its advisory lock went with its connection
    before = embedded(db, NEW)
    assert 20 <= before < n, before
    with db.session() as s:
        (first,) = s.scalars(select(BackfillRun).where(BackfillRun.model_version == NEW)).all()
        assert first.state == "running" and first.done == before  # progress and rows commit together
    resumed = run_backfill(BackfillOptions(model_version=NEW, batch_size=16), settings)
    assert resumed.total == n - before and resumed.done == n - before  # finished items were not redone
    assert embedded(db, NEW) == n and per_asset_max(db, NEW) == 1
    with db.session() as s:
        assert s.get(BackfillRun, first.id).state == "interrupted"


def test_one_backfill_per_version_at_a_time(backfill_ready, settings):
    from recall_ray.errors import Conflict
    from recall_ray.repositories import backfills

    seed(backfill_ready, "gina", 2)
    with backfills.version_lock(backfill_ready.engine, NEW) as taken:
        assert taken
        with pytest.raises(Conflict) as exc:
            run_backfill(BackfillOptions(model_version=NEW), settings)
    assert exc.value.code == "AI_BACKFILL_RUNNING"
    assert run_backfill(BackfillOptions(model_version=NEW), settings).done == 2


def cli(*args):
    config.get_settings.cache_clear()
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_backfill_submitted_as_a_ray_job(backfill_ready, monkeypatch):
    seed(backfill_ready, "hana", 12)
    monkeypatch.setenv("RAY_ADDRESS", ray.get_runtime_context().gcs_address)
    try:
        out = cli("backfill", "start", "--model", NEW, "--owner", "hana", "--python", sys.executable)
    finally:
        monkeypatch.delenv("RAY_ADDRESS")
        config.get_settings.cache_clear()
    assert "submitted Ray job" in out and "SUCCEEDED" in out and "12/12 embedded" in out
    assert embedded(backfill_ready, NEW, "hana") == 12
    assert "succeeded" in cli("backfill", "runs", "--model", NEW)


def test_switching_the_serving_version_and_rolling_back(alice, backfill_ready, settings):
    """Search follows the serving version: after a backfill the new version is switched in without a failed
    request, and rolled back the same way."""
    photos = [ingest(alice, "alice", noise_image(seed=s), f"r{s}") for s in range(3)]
    search = {"assetId": photos[0], "k": 5, "minScore": -1.0}
    assert alice.post("/ai/search", search).get_json()["modelVersion"] == OLD

    refused = CliRunner().invoke(main, ["models", "serve", NEW])
    assert refused.exit_code != 0 and "AI_ROLLOUT_COVERAGE" in str(refused.exception.code)
    run_backfill(BackfillOptions(model_version=NEW), settings)
    status = cli("models", "status")
    assert any(NEW in line and "100.0%" in line for line in status.splitlines()), status

    failures, stop = [], threading.Event()

    def hammer():
        while not stop.is_set():
            for body in (search, {"text": "a walk by the sea", "k": 3}):
                resp = alice.post("/ai/search", body)
                if resp.status_code != 200:
                    failures.append(resp.get_json())

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        assert '"serving": "openclip_tiny@test-2"' in cli("models", "serve", NEW)
        time.sleep(1.0)
        served = alice.post("/ai/search", search).get_json()
        assert served["modelVersion"] == NEW and {r["assetId"] for r in served["results"]} == set(photos[1:])
        assert alice.post("/ai/search", {"text": "sea"}).get_json()["modelVersion"] == NEW
        assert '"serving": "openclip_tiny@test-1"' in cli("models", "rollback")
        time.sleep(1.0)
        assert alice.post("/ai/search", search).get_json()["modelVersion"] == OLD
    finally:
        stop.set()
        worker.join()
        from deployments import serve_config

        serve_config.update_user_config("Recall", {"rollout": {}})
        serve_config.update_user_config("Clip", {"versions": [OLD]})
    assert failures == []
