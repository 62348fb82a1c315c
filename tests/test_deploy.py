"""Deployment files checked without the machines they target: the Serve configs (structure and the one-GPU
memory budget)."""

import re
from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from deployments import serve_config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
MODELS = ("Clip", "Faces", "Vlm", "Llm")


def deployments_of(name: str) -> dict[str, dict]:
    config = ServeDeploySchema.model_validate(yaml.safe_load((DEPLOY / name).read_text()))
    app = serve_config.app_config(config)
    return {d.name: d.model_dump(exclude_unset=True) for d in app.deployments}


@pytest.mark.parametrize("name", ["serve.cpu.yaml", "serve.gpu-1x.yaml"])
def test_serve_configs_are_valid_and_name_every_deployment(name):
    deployments = deployments_of(name)
    assert set(deployments) == {"Recall", "Jobs", *MODELS}
    for d in deployments.values():
        assert d["max_ongoing_requests"] >= 1 and "ray_actor_options" in d


def test_cpu_profile_asks_for_no_gpu():
    assert all("num_gpus" not in d["ray_actor_options"] for d in deployments_of("serve.cpu.yaml").values())


def test_one_gpu_profile_fits_every_model_and_the_backfill_share_on_one_device():
    deployments = deployments_of("serve.gpu-1x.yaml")
    shares = {n: deployments[n]["ray_actor_options"].get("num_gpus", 0.0) for n in deployments}
    assert all(shares[m] > 0 for m in MODELS) and shares["Recall"] == shares["Jobs"] == 0

    def most_replicas(d: dict) -> int:
        return d.get("autoscaling_config", {}).get("max_replicas") or d.get("num_replicas", 1)

    worst_case = sum(shares[n] * most_replicas(deployments[n]) for n in deployments)
    text = (DEPLOY / "serve.gpu-1x.yaml").read_text()
    backfill = float(re.search(r"backfill actors .*?(\d\.\d+)\s+[\d.]+\n", text).group(1))
    # Every replica at its autoscaling maximum plus the backfill actors still leave room for CUDA contexts.
    assert worst_case + backfill <= 0.9, worst_case + backfill
    # The budget table beside the config states the same shares the config asks for.
    rows = {"Clip": "CLIP ViT-B-32", "Faces": "SCRFD", "Vlm": "Florence-2", "Llm": "gpt-oss"}
    for model, row in rows.items():
        stated = float(re.search(rf"#\s+{re.escape(row)}.*?(\d\.\d+)\s+[\d.]+\n", text).group(1))
        assert stated == shares[model], (model, stated, shares[model])
