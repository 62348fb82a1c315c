"""Durable job state. Ray executes jobs; this table remembers them.

States: ``queued`` (waiting for its first run), ``running`` (claimed; the claim is a lease that expires, so a
job whose worker or dispatcher died is claimed again), ``failed`` (an attempt failed; the next one is due at
``next_run_at``), ``succeeded`` and ``dead`` (out of attempts, or an error that retrying cannot fix).
Every transition after the claim names the attempt it belongs to, so a stale attempt cannot overwrite a newer.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from recall_ray.errors import BadRequest, NotFound
from recall_ray.orm import DeadLetter, Job

ERROR_MAX_CHARS = 2000


def create(
    session: Session,
    *,
    kind: str,
    owner: str | None,
    payload: dict[str, Any],
    idempotency_key: str | None = None,
    max_attempts: int = 5,
) -> tuple[Job, bool]:
    """A new queued job, or the existing one with the same (kind, idempotency key); returns (job, created)."""
    stmt = (
        insert(Job)
        .values(
            kind=kind,
            owner_user_id=owner,
            payload=payload,
            idempotency_key=idempotency_key,
            max_attempts=max_attempts,
            next_run_at=func.now(),
        )
        .on_conflict_do_nothing(constraint="uq_jobs_kind_idempotency_key")
        .returning(Job.id)
    )
    new_id = session.execute(stmt).scalar_one_or_none()
    if new_id is not None:
        return session.get_one(Job, new_id), True
    job = session.scalars(select(Job).where(Job.kind == kind, Job.idempotency_key == idempotency_key)).one()
    return job, False


def requeue(session: Session, job: Job) -> None:
    """Run a finished job again from its first attempt (a re-registered asset, an operator's retry)."""
    job.state, job.attempts, job.next_run_at = "queued", 0, dt.datetime.now(dt.UTC)
    job.locked_until = job.worker = job.finished_at = None
    job.last_error = None


def get_owned(session: Session, job_id: str, owner: str) -> Job:
    job = session.scalars(select(Job).where(Job.id == job_id, Job.owner_user_id == owner)).one_or_none()
    if job is None:
        raise NotFound(f"job {job_id} not found", code="AI_JOB_NOT_FOUND")
    return job


def latest_for_asset(session: Session, asset_id: str, kind: str = "ingest") -> Job | None:
    return session.scalars(
        select(Job)
        .where(Job.kind == kind, Job.payload["asset_id"].astext == asset_id)
        .order_by(Job.created_at.desc())
        .limit(1)
    ).one_or_none()


def claim_due(session: Session, limit: int, lease_s: float) -> list[Job]:
    """Claim up to ``limit`` due jobs (and jobs whose lease expired) for one attempt each."""
    if limit <= 0:
        return []
    rows = session.execute(
        text(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, worker = NULL, "
            "locked_until = now() + make_interval(secs => :lease), updated_at = now() "
            "WHERE id IN (SELECT id FROM jobs WHERE "
            "(state IN ('queued', 'failed') AND next_run_at <= now()) "
            "OR (state = 'running' AND locked_until < now()) "
            "ORDER BY next_run_at LIMIT :limit FOR UPDATE SKIP LOCKED) "
            "RETURNING id"
        ),
        {"lease": lease_s, "limit": limit},
    ).all()
    ids = [r.id for r in rows]
    return list(session.scalars(select(Job).where(Job.id.in_(ids)).execution_options(populate_existing=True)))


def _attempt(job_id: str, attempt: int):  # noqa: ANN202
    return update(Job).where(Job.id == job_id, Job.attempts == attempt, Job.state == "running")


def extend_lease(session: Session, job_id: str, attempt: int, lease_s: float) -> bool:
    result = session.execute(
        _attempt(job_id, attempt).values(
            locked_until=func.now() + dt.timedelta(seconds=lease_s), updated_at=func.now()
        )
    )
    return bool(result.rowcount)


def set_worker(session: Session, job_id: str, attempt: int, worker: str) -> bool:
    return bool(session.execute(_attempt(job_id, attempt).values(worker=worker)).rowcount)


def succeed(session: Session, job_id: str, attempt: int, result: dict[str, Any]) -> bool:
    done = session.execute(
        _attempt(job_id, attempt).values(
            state="succeeded", result=result, locked_until=None, finished_at=func.now(), last_error=None
        )
    )
    return bool(done.rowcount)


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [0.5, 1] x base x 2^(attempt-1), capped."""
    ceiling = min(max_s, base_s * 2 ** max(0, attempt - 1))
    return ceiling * (0.5 + 0.5 * (rng or random).random())


def fail(
    session: Session,
    job_id: str,
    attempt: int,
    *,
    error_code: str,
    error: str,
    permanent: bool,
    base_s: float,
    max_s: float,
) -> str | None:
    """Record a failed attempt; returns the new state (``failed`` with a retry scheduled, or ``dead``)."""
    job = session.scalars(
        select(Job).where(Job.id == job_id, Job.attempts == attempt, Job.state == "running").with_for_update()
    ).one_or_none()
    if job is None:
        return None  # a newer attempt owns the job
    message = f"[{error_code}] {error}"[:ERROR_MAX_CHARS]
    job.last_error, job.locked_until = message, None
    if permanent or job.attempts >= job.max_attempts:
        job.state, job.finished_at = "dead", dt.datetime.now(dt.UTC)
        session.add(
            DeadLetter(
                source=f"job:{job.kind}",
                run_id=job.id,
                item_id=job.payload.get("asset_id"),
                error_code=error_code,
                error=message,
            )
        )
    else:
        job.state = "failed"
        job.next_run_at = dt.datetime.now(dt.UTC) + dt.timedelta(
            seconds=backoff_s(job.attempts, base_s, max_s)
        )
    return job.state


def retry(session: Session, job_id: str) -> Job:
    """An operator's retry of a dead or failed job: a fresh set of attempts, due now."""
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise NotFound(f"job {job_id} not found", code="AI_JOB_NOT_FOUND")
    if job.state not in ("dead", "failed"):
        raise BadRequest(
            f"job {job_id} is {job.state}; only dead or failed jobs are retried", code="AI_JOB_STATE"
        )
    requeue(session, job)
    return job


def list_jobs(
    session: Session, *, states: Sequence[str] = (), kind: str | None = None, limit: int = 50
) -> list[Job]:
    stmt = select(Job).order_by(Job.updated_at.desc()).limit(limit)
    if states:
        stmt = stmt.where(Job.state.in_(list(states)))
    if kind:
        stmt = stmt.where(Job.kind == kind)
    return list(session.scalars(stmt))


def delete_owned_by(session: Session, owner: str) -> int:
    return int(session.execute(delete(Job).where(Job.owner_user_id == owner)).rowcount or 0)
