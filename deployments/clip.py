"""CLIP image and text embeddings (open_clip), batched with ``@serve.batch``.

A replica holds one or more model versions at once: during a rollout the serving version and the new one
embed side by side, so ingest writes both and a canary share of users can search with the new one.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve

from recall_ray import model_registry


class ClipModel:
    """One model version: ``load`` once, then ``embed_images`` / ``embed_texts`` (L2-normalised float32)."""

    def __init__(self, model_root: Path, version: str):
        self.model_root = model_root
        self.version = version
        self.dim: int = 0
        self._lock = threading.Lock()

    def load(self) -> ClipModel:
        import open_clip
        import torch

        manifest = model_registry.verify(self.model_root, self.version)
        directory = model_registry.model_dir(self.model_root, self.version)
        cfg = manifest.config
        arch = cfg["arch"]
        if "open_clip_config" in cfg:  # a project-defined architecture (tiny test models)
            open_clip.factory._MODEL_CONFIGS[arch] = cfg["open_clip_config"]
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None)
        weights = directory / cfg["weights"]
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(weights))
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        from deployments.gpu import torch_device

        self.device = torch_device()
        model = model.to(self.device).eval()
        if self.device == "cuda":
            model = model.half()
        self.model, self.preprocess = model, preprocess
        self.tokenizer = open_clip.get_tokenizer(arch)
        self.dim = int(manifest.dim or 0)
        return self

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        import torch
        from PIL import Image

        batch = torch.stack([self.preprocess(Image.fromarray(img)) for img in images]).to(self.device)
        if self.device == "cuda":
            batch = batch.half()
        with self._lock, torch.inference_mode():
            feats = self.model.encode_image(batch)
        return _normalise(feats.float().cpu().numpy())

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        tokens = self.tokenizer(texts).to(self.device)
        with self._lock, torch.inference_mode():
            feats = self.model.encode_text(tokens)
        return _normalise(feats.float().cpu().numpy())


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _result(model: ClipModel, vector: np.ndarray) -> dict[str, Any]:
    return {"vector": vector, "model_version": model.version, "dim": model.dim}


@serve.deployment(name="Clip", max_ongoing_requests=64, ray_actor_options={"num_cpus": 1})
class ClipDeployment:
    """Serve wrapper. ``user_config``: ``versions`` (the first is the default), ``max_batch_size``,
    ``batch_wait_timeout_s``, ``torch_threads`` (0: every core); Serve calls ``reconfigure`` on live replicas
    when only that changes."""

    def __init__(self, model_root: str, version: str):
        self.model_root = Path(model_root)
        self.models: dict[str, ClipModel] = {version: ClipModel(self.model_root, version).load()}
        self.default = version

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        if "torch_threads" in user_config:
            # Ray caps a replica's OMP threads at its CPU reservation (1 for a fractional one); the
            # reservation is a scheduling budget, the thread count is how much of the host a forward may use.
            import os

            import torch

            torch.set_num_threads(int(user_config["torch_threads"]) or os.cpu_count() or 1)
        versions = list(user_config.get("versions") or [self.default])
        # Load new versions beside the old ones, then swap the mapping in one assignment: batches already
        # running keep the model objects they took.
        loaded = {v: self.models.get(v) or ClipModel(self.model_root, v).load() for v in versions}
        self.models, self.default = loaded, versions[0]
        for batcher in (self._images, self._texts):
            if "max_batch_size" in user_config:
                batcher.set_max_batch_size(int(user_config["max_batch_size"]))
            if "batch_wait_timeout_s" in user_config:
                batcher.set_batch_wait_timeout_s(float(user_config["batch_wait_timeout_s"]))

    def _model(self, version: str | None) -> ClipModel:
        models = self.models
        model = models.get(version or self.default)
        if model is None:
            from recall_ray.errors import ModelUnavailable

            raise ModelUnavailable(
                f"CLIP version {version} is not loaded (loaded: {sorted(models)})",
                code="AI_MODEL_VERSION_NOT_LOADED",
            )
        return model

    async def _run_grouped(self, items: list[Any], versions: list[str | None], method: str) -> list[Any]:
        """One forward per model version present in the batch, results back in request order."""
        groups: dict[str, list[int]] = defaultdict(list)
        models = {}
        for i, v in enumerate(versions):
            model = self._model(v)
            models[model.version] = model
            groups[model.version].append(i)
        out: list[Any] = [None] * len(items)
        for version, idx in groups.items():
            model = models[version]
            vectors = await asyncio.to_thread(getattr(model, method), [items[i] for i in idx])
            for i, vec in zip(idx, vectors, strict=True):
                out[i] = _result(model, vec)
        return out

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def _images(self, images: list[np.ndarray], versions: list[str | None]) -> list[dict[str, Any]]:
        return await self._run_grouped(images, versions, "embed_images")

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def _texts(self, texts: list[str], versions: list[str | None]) -> list[dict[str, Any]]:
        return await self._run_grouped(texts, versions, "embed_texts")

    async def embed_image(self, image: np.ndarray, version: str | None = None) -> dict[str, Any]:
        self._model(version)  # an unknown version fails this request alone, not the batch it would join
        return await self._images(image, version)

    async def embed_text(self, text: str, version: str | None = None) -> dict[str, Any]:
        self._model(version)
        return await self._texts(text, version)

    async def embed_images_unbatched(
        self, images: list[np.ndarray], version: str | None = None
    ) -> list[dict[str, Any]]:
        """One forward over the caller's list, bypassing the request batcher (benchmarks, batch jobs)."""
        model = self._model(version)
        vectors = await asyncio.to_thread(model.embed_images, images)
        return [_result(model, v) for v in vectors]

    def info(self) -> dict[str, Any]:
        import torch

        return {
            "threads": torch.get_num_threads(),
            "version": self.default,
            "dim": self.models[self.default].dim,
            "versions": {v: m.dim for v, m in self.models.items()},
        }

    def check_health(self) -> None:
        if not self.models or any(getattr(m, "model", None) is None for m in self.models.values()):
            raise RuntimeError("CLIP model is not loaded")
