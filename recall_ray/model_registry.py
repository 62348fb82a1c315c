"""Versioned models under MODEL_ROOT.

Layout: ``MODEL_ROOT/<name>@<version>/`` holds the weight files and ``manifest.json``:

    {"name": "openclip_vitb32", "version": "2025-08", "task": "clip", "dim": 512,
     "licence": "MIT", "source": "hf://laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
     "config": {...engine settings...},
     "files": [{"path": "open_clip_pytorch_model.bin", "sha256": "...", "size": 605223294}]}

A deployment verifies its version (every file present with its checksum) before it loads anything and refuses
to start otherwise, with an error that names the path and the command that fixes it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from recall_ray.errors import BadRequest, ModelUnavailable

Task = Literal["clip", "faces", "vlm", "llm"]


class ManifestFile(BaseModel):
    path: str
    sha256: str
    size: int


class Manifest(BaseModel):
    name: str
    version: str
    task: Task
    dim: int | None = None
    licence: str
    source: str
    config: dict[str, Any] = Field(default_factory=dict)
    files: list[ManifestFile]

    @property
    def full_name(self) -> str:
        return f"{self.name}@{self.version}"


class CatalogueEntry(BaseModel):
    """What ``recall models pull`` knows how to fetch (or, for tiny models, build)."""

    task: Task
    dim: int | None
    licence: str
    source: str
    hub_repo: str | None = None
    hub_files: list[str] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)
    tiny: bool = False


CATALOGUE: dict[str, CatalogueEntry] = {
    "openclip_vitb32@2025-08": CatalogueEntry(
        task="clip",
        dim=512,
        licence="MIT",
        source="hf://laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        hub_repo="laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        hub_files=["open_clip_pytorch_model.bin"],
        config={"arch": "ViT-B-32", "weights": "open_clip_pytorch_model.bin"},
    ),
    "insightface_buffalo_l@2023-01": CatalogueEntry(
        task="faces",
        dim=512,
        licence="non-commercial research (insightface model licence)",
        source="hf://public-data/insightface (buffalo_l: SCRFD-10GF + ArcFace w600k_r50)",
        hub_repo="public-data/insightface",
        hub_files=["models/buffalo_l/det_10g.onnx", "models/buffalo_l/w600k_r50.onnx"],
        config={
            "detector": "scrfd",
            "detector_file": "models/buffalo_l/det_10g.onnx",
            "recognizer_file": "models/buffalo_l/w600k_r50.onnx",
            "det_size": 640,
        },
    ),
    "florence2_base@2024-06": CatalogueEntry(
        task="vlm",
        dim=None,
        licence="MIT",
        source="hf://florence-community/Florence-2-base",
        hub_repo="florence-community/Florence-2-base",
        hub_files=[
            "config.json",
            "generation_config.json",
            "model.safetensors",
            "preprocessor_config.json",
            "processor_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "vocab.json",
            "merges.txt",
        ],
        config={"engine": "florence2"},
    ),
    "gpt-oss-20b@2025-08": CatalogueEntry(
        task="llm",
        dim=None,
        licence="Apache-2.0",
        source="hf://openai/gpt-oss-20b",
        hub_repo="openai/gpt-oss-20b",
        hub_files=[
            "config.json",
            "generation_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "chat_template.jinja",
            "model-00000-of-00002.safetensors",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
        ],
        config={"engine": "vllm"},
    ),
    # Production architecture with random weights: the same compute as openclip_vitb32, for benchmarks on
    # machines without the real weights (bench/models.py builds it). Its vectors mean nothing.
    "openclip_vitb32_random@bench": CatalogueEntry(
        task="clip",
        dim=512,
        licence="project benchmark model",
        source="built offline by bench/models.py (ViT-B-32 architecture, random weights)",
        config={"arch": "ViT-B-32"},
    ),
    # Offline test models: real model code, random weights, built by `recall models build-tiny`.
    "openclip_tiny@test-1": CatalogueEntry(
        task="clip",
        dim=64,
        licence="project test model",
        source="built offline (random weights, seed 1)",
        tiny=True,
    ),
    "openclip_tiny@test-2": CatalogueEntry(
        task="clip",
        dim=64,
        licence="project test model",
        source="built offline (random weights, seed 2)",
        tiny=True,
    ),
    "faces_tiny@test-1": CatalogueEntry(
        task="faces",
        dim=512,
        licence="project test model",
        source="OpenCV Haar cascade + generated ONNX recognizer",
        tiny=True,
    ),
    "florence2_tiny@test-1": CatalogueEntry(
        task="vlm",
        dim=None,
        licence="project test model",
        source="built offline (random Florence-2 config)",
        tiny=True,
    ),
    "llm_tiny@test-1": CatalogueEntry(
        task="llm",
        dim=None,
        licence="project test model",
        source="built offline (random Llama config, trained BPE)",
        tiny=True,
    ),
}

PROFILE_DEFAULTS: dict[str, dict[str, str]] = {
    "tiny": {
        "clip": "openclip_tiny@test-1",
        "faces": "faces_tiny@test-1",
        "vlm": "florence2_tiny@test-1",
        "llm": "llm_tiny@test-1",
    },
    "cpu": {
        "clip": "openclip_vitb32@2025-08",
        "faces": "insightface_buffalo_l@2023-01",
        "vlm": "florence2_base@2024-06",
        "llm": "llm_tiny@test-1",
    },
    "gpu": {
        "clip": "openclip_vitb32@2025-08",
        "faces": "insightface_buffalo_l@2023-01",
        "vlm": "florence2_base@2024-06",
        "llm": "gpt-oss-20b@2025-08",
    },
}


def is_tiny(full: str) -> bool:
    entry = CATALOGUE.get(full)
    return entry is not None and entry.tiny


def split_version(full: str) -> tuple[str, str]:
    if full.count("@") != 1 or not all(full.split("@")):
        raise BadRequest(f"model {full!r} must be written name@version", code="AI_MODEL_VERSION_INVALID")
    name, version = full.split("@")
    return name, version


def model_dir(root: Path, full: str) -> Path:
    split_version(full)
    return root / full


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(
    root: Path, full: str, *, files: list[str], config: dict[str, Any] | None = None
) -> Manifest:
    """Checksum ``files`` (relative to the version's directory) and write its manifest."""
    entry = CATALOGUE.get(full)
    if entry is None:
        raise BadRequest(f"{full} is not in the model catalogue", code="AI_MODEL_UNKNOWN")
    name, version = split_version(full)
    directory = model_dir(root, full)
    manifest = Manifest(
        name=name,
        version=version,
        task=entry.task,
        dim=entry.dim,
        licence=entry.licence,
        source=entry.source,
        config={**entry.config, **(config or {})},
        files=[
            ManifestFile(path=f, sha256=sha256_file(directory / f), size=(directory / f).stat().st_size)
            for f in sorted(files)
        ],
    )
    (directory / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    return manifest


def _fix_for(full: str) -> str:
    entry = CATALOGUE.get(full)
    if entry is not None and entry.tiny:
        return "run `recall models build-tiny`"
    if entry is not None and entry.hub_repo is None:
        return f"build it ({entry.source})"
    return (
        f"run `recall models pull {full}` on a machine that can reach the model hub, then copy the directory"
    )


def verify(root: Path, full: str, *, checksums: bool = True) -> Manifest:
    """The manifest of a complete, intact model version; raises ModelUnavailable naming the path and fix."""
    directory = model_dir(root, full)
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise ModelUnavailable(
            f"model {full} is missing: no manifest at {manifest_path}; {_fix_for(full)}",
            code="AI_MODEL_WEIGHTS_MISSING",
            details={"path": str(manifest_path), "model": full},
        )
    manifest = Manifest.model_validate(json.loads(manifest_path.read_text()))
    for f in manifest.files:
        path = directory / f.path
        if not path.is_file():
            raise ModelUnavailable(
                f"model {full} is incomplete: {path} is missing; {_fix_for(full)}",
                code="AI_MODEL_WEIGHTS_MISSING",
                details={"path": str(path), "model": full},
            )
        if checksums and (path.stat().st_size != f.size or sha256_file(path) != f.sha256):
            raise ModelUnavailable(
                f"model {full}: {path} fails its checksum (corrupt or replaced); {_fix_for(full)}",
                code="AI_MODEL_CHECKSUM",
                details={"path": str(path), "model": full},
            )
    return manifest


def installed(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file())


def pull(root: Path, full: str) -> Manifest:
    """Fetch a catalogued version from the model hub (needs network access to it)."""
    entry = CATALOGUE.get(full)
    if entry is None:
        raise BadRequest(f"{full} is not in the model catalogue", code="AI_MODEL_UNKNOWN")
    if entry.tiny or entry.hub_repo is None:
        raise BadRequest(f"{full} is built offline: {_fix_for(full)}", code="AI_MODEL_NOT_PULLABLE")
    from huggingface_hub import hf_hub_download

    directory = model_dir(root, full)
    directory.mkdir(parents=True, exist_ok=True)
    for f in entry.hub_files:
        hf_hub_download(entry.hub_repo, f, local_dir=directory)
    return write_manifest(root, full, files=entry.hub_files)
