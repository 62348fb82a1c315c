"""Alembic environment: the URL comes from recall_ray's settings or the caller's connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from recall_ray.orm import Base

config = context.config
target_metadata = Base.metadata


def _include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001
    # Per-model-version HNSW indexes are created at run time (repositories.vector_index), not by the ORM.
    return not (type_ == "index" and reflected and name and name.startswith("hnsw_"))


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from recall_ray.config import get_settings
        from recall_ray.database import resolve_database_url

        url = resolve_database_url(get_settings())
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=_include_object,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
