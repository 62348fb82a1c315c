"""``recall models``: versioned weights under MODEL_ROOT, their manifests, and which version serves."""

from __future__ import annotations

import json

import click

from recall_ray import model_registry
from recall_ray.cli import main
from recall_ray.config import get_settings


@main.group()
def models() -> None:
    """Model weights under MODEL_ROOT/<name>@<version>/ with a manifest each."""


@models.command("list")
def models_list() -> None:
    """Every catalogued version: installed or not, and what it is."""
    root = get_settings().effective_model_root
    installed = set(model_registry.installed(root))
    for full, entry in model_registry.CATALOGUE.items():
        state = "installed" if full in installed else ("buildable" if entry.tiny else "not installed")
        click.echo(f"{full:<34} {entry.task:<6} {state:<13} {entry.licence} ({entry.source})")


@models.command("verify")
@click.argument("versions", nargs=-1)
def models_verify(versions: tuple[str, ...]) -> None:
    """Check every file of VERSIONS (default: all installed) against its manifest's sha256."""
    root = get_settings().effective_model_root
    failed = False
    for full in versions or model_registry.installed(root):
        try:
            manifest = model_registry.verify(root, full)
            click.echo(f"ok      {full} ({len(manifest.files)} files)")
        except Exception as exc:  # report every version, then fail
            failed = True
            click.echo(f"FAILED  {full}: {getattr(exc, 'message', exc)}")
    if failed:
        raise SystemExit(1)


@models.command("pull")
@click.argument("versions", nargs=-1, required=True)
def models_pull(versions: tuple[str, ...]) -> None:
    """Download VERSIONS from the model hub into MODEL_ROOT (needs network access to the hub)."""
    root = get_settings().effective_model_root
    for full in versions:
        manifest = model_registry.pull(root, full)
        click.echo(f"pulled {full}: {len(manifest.files)} files, manifest written")


@models.command("build-tiny")
def models_build_tiny() -> None:
    """Build the offline test models (random weights, real model code) into MODEL_ROOT."""
    from recall_ray.tiny_models import build_all

    root = get_settings().effective_model_root
    for full in build_all(root):
        click.echo(f"built {full}")


@models.command("manifest")
@click.argument("version")
def models_manifest(version: str) -> None:
    """Print a version's manifest."""
    manifest = model_registry.verify(get_settings().effective_model_root, version, checksums=False)
    click.echo(json.dumps(manifest.model_dump(), indent=2))


def _serve_connected() -> None:
    from recall_ray.cli.serving import connect_ray

    connect_ray(get_settings(), start_local=False)


@models.command("status")
def models_status() -> None:
    """Coverage of every image model version over the ready assets, and which version serves."""
    from recall_ray.database import Database
    from recall_ray.repositories import backfills

    with Database.from_settings(get_settings()).session() as s:
        rows = backfills.coverage(s)
        running = {r.model_version: r for r in backfills.recent_runs(s) if r.state == "running"}
    try:
        from deployments import serve_config

        _serve_connected()
        current, loaded = serve_config.rollout()
    except Exception as exc:  # the database part is still worth showing
        current, loaded = {}, []
        click.echo(f"(Serve not reachable: {getattr(exc, 'message', type(exc).__name__)})")
    serving = current.get("serving") or (loaded[0] if loaded else None)
    for row in rows:
        role = "serving" if row["version"] == serving else ""
        if row["version"] == current.get("canary"):
            role = f"canary {current.get('canary_percent', 0)}%"
        run = running.get(row["version"])
        click.echo(
            f"{row['version']:<34} {row['dim']:>5}-d  {row['embedded']:>8}/{row['ready_assets']:<8} "
            f"{row['coverage']:7.1%}  {'loaded' if row['version'] in loaded else '':<6}  {role}"
            + (f"  backfill {run.id} running ({run.done}/{run.total})" if run else "")
        )


@models.command("serve")
@click.argument("version")
@click.option(
    "--canary-percent", type=click.IntRange(1, 99), default=None, help="serve it to this share only"
)
@click.option("--force", is_flag=True, help="switch even though its backfill coverage is below 100 %")
def models_serve(version: str, canary_percent: int | None, force: bool) -> None:
    """Make VERSION the image-model version that search and themes use (or a canary of it)."""
    from deployments import serve_config
    from recall_ray.database import Database
    from recall_ray.errors import Conflict
    from recall_ray.repositories import backfills

    with Database.from_settings(get_settings()).session() as s:
        row = next((r for r in backfills.coverage(s) if r["version"] == version), None)
    coverage = row["coverage"] if row else 0.0
    if coverage < 1.0 and not (canary_percent or force):
        raise Conflict(
            f"{version} covers {coverage:.1%} of the ready assets; run "
            f"`recall backfill start --model {version}` first, serve it as a canary (--canary-percent) "
            "or use --force",
            code="AI_ROLLOUT_COVERAGE",
        )
    _serve_connected()
    new = serve_config.switch_serving(version, canary_percent or 0)
    click.echo(f"rollout now {json.dumps(new)} (coverage of {version}: {coverage:.1%})")


@models.command("rollback")
def models_rollback() -> None:
    """End a canary, or serve again the version that served before the last switch."""
    from deployments import serve_config

    _serve_connected()
    click.echo(f"rollout now {json.dumps(serve_config.rollback())}")
