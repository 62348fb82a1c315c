"""Deployment files checked without the machines they target: the Serve configs (structure, the one-GPU
memory budget), the systemd units (systemd-analyze verify), the Caddyfile (caddy validate, then Caddy itself
on loopback in front of the real Flask front), the KubeRay manifests (Kubernetes schemas and a schema of
the RayService fields used) and .env.example (every setting, and loading it gives the defaults)."""

import configparser
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import requests
import yaml
from ray.serve.schema import ServeDeploySchema

from deployments import serve_config
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
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


def test_serve_http_proxy_stays_on_loopback():
    for name in ("serve.cpu.yaml", "serve.gpu-1x.yaml"):
        assert yaml.safe_load((DEPLOY / name).read_text())["http_options"]["host"] == "127.0.0.1"


# --- systemd ------------------------------------------------------------------------------------------------

UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def test_units_are_well_formed_and_run_the_projects_own_commands():
    assert {u.name for u in UNITS} == {
        "recall-db.service",
        "recall-ray.service",
        "recall-gpu-worker.service",
        "recall-serve.service",
        "recall-front.service",
    }
    for unit in UNITS:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str
        parser.read(unit)
        assert {"Unit", "Service", "Install"} <= set(parser.sections()), unit
        service = parser["Service"]
        assert service["User"] == "recall" and service["EnvironmentFile"] == "/srv/recall/.env"
        assert service["ExecStart"].startswith("/srv/recall/.venv/bin/"), unit
    front = (DEPLOY / "systemd" / "recall-front.service").read_text()
    assert "RECALL_BIND=127.0.0.1:8000" in front and "gunicorn_conf.py flask_front.wsgi:app" in front


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_units_pass_systemd_analyze_verify(tmp_path):
    """The units as installed on a server, with /srv/recall pointing at this checkout (so every ExecStart
    binary exists); any warning fails, not just errors."""
    env_file = tmp_path / "recall.env"
    shutil.copy(ROOT / ".env.example", env_file)
    for unit in UNITS:
        text = unit.read_text().replace("/srv/recall/.env", str(env_file)).replace("/srv/recall", str(ROOT))
        (tmp_path / unit.name).write_text(text)
    out = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / u.name) for u in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and not out.stderr.strip() and not out.stdout.strip(), out.stderr + out.stdout


# --- Caddy --------------------------------------------------------------------------------------------------

CADDY = shutil.which("caddy")


