"""Face detection, 5-point alignment and ArcFace recognition (ONNX Runtime), batched across faces.

Production: insightface's SCRFD detector and ArcFace ``w600k_r50``.
Offline profile: OpenCV's Haar cascade (no landmarks: the face box is cropped square) and a generated
recognizer with ArcFace's input/output contract.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve

from recall_ray import model_registry

ARCFACE_SIZE = 112


@dataclass
class DetectedFace:
    bbox: list[float]  # x1, y1, x2, y2 in pixels of the given image
    score: float
    landmarks: list[list[float]] | None  # five (x, y) points: eyes, nose, mouth corners


class FaceModel:
    def __init__(self, model_root: Path, version: str, min_face_size: int = 40, min_score: float = 0.5):
        self.model_root = model_root
        self.version = version
        self.min_face_size = min_face_size
        self.min_score = min_score
        self.dim = 512
        self._lock = threading.Lock()

    def load(self) -> FaceModel:
        import onnxruntime as ort
        from insightface.model_zoo.arcface_onnx import ArcFaceONNX

        from deployments.gpu import onnx_providers

        manifest = model_registry.verify(self.model_root, self.version)
        directory = model_registry.model_dir(self.model_root, self.version)
        cfg = manifest.config
        providers = onnx_providers()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1

        def session(name: str) -> ort.InferenceSession:
            return ort.InferenceSession(str(directory / cfg[name]), options, providers=providers)

        self.detector_kind = cfg["detector"]
        if self.detector_kind == "haar":
            import cv2

            self.detector = cv2.CascadeClassifier(str(directory / cfg["detector_file"]))
            if self.detector.empty():
                raise RuntimeError(f"cannot read Haar cascade {directory / cfg['detector_file']}")
        else:
            from insightface.model_zoo.scrfd import SCRFD

            self.detector = SCRFD(str(directory / cfg["detector_file"]), session=session("detector_file"))
            size = int(cfg.get("det_size", 640))
            self.detector.prepare(-1, input_size=(size, size), det_thresh=self.min_score)
        recognizer = directory / cfg["recognizer_file"]
        self.recognizer = ArcFaceONNX(model_file=str(recognizer), session=session("recognizer_file"))
        self.dim = int(manifest.dim or 512)
        return self

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces in an RGB uint8 image, largest first, filtered by minimum size and score."""
        import cv2

        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        faces: list[DetectedFace] = []
        if self.detector_kind == "haar":
            gray = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
            boxes, _, weights = self.detector.detectMultiScale3(
                gray,
                scaleFactor=1.1,
                minNeighbors=5,
                minSize=(self.min_face_size, self.min_face_size),
                outputRejectLevels=True,
            )
            for (x, y, w, h), weight in zip(boxes, np.ravel(weights), strict=False):
                # The cascade's last-stage weight is unbounded; a logistic maps it to 0..1 for one threshold.
                score = float(1.0 / (1.0 + np.exp(-float(weight))))
                faces.append(DetectedFace([float(x), float(y), float(x + w), float(y + h)], score, None))
        else:
            with self._lock:
                dets, kpss = self.detector.detect(bgr, max_num=0)
            for i, det in enumerate(dets):
                x1, y1, x2, y2, score = (float(v) for v in det)
                kps = kpss[i].tolist() if kpss is not None else None
                faces.append(DetectedFace([x1, y1, x2, y2], score, kps))
        faces = [
            f
            for f in faces
            if f.score >= self.min_score
            and min(f.bbox[2] - f.bbox[0], f.bbox[3] - f.bbox[1]) >= self.min_face_size
        ]
        return sorted(faces, key=lambda f: -(f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))

    @staticmethod
    def align(image: np.ndarray, face: DetectedFace) -> np.ndarray:
        """A 112x112 RGB crop: insightface's norm_crop on the ArcFace template where landmarks exist."""
        import cv2

        if face.landmarks is not None:
            from insightface.utils.face_align import norm_crop

            return norm_crop(image, np.asarray(face.landmarks, dtype=np.float32), image_size=ARCFACE_SIZE)
        x1, y1, x2, y2 = face.bbox
        cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) / 2
        h, w = image.shape[:2]
        left, top = int(max(0, cx - half)), int(max(0, cy - half))
        right, bottom = int(min(w, cx + half)), int(min(h, cy + half))
        crop = image[top:bottom, left:right]
        return cv2.resize(crop, (ARCFACE_SIZE, ARCFACE_SIZE), interpolation=cv2.INTER_AREA)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """ArcFace embeddings of aligned RGB crops, L2-normalised; one ONNX run for the whole batch."""
        import cv2

        if not crops:
            return np.zeros((0, self.dim), np.float32)
        # ArcFaceONNX expects BGR input (it swaps to RGB itself).
        bgr = [cv2.cvtColor(c, cv2.COLOR_RGB2BGR) for c in crops]
        with self._lock:
            feats = np.asarray(self.recognizer.get_feat(bgr), dtype=np.float32)
        return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)


@serve.deployment(name="Faces", max_ongoing_requests=32, ray_actor_options={"num_cpus": 1})
class FacesDeployment:
    """``user_config``: ``version``, ``min_face_size``, ``min_score``, ``max_batch_size`` and
    ``batch_wait_timeout_s``."""

    def __init__(self, model_root: str, version: str, min_face_size: int = 40, min_score: float = 0.5):
        self.model_root = Path(model_root)
        self.model = FaceModel(self.model_root, version, min_face_size, min_score).load()

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        version = user_config.get("version", self.model.version)
        min_size = int(user_config.get("min_face_size", self.model.min_face_size))
        min_score = float(user_config.get("min_score", self.model.min_score))
        if version != self.model.version:
            self.model = FaceModel(self.model_root, version, min_size, min_score).load()
        self.model.min_face_size, self.model.min_score = min_size, min_score
        if "max_batch_size" in user_config:
            self._embed_batch.set_max_batch_size(int(user_config["max_batch_size"]))
        if "batch_wait_timeout_s" in user_config:
            self._embed_batch.set_batch_wait_timeout_s(float(user_config["batch_wait_timeout_s"]))

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)
    async def _embed_batch(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        model = self.model
        return list(await asyncio.to_thread(model.embed, crops))

    async def embed_crop(self, crop: np.ndarray) -> dict[str, Any]:
        """One aligned 112x112 RGB crop; concurrent calls share one recognizer batch."""
        if crop.shape != (ARCFACE_SIZE, ARCFACE_SIZE, 3):
            raise ValueError(f"aligned crops must be {ARCFACE_SIZE}x{ARCFACE_SIZE}x3, got {crop.shape}")
        return {"vector": await self._embed_batch(crop), "model_version": self.model.version}

    async def analyze(self, image: np.ndarray) -> dict[str, Any]:
        """Detect, align and embed every face in an RGB image."""
        model = self.model
        faces = await asyncio.to_thread(model.detect, image)
        crops = [model.align(image, f) for f in faces]
        vectors = await asyncio.gather(*(self._embed_batch(c) for c in crops))
        return {
            "model_version": model.version,
            "dim": model.dim,
            "faces": [
                {"bbox": f.bbox, "score": f.score, "landmarks": f.landmarks, "vector": v}
                for f, v in zip(faces, vectors, strict=True)
            ],
        }

    def info(self) -> dict[str, Any]:
        return {"version": self.model.version, "dim": self.model.dim}

    def check_health(self) -> None:
        if getattr(self.model, "recognizer", None) is None:
            raise RuntimeError("face models are not loaded")
