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