@pytest.mark.skipif(CADDY is None, reason="caddy is not installed")
def test_caddyfile_validates():
    out = subprocess.run(
        [CADDY, "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and "Valid configuration" in out.stdout + out.stderr


@pytest.mark.skipif(CADDY is None, reason="caddy is not installed")
def test_caddy_exposes_the_api_over_tls_and_nothing_else(front_app, issuer, tmp_path):
    """Caddy from deploy/Caddyfile on loopback (its own CA), in front of the real Flask front: the API and
    health answer through it; /metrics, the Ray dashboard's and Serve proxy's paths and the rest are 404."""
    from werkzeug.serving import make_server

    from tests.auth_helpers import bearer

    backend = make_server("127.0.0.1", free_port(), front_app, threaded=True)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    https, http = free_port(), free_port()
    env = {
        **os.environ,
        "RECALL_SITE_ADDRESS": f"localhost:{https}",
        "RECALL_TLS": "internal",
        "RECALL_FRONT": f"127.0.0.1:{backend.server_port}",
        "RECALL_HTTPS_PORT": str(https),
        "RECALL_HTTP_PORT": str(http),
        "RECALL_CADDY_ADMIN": "off",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    caddy = subprocess.Popen(
        [CADDY, "run", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"https://localhost:{https}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(base + "/healthz", verify=False, timeout=2)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "Caddy did not come up"
                time.sleep(0.2)
        token = bearer(issuer.firebase_token("caddy-user"))
        assert requests.get(base + "/healthz", verify=False, timeout=10).json() == {"status": "ok"}
        assert requests.get(base + "/ai/ping", headers=token, verify=False, timeout=30).json() == {"ok": True}
        refused = requests.get(base + "/ai/ping", verify=False, timeout=10)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "AUTH_MISSING"
        for path in ("/metrics", "/", "/api/jobs/", "/api/serve/applications/", "/-/routes", "/storage/x"):
            assert requests.get(base + path, verify=False, timeout=10).status_code == 404, path
        # The front itself answers /metrics on loopback: it is Caddy that keeps it private.
        direct = requests.get(f"http://127.0.0.1:{backend.server_port}/metrics", timeout=10)
        assert direct.status_code == 200 and "recall_http_in_flight" in direct.text
        # Plain HTTP only redirects to HTTPS.
        plain = requests.get(f"http://localhost:{http}/ai/ping", allow_redirects=False, timeout=10)
        assert plain.status_code in (301, 308) and plain.headers["Location"].startswith("https://")
    finally:
        caddy.terminate()
        caddy.wait(timeout=30)
        backend.shutdown()


# --- KubeRay ------------------------------------------------------------------------------------------------

# The RayService fields these manifests use, as KubeRay's ray.io/v1 CRD defines them (no cluster is needed to
# check the structure; the CRD itself is not on this machine).
RAYSERVICE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayService"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["serveConfigV2", "rayClusterConfig"],
            "additionalProperties": False,
            "properties": {
                "serveConfigV2": {"type": "string"},
                "upgradeStrategy": {
                    "type": "object",
                    "properties": {
                        "type": {"enum": ["NewCluster", "None", "NewClusterWithIncrementalUpgrade"]}
                    },
                },
                "rayClusterConfig": {
                    "type": "object",
                    "required": ["headGroupSpec", "rayVersion"],
                    "additionalProperties": False,
                    "properties": {
                        "rayVersion": {"type": "string"},
                        "enableInTreeAutoscaling": {"type": "boolean"},
                        "headGroupSpec": {
                            "type": "object",
                            "required": ["rayStartParams", "template"],
                            "additionalProperties": False,
                            "properties": {
                                "rayStartParams": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "template": {"type": "object", "required": ["spec"]},
                            },
                        },
                        "workerGroupSpecs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["groupName", "rayStartParams", "template"],
                                "additionalProperties": False,
                                "properties": {
                                    "groupName": {"type": "string"},
                                    "replicas": {"type": "integer", "minimum": 0},
                                    "minReplicas": {"type": "integer", "minimum": 0},
                                    "maxReplicas": {"type": "integer", "minimum": 0},
                                    "rayStartParams": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                    "template": {"type": "object", "required": ["spec"]},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def pod(template: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": template["spec"]}


def test_rayservice_is_well_formed_and_serves_the_gpu_config():
    import kubernetes_validate

    doc = yaml.safe_load((DEPLOY / "kuberay" / "rayservice.yaml").read_text())
    jsonschema.validate(doc, RAYSERVICE_SCHEMA)
    cluster = doc["spec"]["rayClusterConfig"]
    import ray

    assert cluster["rayVersion"] == ray.__version__
    templates = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    for template in templates:
        kubernetes_validate.validate(pod(template), "1.30.0", strict=True)
    served = yaml.safe_load(doc["spec"]["serveConfigV2"])
    gpu = yaml.safe_load((DEPLOY / "serve.gpu-1x.yaml").read_text())
    assert served["applications"] == gpu["applications"]  # one source of truth for the application
    ServeDeploySchema.model_validate(served)
    groups = {g["groupName"]: g for g in cluster["workerGroupSpecs"]}
    gpu_limits = groups["gpu-h200"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu_limits["nvidia.com/gpu"] == 1 and groups["gpu-h200"]["rayStartParams"]["num-gpus"] == "1"
    assert cluster["headGroupSpec"]["rayStartParams"]["num-gpus"] == "0"


def test_front_deployment_follows_readyz():
    import kubernetes_validate

    docs = {d["kind"]: d for d in yaml.safe_load_all((DEPLOY / "kuberay" / "front.yaml").read_text())}
    assert set(docs) == {"Deployment", "Service", "PodDisruptionBudget"}
    for doc in docs.values():
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
    spec = docs["Deployment"]["spec"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    container = spec["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert not env["RAY_ADDRESS"].startswith("ray://") and env["RAY_ADDRESS"].startswith("recall-head-svc:")


# --- .env.example ------------------------------------------------------------------------------------------


def test_env_example_lists_every_setting_and_loads_as_the_defaults(monkeypatch, tmp_path):
    from recall_ray.config import Settings

    text = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    expected = {("RECALL_DATA_DIR" if f == "data_dir" else f.upper()) for f in Settings.model_fields}
    assert expected <= names, sorted(expected - names)
    for name in expected:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert Settings(_env_file=ROOT / ".env.example").model_dump() == Settings(_env_file=None).model_dump()
