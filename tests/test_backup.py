"""`recall db backup` / `recall db restore`: a backup of a database holding every kind of row is restored
into a fresh database on the same server, plain and encrypted (age, gpg), and every row is back."""

import os
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from recall_ray import config
from recall_ray.cli import main
from recall_ray.database import Database
from recall_ray.orm import (
    Asset,
    AuditLog,
    Base,
    FaceEmbedding,
    ImageEmbedding,
    Job,
    VlmDetectionEntity,
    VlmObservation,
)
from recall_ray.repositories.embeddings import upsert_image_embedding
from recall_ray.repositories.vector_index import register_model_version
from tests.conftest import make_database


def fill(db: Database) -> None:
    rng = np.random.default_rng(3)
    with db.session() as s:
        register_model_version(s, "bk_clip@v1", "image", 8)
        register_model_version(s, "bk_face@v1", "face", 4)
        for i in range(5):
            a = Asset(owner_user_id=f"u{i % 2}", storage_key=f"u/{i}.jpg", state="ready")
            s.add(a)
            s.flush()
            upsert_image_embedding(s, a.id, a.owner_user_id, "bk_clip@v1", rng.normal(size=8))
            s.add(
                FaceEmbedding(
                    asset_id=a.id,
                    owner_user_id=a.owner_user_id,
                    bbox=[1, 2, 3, 4],
                    detection_score=0.9,
                    model_version="bk_face@v1",
                    embedding=rng.normal(size=4).tolist(),
                )
            )
            obs = VlmObservation(
                asset_id=a.id,
                observation_hash=f"h{i}",
                model_version="m",
                prompt_version="p",
                raw_output={"text": "週末ボードゲーム会"},
                parsed_result={},
                initiator_user_id=a.owner_user_id,
                latency_ms=5,
            )
            s.add(obs)
            s.flush()
            s.add(
                VlmDetectionEntity(observation_id=obs.id, kind="schedule", payload={"t": i}, confidence=0.5)
            )
        s.add(Job(kind="ingest", payload={"asset_id": "x"}, state="succeeded"))
        s.add(AuditLog(actor="user:u0", action="asset.delete", outcome="ok"))


def snapshot(db: Database) -> dict:
    """Every table's rows, as comparable values (vectors as lists)."""
    out = {}
    with db.session() as s:
        for table in Base.metadata.sorted_tables:
            rows = s.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [
                tuple(v.tolist() if isinstance(v, np.ndarray) else v for v in row) for row in rows
            ]
        out["indexes"] = sorted(
            s.scalars(text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'hnsw_%'")).all()
        )
    return out


@pytest.fixture
def source(pg_server, tmp_path, monkeypatch):
    from recall_ray import migrate

    url = make_database(pg_server, "backup_source")
    migrate.upgrade(url)
    db = Database(url)
    fill(db)
    yield db
    db.dispose()


def cli(monkeypatch, env: dict, *args) -> str:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    config.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        config.get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result.output


def age_keys(tmp_path) -> dict:
    identity = tmp_path / "age.key"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = next(
        line.split(": ", 1)[1] for line in identity.read_text().splitlines() if "public key" in line
    )
    return {"BACKUP_AGE_RECIPIENT": recipient, "BACKUP_AGE_IDENTITY": str(identity)}


def gpg_keys(tmp_path, monkeypatch) -> dict:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "backup@recall.test", "default", "default"],
        check=True,
        capture_output=True,
    )
    return {"BACKUP_GPG_RECIPIENT": "backup@recall.test"}


@pytest.mark.parametrize("encryption", ["none", "age", "gpg"])
def test_backup_restores_every_row_into_a_fresh_database(
    encryption, source, pg_server, tmp_path, monkeypatch
):
    keys = {
        "none": lambda: {},
        "age": lambda: age_keys(tmp_path),
        "gpg": lambda: gpg_keys(tmp_path, monkeypatch),
    }
    env = {"DATABASE_URL": source.url, "RECALL_DATA_DIR": str(tmp_path), **keys[encryption]()}
    out = cli(monkeypatch, env, "db", "backup")
    path = tmp_path / "backups" / out.split("backup written: ")[1].split(" (")[0].split("/")[-1]
    assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"
    raw = path.read_bytes()
    assert (b"PGDMP" in raw[:5]) == (encryption == "none")  # encrypted files are not plain dumps
    assert b"\xe9\x80\xb1\xe6\x9c\xab" not in raw or encryption == "none"  # no plaintext leaks through

    fresh = make_database(pg_server, "backup_target")  # empty: no schema, no extension
    cli(monkeypatch, {**env, "DATABASE_URL": fresh}, "db", "restore", str(path), "--yes")
    restored = Database(fresh)
    assert snapshot(restored) == snapshot(source)
    with restored.session() as s:
        assert s.scalar(select(func.count()).select_from(ImageEmbedding)) == 5
    restored.dispose()


def test_restore_of_a_missing_or_broken_file_fails_clearly(source, tmp_path, monkeypatch):
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"not a dump")
    monkeypatch.setenv("DATABASE_URL", source.url)
    config.get_settings.cache_clear()
    result = CliRunner().invoke(main, ["db", "restore", str(broken), "--yes"])
    config.get_settings.cache_clear()
    assert result.exit_code != 0 and "pg_restore" in str(result.exception)
    assert snapshot(source)["assets"]  # the database is untouched
    assert os.path.exists(broken)
