"""The ``recall`` command line: database, serving, models and jobs for operators and self-hosters."""

from __future__ import annotations

import json
import sys
import time

import click

from recall_ray.config import get_settings
from recall_ray.errors import RecallError


def _fail(exc: RecallError) -> None:
    click.echo(f"error [{exc.code}]: {exc.message}", err=True)
    sys.exit(2)


@click.group()
def main() -> None:
    """Recall AI backend."""


@main.group()
def db() -> None:
    """Embedded or external PostgreSQL + pgvector."""


@db.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (no-op with DATABASE_URL)."""
    from recall_ray.database import resolve_database_url

    settings = get_settings()
    t0 = time.monotonic()
    url = resolve_database_url(settings)
    where = "external" if settings.database_url else f"embedded, data in {settings.data_dir / 'pgdata'}"
    click.echo(f"database ready ({where}) in {time.monotonic() - t0:.2f}s")
    click.echo(_redact(url))


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL."""
    from recall_ray.database import embedded_pgdata, stop_embedded

    settings = get_settings()
    if settings.database_url:
        click.echo("DATABASE_URL is set: the external server is not managed here")
        return
    click.echo("stopped" if stop_embedded(embedded_pgdata(settings)) else "not running")


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default head)."""
    from recall_ray import migrate
    from recall_ray.database import Database

    database = Database.from_settings(get_settings())
    migrate.upgrade(database.url, revision)
    click.echo(f"at revision {migrate.current_revision(database.url)}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' empties the schema)."""
    from recall_ray import migrate
    from recall_ray.database import Database

    database = Database.from_settings(get_settings())
    migrate.downgrade(database.url, revision)
    click.echo(f"at revision {migrate.current_revision(database.url)}")


@db.command("status")
def db_status() -> None:
    """Show the schema revision against the latest migration."""
    from recall_ray import migrate
    from recall_ray.database import Database

    database = Database.from_settings(get_settings())
    current, head = migrate.current_revision(database.url), migrate.head_revision(database.url)
    state = "up to date" if current == head else "needs `recall db upgrade`"
    click.echo(
        json.dumps(
            {"database": _redact(database.url), "current": current, "head": head, "state": state}, indent=2
        )
    )


@main.command("demo")
def demo() -> None:
    """The main job on embedded defaults: database, object storage and schema come up, then the demo runs."""
    from recall_ray import migrate
    from recall_ray.database import Database
    from recall_ray.storage import storage_from_settings

    settings = get_settings()
    t0 = time.monotonic()
    database = Database.from_settings(settings)
    click.echo(f"[1/3] PostgreSQL + pgvector up in {time.monotonic() - t0:.2f}s ({_redact(database.url)})")
    migrate.upgrade(database.url)
    click.echo(f"[2/3] schema at revision {migrate.current_revision(database.url)}")
    storage = storage_from_settings(settings)
    storage.put("demo/hello.txt", b"hello", "text/plain")
    assert storage.get("demo/hello.txt") == b"hello"
    click.echo(f"[3/3] object storage ready ({settings.storage_backend})")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def run() -> None:
    """Console entry point: domain errors print their code and message, never a stack trace."""
    try:
        main(standalone_mode=True)
    except RecallError as exc:
        _fail(exc)


if __name__ == "__main__":
    run()
