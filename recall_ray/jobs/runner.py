"""The job dispatcher and the Ray task that runs one job attempt.

PostgreSQL remembers, Ray executes: the dispatcher claims due jobs with a lease (``FOR UPDATE SKIP LOCKED``),
runs each attempt as a Ray task and records the outcome. If a task's worker dies the attempt fails and is
retried with backoff; if the dispatcher dies its leases expire and the next dispatcher claims the jobs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import ray
from sqlalchemy.orm import Session

from recall_ray.config import Settings, get_settings
from recall_ray.database import Database
from recall_ray.errors import permanent, unwrap
from recall_ray.orm import Job
from recall_ray.repositories import jobs as job_repo
from recall_ray.services import ingest, schedule, webhooks
from recall_ray.services.context import Context

log = logging.getLogger("recall.jobs")


@dataclass(frozen=True)
class Handler:
    run: Callable[[Context, Job], Awaitable[dict[str, Any]]]
    on_dead: Callable[[Session, Job], None] | None = None
    notify: bool = True  # send a webhook when the job ends


HANDLERS: dict[str, Handler] = {
    ingest.KIND: Handler(ingest.run, ingest.on_dead),
    schedule.KIND: Handler(schedule.run_job),
    webhooks.KIND: Handler(webhooks.run, notify=False),
}


@lru_cache(maxsize=1)
def task_context() -> Context:
    """One context per Ray worker process, reused by every task it runs."""
    from deployments.graphs import ModelClient
    from recall_ray.storage import storage_from_settings

    settings = get_settings()
    db = Database.from_settings(settings, pool_size=2)
    return Context(
        settings, db, storage_from_settings(settings), ModelClient.from_app(settings.serve_app_name)
    )


@ray.remote(max_retries=0)  # retries are the dispatcher's, with backoff, remembered in PostgreSQL
def execute_job(job_id: str, attempt: int) -> dict[str, Any]:
    ctx = task_context()
    worker = f"{ray.util.get_node_ip_address()}:{os.getpid()}"

    def start(session: Session) -> Job | None:
        if not job_repo.set_worker(session, job_id, attempt, worker):
            return None
        return session.get(Job, job_id)

    with ctx.db.session() as session:
        job = start(session)
    if job is None:
        return {"skipped": "a newer attempt owns the job"}
    return asyncio.run(HANDLERS[job.kind].run(ctx, job))


class Dispatcher:
    """Claims due jobs and runs them as Ray tasks, at most ``max_concurrent`` at a time."""

    def __init__(
        self, settings: Settings, db: Database, poll_interval_s: float = 1.0, max_concurrent: int = 4
    ):
        self.settings, self.db = settings, db
        self.poll_interval_s, self.max_concurrent = poll_interval_s, max_concurrent
        self.running: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    def kick(self) -> None:
        self._wake.set()

    async def loop(self) -> None:
        while True:
            try:
                await self.dispatch_once()
            except Exception:  # the database may be away for a while: keep polling
                log.exception("job dispatch failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval_s)
            self._wake.clear()

    async def dispatch_once(self) -> int:
        free = self.max_concurrent - len(self.running)
        lease = self.settings.job_lease_s

        def claim(session: Session) -> list[Job]:
            return job_repo.claim_due(session, free, lease)

        jobs = await asyncio.to_thread(self._tx, claim)
        for job in jobs:
            task = asyncio.ensure_future(self._attempt(job.id, job.kind, job.attempts, job.owner_user_id))
            self.running[job.id] = task
        return len(jobs)

    def _tx(self, fn: Callable[[Session], Any]) -> Any:
        with self.db.session() as session:
            return fn(session)

    async def _attempt(self, job_id: str, kind: str, attempt: int, owner: str | None) -> None:
        handler = HANDLERS.get(kind)
        lease = self.settings.job_lease_s
        heartbeat = asyncio.ensure_future(self._heartbeat(job_id, attempt, lease))
        try:
            if handler is None:
                raise ValueError(f"no handler for job kind {kind!r}")
            result = await execute_job.options(num_cpus=0.25, name=f"job:{kind}:{job_id}").remote(
                job_id, attempt
            )
        except BaseException as exc:  # noqa: BLE001 - every failure of an attempt is recorded
            await asyncio.to_thread(self._record_failure, job_id, kind, attempt, owner, unwrap(exc))
        else:
            await asyncio.to_thread(self._record_success, job_id, kind, attempt, owner, result)
        finally:
            heartbeat.cancel()
            self.running.pop(job_id, None)
            self.kick()  # a slot is free: claim the next due job now, not at the next poll

    async def _heartbeat(self, job_id: str, attempt: int, lease: float) -> None:
        while True:
            await asyncio.sleep(lease / 3)
            await asyncio.to_thread(self._tx, lambda s: job_repo.extend_lease(s, job_id, attempt, lease))

    def _record_success(self, job_id: str, kind: str, attempt: int, owner: str | None, result: dict) -> None:
        with self.db.session() as session:
            if job_repo.succeed(session, job_id, attempt, result) and HANDLERS[kind].notify:
                webhooks.enqueue(
                    session,
                    self.settings,
                    event=f"{kind}.succeeded",
                    owner=owner,
                    data={"jobId": job_id, **result},
                )
        log.info("job %s (%s) attempt %d succeeded", job_id, kind, attempt)

    def _record_failure(
        self, job_id: str, kind: str, attempt: int, owner: str | None, exc: BaseException
    ) -> None:
        code = getattr(exc, "code", None) or type(exc).__name__
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        with self.db.session() as session:
            state = job_repo.fail(
                session,
                job_id,
                attempt,
                error_code=code,
                error=message,
                permanent=permanent(exc),
                base_s=self.settings.job_backoff_base_s,
                max_s=self.settings.job_backoff_max_s,
            )
            handler = HANDLERS.get(kind)
            if state == "dead" and handler is not None:
                job = session.get_one(Job, job_id)
                if handler.on_dead is not None:
                    handler.on_dead(session, job)
                if handler.notify:
                    webhooks.enqueue(
                        session,
                        self.settings,
                        event=f"{kind}.dead",
                        owner=owner,
                        data={"jobId": job_id, "error": job.last_error},
                    )
        log.warning("job %s (%s) attempt %d failed [%s]; now %s", job_id, kind, attempt, code, state)
