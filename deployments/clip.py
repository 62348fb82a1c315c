"""CLIP image and text embeddings (open_clip), batched with ``@serve.batch``."""

from __future__ import annotations

import asyncio
import threading
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
        model.eval()
        self.model, self.preprocess = model, preprocess
        self.tokenizer = open_clip.get_tokenizer(arch)
        self.dim = int(manifest.dim or 0)
        return self

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        import torch
        from PIL import Image

        batch = torch.stack([self.preprocess(Image.fromarray(img)) for img in images])
        with self._lock, torch.inference_mode():
            feats = self.model.encode_image(batch)
        return _normalise(feats.float().numpy())

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        tokens = self.tokenizer(texts)
        with self._lock, torch.inference_mode():
            feats = self.model.encode_text(tokens)
        return _normalise(feats.float().numpy())


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@serve.deployment(name="Clip", max_ongoing_requests=64, ray_actor_options={"num_cpus": 1})
class ClipDeployment:
    """Serve wrapper: batching is tuned and the model version switched through ``user_config``."""

    def __init__(self, model_root: str, version: str, torch_threads: int | None = None):
        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        self.model_root = Path(model_root)
        self.model = ClipModel(self.model_root, version).load()

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        version = user_config.get("version")
        if version and version != self.model.version:
            # Load beside the old model, then swap: batches already running keep their model object.
            self.model = ClipModel(self.model_root, version).load()
        if "max_batch_size" in user_config:
            self._images.set_max_batch_size(int(user_config["max_batch_size"]))
            self._texts.set_max_batch_size(int(user_config["max_batch_size"]))
        if "batch_wait_timeout_s" in user_config:
            self._images.set_batch_wait_timeout_s(float(user_config["batch_wait_timeout_s"]))
            self._texts.set_batch_wait_timeout_s(float(user_config["batch_wait_timeout_s"]))

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def _images(self, images: list[np.ndarray]) -> list[dict[str, Any]]:
        model = self.model
        vectors = await asyncio.to_thread(model.embed_images, images)
        return [{"vector": v, "model_version": model.version, "dim": model.dim} for v in vectors]

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def _texts(self, texts: list[str]) -> list[dict[str, Any]]:
        model = self.model
        vectors = await asyncio.to_thread(model.embed_texts, texts)
        return [{"vector": v, "model_version": model.version, "dim": model.dim} for v in vectors]

    async def embed_image(self, image: np.ndarray) -> dict[str, Any]:
        return await self._images(image)

    async def embed_text(self, text: str) -> dict[str, Any]:
        return await self._texts(text)

    async def embed_images_unbatched(self, images: list[np.ndarray]) -> list[dict[str, Any]]:
        """One forward over the caller's list, bypassing the request batcher (benchmarks, batch jobs)."""
        model = self.model
        vectors = await asyncio.to_thread(model.embed_images, images)
        return [{"vector": v, "model_version": model.version, "dim": model.dim} for v in vectors]

    def info(self) -> dict[str, Any]:
        return {"version": self.model.version, "dim": self.model.dim}

    def check_health(self) -> None:
        if getattr(self.model, "model", None) is None:
            raise RuntimeError("CLIP model is not loaded")
