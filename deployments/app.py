"""Application builder for the ``recall`` Serve application (``import_path: deployments.app:build``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from ray.serve import Application

from deployments.clip import ClipDeployment
from deployments.faces import FacesDeployment
from deployments.graphs import RecallIngress
from deployments.jobs import JobsDeployment
from deployments.llm import LlmDeployment
from deployments.vlm import VlmDeployment
from recall_ray import model_registry


class AppArgs(BaseModel):
    """``args`` of the serve config; anything unset comes from the settings (environment).

    Model versions switch through each deployment's ``user_config`` (a lightweight update), not here:
    changing args replaces every replica.
    """

    profile: str | None = None
    model_root: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)  # initial version per task: clip, faces, vlm, llm
    use_vlm: bool = True


def build(args: dict[str, Any] | None = None) -> Application:
    from recall_ray.config import get_settings

    parsed = AppArgs.model_validate(args or {})
    settings = get_settings()
    profile = parsed.profile or settings.model_profile
    root = Path(parsed.model_root) if parsed.model_root else settings.effective_model_root
    versions = dict(model_registry.PROFILE_DEFAULTS[profile])
    if profile == "gpu":
        versions["llm"] = settings.vllm_model_name
    versions.update(parsed.versions)
    if any(model_registry.is_tiny(v) for v in versions.values()):
        from recall_ray.tiny_models import ensure_built

        ensure_built(root)
    # Fail here, where the app is built, with the path and the fix, before any replica starts.
    for version in versions.values():
        model_registry.verify(root, version, checksums=False)
    clip = ClipDeployment.bind(str(root), versions["clip"])
    faces = FacesDeployment.bind(
        str(root), versions["faces"], settings.min_face_size, settings.min_face_score
    )
    vlm = VlmDeployment.bind(str(root), versions["vlm"], use_vlm=parsed.use_vlm)
    llm = LlmDeployment.bind(
        str(root), versions["llm"], settings.vllm_max_model_len, settings.vllm_tensor_parallel_size
    )
    return RecallIngress.bind(clip, faces, vlm, llm, JobsDeployment.bind())
