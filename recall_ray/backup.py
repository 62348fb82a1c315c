"""Backups of the database (embedded or external): pg_dump's custom format, optionally encrypted with age or
gpg, and their restore with pg_restore.

The newest pg_dump/pg_restore at hand is used (the one bundled with the embedded server is PostgreSQL 16;
Debian's client may be older or newer), because pg_dump refuses servers newer than itself. Connection details
go to the tools through libpq's environment, so no password appears in a process list.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from recall_ray.config import Settings
from recall_ray.errors import ConfigError, RecallError

SUFFIXES = {"none": ".dump", "age": ".dump.age", "gpg": ".dump.gpg"}


class BackupFailed(RecallError):
    code = "AI_BACKUP_FAILED"
    status = 500


def _major(binary: str) -> int:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else 0


def pg_tool(name: str) -> str:
    """The newest ``pg_dump`` / ``pg_restore`` among the embedded server's and the system's."""
    candidates = []
    try:
        import pgserver

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / name
        if bundled.exists():
            candidates.append(str(bundled))
    except ImportError:
        pass
    if system := shutil.which(name):
        candidates.append(system)
    if not candidates:
        raise ConfigError(f"{name} not found: install postgresql-client", code="CONFIG_PG_TOOLS_MISSING")
    return max(candidates, key=_major)


def libpq_env(url: str) -> dict[str, str]:
    u = make_url(url)
    env = {**os.environ, "PGDATABASE": u.database or "postgres"}
    host = u.query.get("host") or u.host
    for key, value in (
        ("PGHOST", host),
        ("PGPORT", u.port),
        ("PGUSER", u.username),
        ("PGPASSWORD", u.password),
    ):
        if value:
            env[key] = str(value if not isinstance(value, tuple) else value[0])
    return env


def encryption(settings: Settings) -> str:
    if settings.backup_age_recipient and settings.backup_gpg_recipient:
        raise ConfigError(
            "set BACKUP_AGE_RECIPIENT or BACKUP_GPG_RECIPIENT, not both", code="CONFIG_BACKUP_ENCRYPTION"
        )
    if settings.backup_age_recipient:
        return "age"
    return "gpg" if settings.backup_gpg_recipient else "none"


def backup(settings: Settings, url: str, out: Path | None = None) -> Path:
    """Dump the database to ``out`` (default: a timestamped file in BACKUP_DIR); returns the file written."""
    method = encryption(settings)
    if out is None:
        directory = settings.backup_dir or settings.data_dir / "backups"
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        out = directory / f"recall-{stamp}{SUFFIXES[method]}"
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    dump = [pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--compress=6"]
    encrypt = {
        "none": None,
        "age": ["age", "--encrypt", "--recipient", str(settings.backup_age_recipient)],
        "gpg": ["gpg", "--batch", "--yes", "--encrypt", "--recipient", str(settings.backup_gpg_recipient)],
    }[method]
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as sink:
            if encrypt is None:
                _run([dump], libpq_env(url), stdout=sink)
            else:
                _run([dump, encrypt], libpq_env(url), stdout=sink)
        partial.replace(out)  # a backup file is complete or absent, never half written
    finally:
        partial.unlink(missing_ok=True)
    return out


def restore(settings: Settings, url: str, path: Path) -> None:
    """Restore a backup into the database at ``url`` (objects that exist are dropped and recreated)."""
    if not path.is_file():
        raise RecallError(f"no backup at {path}", code="AI_BACKUP_NOT_FOUND")
    env = libpq_env(url)
    restore_cmd = [pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--exit-on-error"]
    restore_cmd.append(f"--dbname={env['PGDATABASE']}")  # host, port and user come from the environment
    name = path.name
    if name.endswith(".age"):
        if not settings.backup_age_identity:
            raise ConfigError(
                "BACKUP_AGE_IDENTITY is needed to decrypt an age backup", code="CONFIG_BACKUP_KEY"
            )
        decrypt = ["age", "--decrypt", "--identity", str(settings.backup_age_identity), str(path)]
    elif name.endswith(".gpg"):
        decrypt = ["gpg", "--batch", "--quiet", "--decrypt", str(path)]
    else:
        decrypt = None
    if decrypt is None:
        _run([[*restore_cmd, str(path)]], env)
    else:
        _run([decrypt, restore_cmd], env)


def _run(stages: list[list[str]], env: dict[str, str], stdout=None) -> None:  # noqa: ANN001
    """A pipeline of commands; any stage failing fails the whole, with its own error text."""
    with contextlib.ExitStack() as files:
        procs: list[tuple[list[str], subprocess.Popen, Any]] = []
        prev = None
        for i, cmd in enumerate(stages):
            last = i == len(stages) - 1
            err = files.enter_context(tempfile.TemporaryFile())
            out = stdout if last else subprocess.PIPE
            p = subprocess.Popen(cmd, stdin=prev, stdout=out, stderr=err, env=env)
            if prev is not None:
                prev.close()  # the next stage owns the pipe now
            prev = None if last else p.stdout
            procs.append((cmd, p, err))
        errors = []
        for cmd, p, err in procs:
            if p.wait() != 0:
                err.seek(0)
                text = err.read().decode(errors="replace").strip()[-500:]
                errors.append(f"{Path(cmd[0]).name} exited {p.returncode}: {text}")
    if errors:
        raise BackupFailed("; ".join(errors))
