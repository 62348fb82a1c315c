"""Identifiers: ULIDs, optionally with a readable prefix (``obs_01H...``)."""

from __future__ import annotations

from ulid import ULID


def new_ulid() -> str:
    return str(ULID())


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"
