"""Tesseract OCR (``jpn+eng``): the CPU reader of photos of text, and the second reader beside the VLM.

A photo of a poster is seldom straight or clean: the page is lightly denoised (a 3x3 median: sensor noise and
JPEG speckle break thin CJK strokes) and deskewed first, read once for its layout, and
every line Tesseract was unsure of is read again on its own, once as Japanese and once as English (a short
bold CJK title is often taken for Latin script by the mixed model); the most confident reading wins.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from pydantic import BaseModel

_CJK = r"\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
REREAD_BELOW = 0.85  # mean word confidence under which a line is read again on its own
REREAD_MARGIN = 0.05  # how much more confident a second reading must be to replace the first
MAX_SKEW_DEG = 8.0


class TextLine(BaseModel):
    text: str
    box: list[float]  # x1, y1, x2, y2 in pixels
    confidence: float | None  # 0..1; Florence-2 gives none
    engine: str


def join_cjk(text: str) -> str:
    """Tesseract's jpn model separates CJK characters with spaces; remove them, keep spaces in Latin text."""
    return _CJK_GAP.sub("", text).strip()


def deskew(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Rotate text lines level: the angle whose row profile of ink is sharpest (coarse, then fine)."""
    import cv2

    scale = min(1.0, 600 / max(gray.shape))
    small = 255 - cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = small.shape

    def sharpness(angle: float) -> float:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        rows = cv2.warpAffine(small, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0).sum(axis=1)
        return float(np.var(rows.astype(np.float64)))

    coarse = max(np.arange(-MAX_SKEW_DEG, MAX_SKEW_DEG + 0.01, 1.0), key=sharpness)
    best = float(max(np.arange(coarse - 0.75, coarse + 0.76, 0.25), key=sharpness))
    if abs(best) < 0.3:
        return gray, 0.0
    height, width = gray.shape
    m = cv2.getRotationMatrix2D((width / 2, height / 2), best, 1.0)
    fill = int(np.median(gray))
    return cv2.warpAffine(gray, m, (width, height), flags=cv2.INTER_CUBIC, borderValue=fill), best


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
        """Text lines with boxes (in the deskewed page) and mean word confidences, top to bottom."""
        import cv2

        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        page, _angle = deskew(cv2.medianBlur(gray, 3))
        out = []
        for words, confs, box in self._lines(page, self.languages, psm=3):
            text, confidence = join_cjk(" ".join(words)), float(np.mean(confs))
            if confidence < REREAD_BELOW:
                text, confidence = self._reread(page, box, text, confidence)
            if text and confidence >= self.min_confidence:
                out.append(
                    TextLine(
                        text=text, box=[float(v) for v in box], confidence=confidence, engine="tesseract"
                    )
                )
        return out

    def _reread(self, page: np.ndarray, box: list[int], text: str, confidence: float) -> tuple[str, float]:
        pad = 10
        x1, y1, x2, y2 = box
        crop = page[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad]
        for lang in self.languages.split("+"):
            for words, confs, _ in self._lines(crop, lang, psm=7):
                mean = float(np.mean(confs))
                if mean > confidence + REREAD_MARGIN:
                    text, confidence = join_cjk(" ".join(words)), mean
        return text, confidence

    @staticmethod
    def _lines(image: np.ndarray, lang: str, psm: int) -> list[tuple[list[str], list[float], list[int]]]:
        import pytesseract
        from PIL import Image

        data = pytesseract.image_to_data(
            Image.fromarray(image), lang=lang, config=f"--psm {psm}", output_type=pytesseract.Output.DICT
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
        return [(v["words"], v["confs"], v["box"]) for _, v in sorted(lines.items())]
