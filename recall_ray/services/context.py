"""What a service needs: settings, the database, object storage, the models and the rollout state."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
from pydantic import BaseModel, Field

from recall_ray.config import Settings
from recall_ray.database import Database
from recall_ray.storage import ObjectStorage

T = TypeVar("T")


class Models(Protocol):
    """The model graphs, implemented over Serve deployment handles (``deployments.graphs.ModelClient``)."""

    async def embed_text(self, text: str, version: str | None = None) -> dict[str, Any]: ...
    async def embed_texts(self, texts: list[str], version: str | None = None) -> list[dict[str, Any]]: ...
    async def ingest(self, image: np.ndarray, with_faces: bool) -> dict[str, Any]: ...
    async def analyze_faces(self, image: np.ndarray) -> dict[str, Any]: ...
    async def read_schedule(self, image: np.ndarray, with_faces: bool) -> dict[str, Any]: ...
    async def generate(self, request: dict[str, Any]) -> dict[str, Any]: ...
    async def versions(self) -> dict[str, Any]: ...


class Rollout(BaseModel):
    """Which image-model version answers searches: ``serving`` for everyone, ``canary`` for a share of users.

    ``None`` means the CLIP deployment's default version. Set through the ingress's Serve ``user_config``.
    """

    serving: str | None = None
    canary: str | None = None
    canary_percent: int = Field(default=0, ge=0, le=100)
    previous: str | None = None  # what served before the last switch: the rollback target

    def version_for(self, user_id: str | None) -> str | None:
        if self.canary and self.canary_percent and user_id is not None:
            bucket = int(hashlib.sha256(user_id.encode()).hexdigest()[:8], 16) % 100
            if bucket < self.canary_percent:
                return self.canary
        return self.serving


@dataclass
class Context:
    settings: Settings
    db: Database
    storage: ObjectStorage
    models: Models
    rollout: Rollout = field(default_factory=Rollout)

    async def tx(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(session, *args)`` in one transaction, on a thread (the event loop keeps serving)."""

        def run() -> T:
            with self.db.session() as session:
                return fn(session, *args)

        return await asyncio.to_thread(run)
