"""``recall token`` and ``recall audit``: self-hosters' tokens and the audit log."""

from __future__ import annotations

import json

import click

from recall_ray.cli import main
from recall_ray.config import get_settings


@main.group()
def token() -> None:
    """Self-hosters' HS256 tokens (signed with SECRET_KEY)."""


@token.command("create")
@click.option("--user", "user_id", required=True, help="the user id the token acts as")
@click.option("--ttl", default=3600, show_default=True, help="lifetime in seconds")
def token_create(user_id: str, ttl: int) -> None:
    """Print a bearer token for USER (for `Authorization: Bearer ...`)."""
    from flask_front.auth import SelfHostTokenVerifier

    click.echo(SelfHostTokenVerifier(get_settings()).issue(user_id, ttl_s=ttl))


@main.command("audit")
@click.option("--action", default=None, help="e.g. observation.create, face.opt_out, user.delete_data")
@click.option("--limit", default=50, show_default=True)
def audit_log(action: str | None, limit: int) -> None:
    """The audit log, newest first: actor, action, target, request id, outcome."""
    from recall_ray.database import Database
    from recall_ray.repositories import audit

    with Database.from_settings(get_settings()).session() as s:
        for row in audit.recent(s, action=action, limit=limit):
            click.echo(
                json.dumps(
                    {
                        "at": row.at.isoformat(timespec="seconds"),
                        "actor": row.actor,
                        "action": row.action,
                        "target": row.target,
                        "requestId": row.request_id,
                        "outcome": row.outcome,
                        "details": row.details,
                    },
                    ensure_ascii=False,
                )
            )
