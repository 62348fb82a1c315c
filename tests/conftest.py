"""Shared test fixtures: real PostgreSQL + pgvector (pgserver), a real S3 HTTP API (moto's server on
loopback) and, for the serving tests, one local Ray instance for the whole session."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

os.environ.setdefault("RECALL_ENV", "test")
os.environ.setdefault("MODEL_PROFILE", "tiny")

from recall_ray import migrate  # noqa: E402
from recall_ray.config import Settings, load_settings  # noqa: E402
from recall_ray.database import Database  # noqa: E402
from recall_ray.orm import Base  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recall-data")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    yield server
    server.cleanup()


def make_database(pg_server, name: str) -> str:  # noqa: ANN001
    """A fresh, empty database on the session's server; returns its SQLAlchemy URL."""
    from recall_ray.config import to_psycopg_url

    pg_server.psql(f'DROP DATABASE IF EXISTS "{name}";')
    pg_server.psql(f'CREATE DATABASE "{name}";')
    return to_psycopg_url(pg_server.get_uri(name))


@pytest.fixture(scope="session")
def database_url(pg_server) -> str:  # noqa: ANN001
    url = make_database(pg_server, "recall_test")
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def settings(database_url: str, data_dir: Path) -> Settings:
    return load_settings(
        database_url=database_url,
        recall_env="test",
        data_dir=data_dir,
        secret_key="test-secret-key-not-for-production",
        model_profile="tiny",
    )


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


@pytest.fixture
def clean_db(database: Database) -> Database:
    """The migrated test database with every table emptied."""
    tables = ", ".join(
        f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables) if t.name != "model_versions"
    )
    with database.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return database


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
