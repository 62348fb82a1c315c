"""``recall db``: the embedded or external PostgreSQL + pgvector, and its schema."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from recall_ray.cli import main, redact
from recall_ray.config import get_settings


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
    click.echo(redact(url))


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
            {"database": redact(database.url), "current": current, "head": head, "state": state}, indent=2
        )
    )


@db.command("backup")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def db_backup(out: Path | None) -> None:
    """pg_dump of the database to OUT (default: BACKUP_DIR), encrypted when a backup key is configured."""
    from recall_ray import backup
    from recall_ray.database import resolve_database_url

    settings = get_settings()
    t0 = time.monotonic()
    path = backup.backup(settings, resolve_database_url(settings), out)
    click.echo(
        f"backup written: {path} ({path.stat().st_size} bytes, encryption: {backup.encryption(settings)}, "
        f"{time.monotonic() - t0:.1f}s)"
    )


@db.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="do not ask: the database's current contents are replaced")
def db_restore(path: Path, yes: bool) -> None:
    """Restore PATH (a `recall db backup` file) into the configured database, replacing what is there."""
    from recall_ray import backup
    from recall_ray.database import resolve_database_url

    settings = get_settings()
    url = resolve_database_url(settings)
    if not yes:
        click.confirm(f"replace the contents of {redact(url)} with {path}?", abort=True)
    t0 = time.monotonic()
    backup.restore(settings, url, path)
    click.echo(f"restored {path} into {redact(url)} in {time.monotonic() - t0:.1f}s")
