"""``recall backfill``: re-embedding runs as Ray Jobs (``recall_ray.jobs.reembed``), and their progress."""

from __future__ import annotations

import shlex
import time

import click

from recall_ray.cli import main
from recall_ray.config import get_settings

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


@main.group()
def backfill() -> None:
    """Re-embed assets with a CLIP model version (Ray Data pipeline; progress in PostgreSQL)."""


@backfill.command("start")
@click.option("--model", "model_version", required=True, help="name@version of the CLIP model")
@click.option("--owner", default=None, help="only this user's assets")
@click.option("--since", default=None, help="only assets taken (or registered) since this ISO date")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--actors", default=1, show_default=True, help="model actors in the pool")
@click.option("--num-gpus", default=0.0, show_default=True, help="GPU share per model actor")
@click.option("--cpus-per-actor", default=1.0, show_default=True, help="CPUs (and threads) per model actor")
@click.option("--local", "local", is_flag=True, help="run here on a local Ray, even with RAY_ADDRESS set")
@click.option("--wait/--no-wait", default=True, show_default=True, help="wait for a submitted job to end")
@click.option("--python", default="python", show_default=True, help="the cluster's Python for the entrypoint")
def backfill_start(
    model_version: str,
    owner: str | None,
    since: str | None,
    batch_size: int,
    actors: int,
    num_gpus: float,
    cpus_per_actor: float,
    local: bool,
    wait: bool,
    python: str,
) -> None:
    """Submit a re-embedding job to the cluster at RAY_ADDRESS, or run it on a local Ray."""
    args = ["--model", model_version, "--batch-size", str(batch_size), "--actors", str(actors)]
    args += ["--num-gpus", str(num_gpus), "--cpus-per-actor", str(cpus_per_actor)]
    if owner:
        args += ["--owner", owner]
    if since:
        args += ["--since", since]
    settings = get_settings()
    if settings.ray_address and not local:
        _submit(settings.ray_address, [python, "-m", "recall_ray.jobs.reembed", *args], wait)
        return
    import ray

    from recall_ray.cli.serving import connect_ray
    from recall_ray.jobs import reembed

    owns = connect_ray(settings, start_local=True)
    try:
        summary = reembed.run_backfill(reembed.parse_args(args), settings)
    finally:
        if owns:
            ray.shutdown()
    click.echo(
        f"backfill {summary.run_id} {summary.state}: {summary.done}/{summary.total} embedded, "
        f"{summary.failed} failed, {summary.per_second:.1f} assets/s"
    )
    if summary.failed:
        click.echo(f"failures: recall dead-letters --source backfill --run {summary.run_id}")


def _submit(address: str, entrypoint: list[str], wait: bool) -> None:
    """``ray job submit``: the job client finds the cluster's dashboard from its address."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)
    job_id = client.submit_job(
        entrypoint=shlex.join(entrypoint), metadata={"recall": "backfill"}, entrypoint_num_cpus=0.25
    )
    click.echo(f"submitted Ray job {job_id}; follow it with `ray job logs -f {job_id}` or the dashboard")
    if not wait:
        return
    while (status := client.get_job_status(job_id).value) not in TERMINAL:
        time.sleep(1.0)
    click.echo(client.get_job_logs(job_id).rstrip())
    click.echo(f"Ray job {job_id} {status}")
    if status != "SUCCEEDED":
        raise SystemExit(1)


@backfill.command("runs")
@click.option("--model", "model_version", default=None, help="only runs of this version")
@click.option("--limit", default=20, show_default=True)
def backfill_runs(model_version: str | None, limit: int) -> None:
    """Recent runs, newest first: state, progress and the Ray job that ran them."""
    from recall_ray.database import Database
    from recall_ray.repositories import backfills

    with Database.from_settings(get_settings()).session() as s:
        for run in backfills.recent_runs(s, model_version, limit):
            click.echo(
                f"{run.id}  {run.model_version:<28} {run.state:<11} {run.done:>7}/{run.total:<7} "
                f"failed {run.failed:<5} ray job {run.ray_job_id or '-'}  {run.created_at:%Y-%m-%d %H:%M:%S}"
            )
