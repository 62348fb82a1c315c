"""The whole stack for a benchmark, on embedded defaults in a scratch data directory: PostgreSQL + pgvector,
local object storage, a local Ray with the Serve application from deploy/serve.cpu.yaml and, when asked,
gunicorn with the Flask front. Model weights are cached in bench/out/models between runs."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.common import OUT

MODEL_ROOT = OUT / "models"
# ViT-B-32 with random weights: the production CLIP's compute, for machines without its weights.
BENCH_CLIP = "openclip_vitb32_random@bench"
CPU_VERSIONS = {"clip": BENCH_CLIP}


def ensure_models(versions: dict[str, str] | None) -> None:
    from recall_ray.tiny_models import build_clip, ensure_built

    ensure_built(MODEL_ROOT)
    if (
        versions
        and BENCH_CLIP in versions.values()
        and not (MODEL_ROOT / BENCH_CLIP / "manifest.json").exists()
    ):
        build_clip(MODEL_ROOT, BENCH_CLIP, seed=0, arch="ViT-B-32")


@dataclass
class Stack:
    settings: Any
    data_dir: str
    base_url: str | None
    token: str | None
    front_pid: int | None

    def ingress(self):  # noqa: ANN201
        from ray import serve

        return serve.get_app_handle(self.settings.serve_app_name)


@contextlib.contextmanager
def stack(
    versions: dict[str, str] | None = None, front_workers: int = 0, profile: str = "tiny", serve: bool = True
) -> Iterator[Stack]:
    """The stack, torn down on exit; ``serve=False`` leaves out the Serve application (and the front)."""
    import ray
    from ray import serve as ray_serve

    from flask_front.auth import SelfHostTokenVerifier
    from recall_ray.cli.demo import free_port
    from recall_ray.cli.serving import connect_ray, deploy_app, prepare_database, start_front, wait_ready
    from recall_ray.config import get_settings
    from recall_ray.database import embedded_pgdata, stop_embedded

    if ray.is_initialized():
        raise RuntimeError("Ray is already initialised in this process: the stack must start its own")
    if profile == "tiny":
        ensure_models(versions)
    data_dir = tempfile.mkdtemp(prefix="recall-bench-")
    for name in ("DATABASE_URL", "RAY_ADDRESS", "S3_BUCKET", "S3_ENDPOINT", "REDIS_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "RECALL_DATA_DIR": data_dir,
            "RECALL_ENV": "development",
            "STORAGE_BACKEND": "local",
            "MODEL_PROFILE": profile,
            "MODEL_ROOT": os.environ.get("BENCH_MODEL_ROOT", str(MODEL_ROOT)),
            "RATE_LIMIT_USER": "1000000/minute",  # limits still run, but never refuse a benchmark
            "RATE_LIMIT_IP": "1000000/minute",
        }
    )
    get_settings.cache_clear()
    settings = get_settings()
    front = None
    try:
        prepare_database(settings)
        connect_ray(settings, start_local=True)
        if serve:
            deploy_app(settings, profile, versions)
        base_url = token = None
        if front_workers:
            port = free_port()
            base_url = f"http://127.0.0.1:{port}"
            front = start_front(
                ray.get_runtime_context().gcs_address, f"127.0.0.1:{port}", front_workers, True
            )
            wait_ready(base_url)
            token = SelfHostTokenVerifier(settings).issue("bench-user", ttl_s=6 * 3600)
        yield Stack(settings, data_dir, base_url, token, front.pid if front else None)
    finally:
        if front is not None:
            front.terminate()
            front.wait(timeout=30)
        with contextlib.suppress(Exception):
            ray_serve.shutdown()
        ray.shutdown()
        stop_embedded(embedded_pgdata(settings))
        shutil.rmtree(data_dir, ignore_errors=True)


def component(proc) -> str:  # noqa: ANN001 - a psutil.Process
    import psutil

    try:
        name = " ".join(proc.cmdline()) or proc.name()
    except (psutil.Error, OSError):
        return "other"
    if m := re.search(r"ServeReplica:recall:(\w+)", name):
        return f"replica {m.group(1)}"
    for pattern, label in (
        ("postgres", "PostgreSQL"),
        ("gunicorn", "gunicorn (Flask front)"),
        ("ServeController|ProxyActor", "Serve controller and proxy"),
        # A task worker's title is its current task, or IDLE between tasks.
        ("ray::job:|ray::IDLE|execute_job", "Ray task workers (ingest attempts)"),
        ("gcs_server|raylet|dashboard|log_monitor|monitor.py|runtime_env|ray::", "Ray"),
    ):
        if re.search(pattern, name):
            return label
    return "benchmark driver" if proc.pid == os.getpid() else "Ray"


def stack_processes(data_dir: str) -> list:
    """This process and its descendants (Ray, gunicorn), and PostgreSQL (a daemon, found by its data dir)."""
    import psutil

    me = psutil.Process()
    procs = {p.pid: p for p in [me, *me.children(recursive=True)]}
    for p in psutil.process_iter(["cmdline"]):
        if data_dir in " ".join(p.info["cmdline"] or []):
            procs.setdefault(p.pid, p)
            for c in p.children(recursive=True):
                procs.setdefault(c.pid, c)
    return list(procs.values())


def cpu_seconds(data_dir: str) -> dict[str, float]:
    """CPU seconds used so far, per component of the stack (compare two readings around a measurement)."""
    import psutil

    out: dict[str, float] = {}
    for p in stack_processes(data_dir):
        try:
            t = p.cpu_times()
        except (psutil.Error, OSError):
            continue
        name = component(p)
        out[name] = out.get(name, 0.0) + t.user + t.system
    return out
