"""The ``recall`` application's ingress and its graphs composed through deployment handles.

- ingest:   image -> CLIP (every loaded version) and faces, concurrently
- schedule: image -> VLM + OCR text, plus faces, concurrently
- themes:   theme labels -> CLIP text vectors; prompt -> LLM text

The Flask front calls ``RecallIngress.api``; job tasks call the model graphs through ``ModelClient``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

log = logging.getLogger("recall.serve")
VERSIONS_TTL_S = 5.0  # how long the models' versions are cached; a reconfigure shows up after this


class ModelClient:
    """The four model deployments behind one object; the graphs are its methods."""

    def __init__(
        self, clip: DeploymentHandle, faces: DeploymentHandle, vlm: DeploymentHandle, llm: DeploymentHandle
    ):
        self.clip, self.faces, self.vlm, self.llm = clip, faces, vlm, llm
        self._versions: tuple[float, dict[str, Any]] | None = None

    @classmethod
    def from_app(cls, app_name: str = "recall") -> ModelClient:
        return cls(*(serve.get_deployment_handle(n, app_name) for n in ("Clip", "Faces", "Vlm", "Llm")))

    async def versions(self) -> dict[str, Any]:
        """Loaded versions: ``clip`` lists the CLIP versions, the default first."""
        cached = self._versions
        if cached is not None and time.monotonic() - cached[0] < VERSIONS_TTL_S:
            return cached[1]
        clip, faces, vlm, llm = await asyncio.gather(
            self.clip.info.remote(), self.faces.info.remote(), self.vlm.info.remote(), self.llm.info.remote()
        )
        others = [v for v in clip["versions"] if v != clip["version"]]
        out = {
            "clip": [clip["version"], *others],
            "faces": faces["version"],
            "vlm": vlm["version"],
            "ocr": vlm["ocr"],
            "vlm_random": vlm["random_weights"],
            "llm": llm["version"],
        }
        self._versions = (time.monotonic(), out)
        return out

    async def embed_text(self, text: str, version: str | None = None) -> dict[str, Any]:
        return await self.clip.embed_text.remote(text, version)

    async def embed_texts(self, texts: list[str], version: str | None = None) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self.clip.embed_text.remote(t, version) for t in texts)))

    async def embed_image(self, image: np.ndarray, version: str | None = None) -> dict[str, Any]:
        return await self.clip.embed_image.remote(image, version)

    async def analyze_faces(self, image: np.ndarray) -> dict[str, Any]:
        return await self.faces.analyze.remote(image)

    async def ingest(self, image: np.ndarray, with_faces: bool) -> dict[str, Any]:
        """CLIP vectors for every loaded version and, when asked, faces: all models run at the same time."""
        versions = (await self.versions())["clip"]
        clip_calls = [self.clip.embed_image.remote(image, v) for v in versions]
        faces_call = self.faces.analyze.remote(image) if with_faces else None
        clip = [await c for c in clip_calls]
        return {"clip": clip, "faces": await faces_call if faces_call is not None else None}

    async def read_schedule(self, image: np.ndarray, with_faces: bool) -> dict[str, Any]:
        """Text from the VLM and OCR, and faces for member matching, read concurrently."""
        read_call = self.vlm.read.remote(image)
        faces_call = self.faces.analyze.remote(image) if with_faces else None
        reading = await read_call
        return {"reading": reading, "faces": await faces_call if faces_call is not None else None}

    async def generate(self, request: dict[str, Any]) -> dict[str, Any]:
        return await self.llm.generate.remote(request)


@serve.deployment(name="Recall", max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.1})
class RecallIngress:
    """The front's entry point. ``user_config``: ``{"rollout": {"serving", "canary", "canary_percent"}}``."""

    def __init__(
        self,
        clip: DeploymentHandle,
        faces: DeploymentHandle,
        vlm: DeploymentHandle,
        llm: DeploymentHandle,
        jobs: DeploymentHandle,
    ):
        from recall_ray.config import get_settings
        from recall_ray.database import Database
        from recall_ray.services.context import Context
        from recall_ray.storage import storage_from_settings

        settings = get_settings()
        self.models = ModelClient(clip, faces, vlm, llm)
        self.jobs = jobs
        self.ctx = Context(
            settings, Database.from_settings(settings), storage_from_settings(settings), self.models
        )

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        from recall_ray.services.context import Rollout

        self.ctx.rollout = Rollout.model_validate(user_config.get("rollout") or {})

    async def api(
        self, operation: str, caller: dict[str, Any], payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One API operation for a caller: ``{"status": <HTTP status>, "body": <JSON>}``."""
        from recall_ray.services.api import run

        result = await run(self.ctx, operation, caller, payload or {})
        if result.get("kick_jobs"):
            self.jobs.kick.remote()  # new work: don't wait for the dispatcher's next poll
        return {"status": result["status"], "body": result["body"]}

    # The graphs, for operators, tests and benchmarks.
    async def noop(self) -> dict[str, Any]:
        return {"ok": True}

    async def embed_text(self, text: str, version: str | None = None) -> dict[str, Any]:
        return await self.models.embed_text(text, version)

    async def embed_image(self, image: np.ndarray, version: str | None = None) -> dict[str, Any]:
        return await self.models.embed_image(image, version)

    async def analyze_faces(self, image: np.ndarray) -> dict[str, Any]:
        return await self.models.analyze_faces(image)

    async def ingest(self, image: np.ndarray, with_faces: bool) -> dict[str, Any]:
        return await self.models.ingest(image, with_faces)

    async def schedule(self, image: np.ndarray, with_faces: bool = True) -> dict[str, Any]:
        return await self.models.read_schedule(image, with_faces)

    async def generate(self, request: dict[str, Any]) -> dict[str, Any]:
        return await self.models.generate(request)

    async def models_status(self) -> dict[str, Any]:
        """Each model deployment's loaded version; a failing deployment is reported, not raised."""
        names = ("clip", "faces", "vlm", "llm")
        results = await asyncio.gather(
            *(getattr(self.models, n).info.remote() for n in names),
            self.jobs.status.remote(),
            return_exceptions=True,
        )
        return {
            n: {"ok": False, "error": type(r).__name__} if isinstance(r, BaseException) else {"ok": True, **r}
            for n, r in zip((*names, "jobs"), results, strict=True)
        }

    async def __call__(self, request: Any) -> dict[str, Any]:
        """Serve's HTTP proxy (loopback only): ``/noop`` and ``/embed_text?q=...``, to measure the front."""
        path = request.url.path.rstrip("/")
        if path.endswith("/embed_text"):
            result = await self.models.embed_text(request.query_params.get("q", ""))
            return {"model_version": result["model_version"], "dim": result["dim"]}
        return {"ok": True}

    def check_health(self) -> None:
        # Only this replica's own state: a database outage is /readyz's to report, and must not make Serve
        # restart the ingress over and over.
        if self.ctx is None:
            raise RuntimeError("ingress not initialised")
