"""The recall CLI against the session's PostgreSQL (DATABASE_URL) and a local data directory."""

import json

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
    status = json.loads(run(["db", "status"], monkeypatch, env).output)
    assert status["current"] is None and "upgrade" in status["state"]
    assert "at revision" in run(["db", "upgrade"], monkeypatch, env).output
    status = json.loads(run(["db", "status"], monkeypatch, env).output)
    assert status["current"] == status["head"] and status["state"] == "up to date"


def test_demo_brings_up_embedded_database_and_storage(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    env = {"RECALL_DATA_DIR": str(tmp_path)}
    try:
        out = run(["demo"], monkeypatch, env).output
        assert "PostgreSQL + pgvector up" in out and "schema at revision" in out
        assert (tmp_path / "pgdata" / "PG_VERSION").exists()
        assert (tmp_path / "objects" / "demo" / "hello.txt").read_bytes() == b"hello"
    finally:
        assert run(["db", "stop"], monkeypatch, env).output.strip() == "stopped"
    assert run(["db", "stop"], monkeypatch, env).output.strip() == "not running"
