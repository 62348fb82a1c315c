"""The ``recall`` command line: database, serving, models, jobs and the demo, for operators and self-hosters.

Each group lives in its own module; domain errors print their code and message, never a stack trace.
"""

from __future__ import annotations

import sys

import click

from recall_ray.errors import RecallError


@click.group()
def main() -> None:
    """Recall AI backend."""


def redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def run() -> None:
    """Console entry point."""
    try:
        main(standalone_mode=True)
    except RecallError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        sys.exit(2)


from recall_ray.cli import admin, backfill, db, demo, jobs, models, serving  # noqa: E402, F401 - they register commands

if __name__ == "__main__":
    run()
