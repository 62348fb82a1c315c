"""``recall jobs`` and ``recall dead-letters``: what the job system did, and retrying what died."""

from __future__ import annotations

import json

import click

from recall_ray.cli import main
from recall_ray.config import get_settings


def _db():  # noqa: ANN202
    from recall_ray.database import Database

    return Database.from_settings(get_settings())


@main.group()
def jobs() -> None:
    """Ingest, schedule and webhook jobs (state lives in PostgreSQL)."""


@jobs.command("list")
@click.option(
    "--state", "states", multiple=True, help="queued, running, failed, succeeded, dead (repeatable)"
)
@click.option("--kind", default=None, help="ingest, schedule or webhook")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def jobs_list(states: tuple[str, ...], kind: str | None, limit: int, as_json: bool) -> None:
    """The most recently updated jobs."""
    from recall_ray.repositories import jobs as job_repo

    with _db().session() as s:
        for job in job_repo.list_jobs(s, states=states, kind=kind, limit=limit):
            row = {
                "id": job.id,
                "kind": job.kind,
                "state": job.state,
                "attempts": f"{job.attempts}/{job.max_attempts}",
                "worker": job.worker,
                "updated": job.updated_at.isoformat(timespec="seconds"),
                "error": job.last_error,
            }
            if as_json:
                click.echo(json.dumps(row))
            else:
                error = f"  {row['error'][:80]}" if row["error"] else ""
                click.echo(
                    f"{row['id']}  {row['kind']:<8} {row['state']:<9} {row['attempts']:>5}  "
                    f"{row['updated']}{error}"
                )


@jobs.command("retry")
@click.argument("job_ids", nargs=-1, required=True)
def jobs_retry(job_ids: tuple[str, ...]) -> None:
    """Give dead or failed jobs a fresh set of attempts, due now."""
    from recall_ray.repositories import jobs as job_repo

    with _db().session() as s:
        for job_id in job_ids:
            job = job_repo.retry(s, job_id)
            click.echo(f"{job.id} queued again")


@main.command("dead-letters")
@click.option("--source", default=None, help="job:ingest, job:schedule, job:webhook or backfill")
@click.option("--run", "run_id", default=None, help="a job id or backfill run id")
@click.option("--limit", default=50, show_default=True)
def dead_letters(source: str | None, run_id: str | None, limit: int) -> None:
    """Items that failed for good, newest first, with their reasons."""
    from sqlalchemy import select

    from recall_ray.orm import DeadLetter

    stmt = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)
    if source:
        stmt = stmt.where(DeadLetter.source == source)
    if run_id:
        stmt = stmt.where(DeadLetter.run_id == run_id)
    with _db().session() as s:
        for d in s.scalars(stmt):
            click.echo(
                json.dumps(
                    {
                        "at": d.created_at.isoformat(timespec="seconds"),
                        "source": d.source,
                        "run": d.run_id,
                        "item": d.item_id,
                        "modelVersion": d.model_version,
                        "code": d.error_code,
                        "error": d.error,
                    },
                    ensure_ascii=False,
                )
            )
