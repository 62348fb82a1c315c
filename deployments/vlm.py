"""Reading images: Florence-2 (OCR with regions, detailed caption) and Tesseract OCR (jpn+eng).

Tesseract is the CPU path and a second reader beside the VLM; every text line says which engine read it.
"""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from ray import serve

from recall_ray import model_registry

_CJK = r"\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")


class TextLine(BaseModel):
    text: str
    box: list[float]  # x1, y1, x2, y2 in pixels
    confidence: float | None  # 0..1; Florence-2 gives none
    engine: str


def join_cjk(text: str) -> str:
    """Tesseract's jpn model separates CJK characters with spaces; remove them, keep spaces in Latin text."""
    return _CJK_GAP.sub("", text).strip()


class TesseractReader:
    def __init__(self, languages: str = "jpn+eng", min_confidence: float = 0.0):
        self.languages = languages
        self.min_confidence = min_confidence

    def load(self) -> TesseractReader:
        import pytesseract

        available = set(pytesseract.get_languages(config=""))
        missing = [lang for lang in self.languages.split("+") if lang not in available]
        if missing:
            raise RuntimeError(
                f"Tesseract language data missing: {missing}; install Debian packages "
                + " ".join(f"tesseract-ocr-{m}" for m in missing)
            )
        self.version = f"tesseract@{pytesseract.get_tesseract_version()}"
        return self

    def read(self, image: np.ndarray) -> list[TextLine]:
        import pytesseract
        from PIL import Image

        data = pytesseract.image_to_data(
            Image.fromarray(image), lang=self.languages, config="--psm 3", output_type=pytesseract.Output.DICT
        )
        lines: dict[tuple[int, int, int], dict[str, Any]] = {}
        for i, word in enumerate(data["text"]):
            conf = float(data["conf"][i])
            if not word.strip() or conf < 0:
                continue
            key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
            x, y, w, h = data["left"][i], data["top"][i], data["width"][i], data["height"][i]
            line = lines.setdefault(key, {"words": [], "confs": [], "box": [x, y, x + w, y + h]})
            line["words"].append(word)
            line["confs"].append(conf / 100.0)
            b = line["box"]
            line["box"] = [min(b[0], x), min(b[1], y), max(b[2], x + w), max(b[3], y + h)]
        out = []
        for key in sorted(lines):
            line = lines[key]
            confidence = float(np.mean(line["confs"]))
            text = join_cjk(" ".join(line["words"]))
            if text and confidence >= self.min_confidence:
                out.append(
                    TextLine(
                        text=text,
                        box=[float(v) for v in line["box"]],
                        confidence=confidence,
                        engine="tesseract",
                    )
                )
        return out


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
        tasks = []
        if "tesseract" in engines:
            tasks.append(asyncio.to_thread(self.tesseract.read, image))
        florence = self.florence
        if "florence2" in engines and florence is not None:
            tasks.append(asyncio.to_thread(florence.read, image))
        caption_task = asyncio.to_thread(florence.caption, image) if florence is not None else None
        results = await asyncio.gather(*tasks)
        caption = await caption_task if caption_task is not None else None
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
        }

    def check_health(self) -> None:
        if self.tesseract is None:
            raise RuntimeError("OCR is not loaded")
