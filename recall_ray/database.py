"""Database access: the engine, request-scoped sessions, and the embedded PostgreSQL + pgvector server.

With no DATABASE_URL the project runs PostgreSQL 16 + pgvector from the ``pgserver`` package with its data
directory under ``<data_dir>/pgdata``; the server keeps running between commands until ``recall db stop``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from recall_ray.config import Settings, to_psycopg_url
from recall_ray.errors import ConfigError, Unavailable

log = logging.getLogger(__name__)


def embedded_pgdata(settings: Settings) -> Path:
    return settings.data_dir / "pgdata"


def start_embedded(pgdata: Path) -> str:
    """Start (or attach to) the embedded server and return its SQLAlchemy URL."""
    import pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process; `recall db stop` stops it.
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    return to_psycopg_url(server.get_uri())


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server if it runs; True when one was stopped."""
    import os

    from pgserver import pg_ctl
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return False
    # As root, pgserver runs PostgreSQL as its own unprivileged user; pg_ctl must run as that user too.
    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True


def resolve_database_url(settings: Settings) -> str:
    if settings.sqlalchemy_url:
        return settings.sqlalchemy_url
    return start_embedded(embedded_pgdata(settings))


def make_engine(url: str, pool_size: int = 5) -> Engine:
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def check_pgvector(engine: Engine) -> None:
    """Fail with a clear message when the server cannot provide the ``vector`` extension."""
    try:
        with engine.connect() as conn:
            available = conn.execute(
                text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            ).first()
    except Exception as exc:  # the driver's message names host and reason, never the password
        raise Unavailable(
            f"cannot connect to PostgreSQL: {type(exc).__name__}", code="AI_DB_UNAVAILABLE"
        ) from None
    if available is None:
        raise ConfigError(
            "DATABASE_URL points at a PostgreSQL server without the pgvector extension; install pgvector "
            "(https://github.com/pgvector/pgvector) on that server or unset DATABASE_URL to use the "
            "embedded server",
            code="CONFIG_PGVECTOR_MISSING",
        )


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str, pool_size: int = 5):
        self.url = url
        self.engine = make_engine(url, pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings, pool_size: int | None = None) -> Database:
        db = cls(resolve_database_url(settings), pool_size or settings.database_pool_size)
        check_pgvector(db.engine)
        return db

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
