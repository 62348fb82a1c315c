"""``recall up`` and ``recall serve``: the Serve application on Ray, and gunicorn with the Flask front.

``recall up`` on a workstation runs the same processes with the same settings as the systemd layout on a
server (deploy/systemd): PostgreSQL (embedded unless DATABASE_URL), a Ray head (local unless RAY_ADDRESS),
the Serve application from deploy/serve.<profile>.yaml, and gunicorn.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from recall_ray.cli import main, redact
from recall_ray.config import Settings, get_settings

FRONT_CONFIG = Path(__file__).resolve().parents[2] / "flask_front" / "gunicorn_conf.py"


def connect_ray(settings: Settings, *, start_local: bool) -> bool:
    """Join RAY_ADDRESS, or start a local Ray head; True when this process owns the local head."""
    import ray

    if ray.is_initialized():  # already a driver (the tests, or a command that connected first)
        return False
    if settings.ray_address:
        ray.init(address=settings.ray_address, namespace="recall", log_to_driver=False)
        return False
    if not start_local:
        ray.init(address="auto", namespace="recall", log_to_driver=False)
        return False
    ray.init(
        address="local",  # a new head of our own, never a cluster some other process started here
        _node_ip_address="127.0.0.1",  # its ports on loopback, as `recall ray-head` has them
        num_cpus=head_cpus(),
        namespace="recall",
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        log_to_driver=False,
    )
    return True


def head_cpus() -> int:
    """The Ray head's logical CPUs, for `recall up` and `recall ray-head` alike: at least 4, because the CPU
    profile's replicas reserve fractions and each ingest task a quarter; the threads are not capped by it."""
    return max(4, os.cpu_count() or 1)


@main.command("ray-head")
@click.option(
    "--num-gpus", type=int, default=None, help="GPUs the head offers (0 when a GPU worker owns them)"
)
def ray_head(num_gpus: int | None) -> None:
    """Run the Ray head in the foreground (systemd's recall-ray.service), as `recall up` starts it."""
    ray = Path(sys.executable).with_name("ray")
    args = [str(ray), "start", "--head", "--block", "--port=6379", "--node-ip-address=127.0.0.1"]
    args += ["--dashboard-host=127.0.0.1", "--dashboard-port=8265", "--metrics-export-port=8080"]
    args.append(f"--num-cpus={head_cpus()}")
    if num_gpus is not None:
        args.append(f"--num-gpus={num_gpus}")
    os.execv(args[0], args)


def deploy_app(settings: Settings, profile: str | None, versions: dict[str, str] | None = None) -> float:
    """Deploy deploy/serve.<profile>.yaml (``versions`` overrides the profile's model per task)."""
    from deployments import serve_config

    profile = profile or settings.model_profile
    t0 = time.monotonic()
    config = serve_config.load_config(
        serve_config.config_path(profile),
        profile=profile,
        model_root=str(settings.effective_model_root),
        versions=versions,
    )
    serve_config.deploy(config)
    return time.monotonic() - t0


def start_front(gcs_address: str, bind: str, workers: int, quiet: bool = False) -> subprocess.Popen:
    """gunicorn with the Flask front; its workers join the Ray cluster at ``gcs_address`` after fork."""
    env = {**os.environ, "RAY_ADDRESS": gcs_address, "RECALL_BIND": bind, "GUNICORN_WORKERS": str(workers)}
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(FRONT_CONFIG), "flask_front.wsgi:app"]
    return subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL if quiet else None)


def wait_ready(base_url: str, timeout_s: float = 120) -> None:
    """Until the front's /readyz answers 200 (database, Serve and every model deployment are up)."""
    import requests

    from recall_ray.errors import Unavailable

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(base_url + "/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise Unavailable(
        f"the front at {base_url} was not ready after {timeout_s:.0f}s", code="AI_FRONT_NOT_READY"
    )


def prepare_database(settings: Settings) -> str:
    from recall_ray import migrate
    from recall_ray.database import Database

    database = Database.from_settings(settings)
    migrate.upgrade(database.url)
    database.dispose()
    return database.url


@main.command("up")
@click.option(
    "--profile", type=click.Choice(["tiny", "cpu", "gpu"]), default=None, help="default: MODEL_PROFILE"
)
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="gunicorn's address")
@click.option("--workers", default=2, show_default=True, help="gunicorn workers")
@click.option("--no-front", is_flag=True, help="Ray Serve only, no gunicorn")
def up(profile: str | None, bind: str, workers: int, no_front: bool) -> None:
    """Start everything in the foreground; Ctrl-C stops what this command started."""
    settings = get_settings()
    t0 = time.monotonic()
    url = prepare_database(settings)
    click.echo(f"database ready and migrated ({redact(url)})")
    owns_ray = connect_ray(settings, start_local=True)
    import ray

    gcs = ray.get_runtime_context().gcs_address
    click.echo(
        f"Ray {'started locally' if owns_ray else 'joined'} at {gcs}"
        + ("; dashboard http://127.0.0.1:8265" if owns_ray else "")
    )
    seconds = deploy_app(settings, profile)
    click.echo(
        f"Serve application '{settings.serve_app_name}' running ({seconds:.1f}s to deploy); "
        "Serve's HTTP proxy on 127.0.0.1:8001"
    )
    front = None
    if not no_front:
        front = start_front(gcs, bind, workers)
        click.echo(
            f"Flask front (gunicorn, {workers} workers) on http://{bind}"
            f"  -- up in {time.monotonic() - t0:.1f}s"
        )
    stop = {"now": False}

    def _stop(_sig: int, _frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stop["now"] and (front is None or front.poll() is None):
            time.sleep(0.5)
    finally:
        if front is not None and front.poll() is None:
            front.terminate()
            front.wait(timeout=30)
        if owns_ray:
            from ray import serve

            serve.shutdown()
            ray.shutdown()
        click.echo("stopped")


@main.group()
def serve() -> None:
    """The Serve application on an existing Ray cluster (RAY_ADDRESS or the local `ray start` head)."""


@serve.command("deploy")
@click.option("--profile", type=click.Choice(["tiny", "cpu", "gpu"]), default=None)
def serve_deploy(profile: str | None) -> None:
    """Migrate the database, then deploy (or update in place) the application from its serve config."""
    settings = get_settings()
    prepare_database(settings)
    connect_ray(settings, start_local=False)
    click.echo(f"deployed in {deploy_app(settings, profile):.1f}s")


@serve.command("status")
def serve_status() -> None:
    """The application's and each deployment's status."""
    import json

    from ray import serve as ray_serve

    connect_ray(get_settings(), start_local=False)
    apps = ray_serve.status().applications
    click.echo(
        json.dumps(
            {
                n: {
                    "status": str(a.status.value),
                    "deployments": {d: str(s.status.value) for d, s in a.deployments.items()},
                }
                for n, a in apps.items()
            },
            indent=2,
        )
    )
