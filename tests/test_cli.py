"""The recall CLI against the session's PostgreSQL (DATABASE_URL) and a local data directory."""

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from recall_ray import config
from recall_ray.cli import main
from tests.conftest import make_database


def run(args, monkeypatch, env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    config.get_settings.cache_clear()
    try:
        return CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        config.get_settings.cache_clear()


def test_db_upgrade_and_status(pg_server, monkeypatch, tmp_path):
    env = {"DATABASE_URL": make_database(pg_server, "recall_cli"), "RECALL_DATA_DIR": str(tmp_path)}
    status = json.loads(run(["db", "status"], monkeypatch, env).stdout)
    assert status["current"] is None and "upgrade" in status["state"]
    assert "at revision" in run(["db", "upgrade"], monkeypatch, env).output
    status = json.loads(run(["db", "status"], monkeypatch, env).stdout)
    assert status["current"] == status["head"] and status["state"] == "up to date"


def test_demo_runs_the_whole_stack_on_embedded_defaults(tmp_path):
    """The README's main job: embedded PostgreSQL, local storage, its own local Ray, Serve and gunicorn.
    It runs in a child process because it starts (and stops) a Ray head of its own."""
    recall = Path(sys.executable).with_name("recall")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "S3_", "RAY_", "MODEL_"))}
    env |= {"RECALL_DATA_DIR": str(tmp_path), "RECALL_ENV": "development", "STORAGE_BACKEND": "local"}
    try:
        done = subprocess.run(
            [str(recall), "demo"], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        out = done.stdout
        assert done.returncode == 0, out + done.stderr[-4000:]
        for step in range(1, 8):
            assert f"[{step}/7]" in out, out
        assert "PostgreSQL + pgvector up and migrated" in out and "object storage: local" in out
        assert "same observation True, reused True" in out
        assert (tmp_path / "pgdata" / "PG_VERSION").exists()
        uploads = [p for p in (tmp_path / "objects" / "u").rglob("*.jpg") if p.is_file()]
        assert len(uploads) == 6, uploads  # the six sample photos, uploaded through presigned PUTs
    finally:
        stop = subprocess.run([str(recall), "db", "stop"], env=env, capture_output=True, text=True)
        assert stop.stdout.strip() == "stopped", stop.stdout + stop.stderr
