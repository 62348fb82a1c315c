"""Reading images: Florence-2 (OCR with regions, detailed caption) and Tesseract OCR (``deployments.ocr``).

Tesseract is the CPU path and a second reader beside the VLM; every text line says which engine read it.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve

from deployments.ocr import TesseractReader, TextLine
from recall_ray import model_registry


class Florence2Reader:
    def __init__(self, model_root: Path, version: str, max_new_tokens: int = 256):
        self.model_root = model_root
        self.version = version
        self.max_new_tokens = max_new_tokens
        self._lock = threading.Lock()

    def load(self) -> Florence2Reader:
        import torch
        from transformers import Florence2ForConditionalGeneration, Florence2Processor

        model_registry.verify(self.model_root, self.version)
        directory = model_registry.model_dir(self.model_root, self.version)
        from deployments.gpu import torch_device

        self.device = torch_device()
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        self.model = Florence2ForConditionalGeneration.from_pretrained(directory, dtype=dtype).to(self.device)
        self.model.eval()
        self.processor = Florence2Processor.from_pretrained(directory)
        self.dtype = dtype
        return self

    def _run(self, image: np.ndarray, task: str) -> Any:
        import torch
        from PIL import Image

        pil = Image.fromarray(image)
        inputs = self.processor(text=task, images=pil, return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with self._lock, torch.inference_mode():
            ids = self.model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1
            )
        text = self.processor.batch_decode(ids, skip_special_tokens=False)[0]
        return self.processor.post_process_generation(text, task=task, image_size=pil.size)[task]

    def read(self, image: np.ndarray) -> list[TextLine]:
        parsed = self._run(image, "<OCR_WITH_REGION>")
        lines = []
        for quad, label in zip(parsed.get("quad_boxes", []), parsed.get("labels", []), strict=False):
            text = label.replace("</s>", "").replace("<s>", "").strip()
            if not text:
                continue
            xs, ys = quad[0::2], quad[1::2]
            lines.append(
                TextLine(
                    text=text,
                    box=[float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))],
                    confidence=None,
                    engine="florence2",
                )
            )
        return lines

    def caption(self, image: np.ndarray) -> str:
        result = self._run(image, "<DETAILED_CAPTION>")
        return str(result).replace("</s>", "").replace("<s>", "").strip()


@serve.deployment(name="Vlm", max_ongoing_requests=8, ray_actor_options={"num_cpus": 1})
class VlmDeployment:
    """Both readers in one replica: the VLM for layout and captions, Tesseract for dependable text."""

    def __init__(self, model_root: str, version: str, languages: str = "jpn+eng", use_vlm: bool = True):
        self.model_root = Path(model_root)
        self.tesseract = TesseractReader(languages).load()
        self.florence = Florence2Reader(self.model_root, version).load() if use_vlm else None
        self.version = version
        self.reads = 0  # images read by this replica, for operators (and to prove cached results skip it)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        version = user_config.get("version")
        if version and version != self.version:
            self.florence = Florence2Reader(self.model_root, version).load()
            self.version = version
        if "max_new_tokens" in user_config and self.florence is not None:
            self.florence.max_new_tokens = int(user_config["max_new_tokens"])

    async def read(
        self, image: np.ndarray, engines: tuple[str, ...] = ("tesseract", "florence2")
    ) -> dict[str, Any]:
        self.reads += 1
        florence = self.florence
        readers = [self.tesseract.read] if "tesseract" in engines else []
        if "florence2" in engines and florence is not None:
            readers.append(florence.read)
        caption_call = (
            asyncio.to_thread(florence.caption, image) if florence is not None else asyncio.sleep(0)
        )
        *results, caption = await asyncio.gather(
            *(asyncio.to_thread(r, image) for r in readers), caption_call
        )
        return {
            "lines": [line.model_dump() for lines in results for line in lines],
            "caption": caption,
            "model_versions": {"vlm": self.version if florence else None, "ocr": self.tesseract.version},
        }

    def info(self) -> dict[str, Any]:
        entry = model_registry.CATALOGUE.get(self.version)
        return {
            "version": self.version if self.florence else None,
            "ocr": self.tesseract.version,
            # A test model's text is noise: callers store it but do not parse it.
            "random_weights": bool(entry and entry.tiny),
            "reads": self.reads,
        }

    def check_health(self) -> None:
        if self.tesseract is None:
            raise RuntimeError("OCR is not loaded")
