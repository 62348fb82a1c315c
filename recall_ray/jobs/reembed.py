"""Re-embedding / backfill of one CLIP model version, as a Ray Job over Ray Data.

    python -m recall_ray.jobs.reembed --model openclip_vitb32@2025-08 [--owner ID] [--since 2025-01-01]

Submit it with ``ray job submit -- python -m recall_ray.jobs.reembed ...`` or ``recall backfill ...``. The
pipeline: page starts out of PostgreSQL -> pending assets of each page (tasks) -> fetch and decode through the
intake (tasks) -> the model in an actor pool (a GPU share each on GPU machines) -> batched UPSERTs, failures
to the dead-letter store and progress to ``backfill_runs`` (tasks), each batch in one transaction.

Resumable and idempotent: every page asks again which assets lack the version, and writes are UPSERTs, so a
resubmitted run skips finished work. One run per version at a time (an advisory lock held by the driver).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from recall_ray.config import Settings, get_settings
from recall_ray.database import Database
from recall_ray.errors import RecallError
from recall_ray.repositories import backfills

log = logging.getLogger("recall.backfill")


class BackfillOptions(BaseModel):
    model_version: str
    owner: str | None = None
    since: dt.datetime | None = None
    page_size: int = Field(default=512, ge=1, le=100_000)
    batch_size: int = Field(default=32, ge=1, le=4096)  # images per model forward and per UPSERT
    actors: int = Field(default=1, ge=1, le=256)  # model replicas in the actor pool
    num_gpus: float = Field(default=0.0, ge=0.0, le=8.0)  # GPU share of each model actor
    cpus_per_actor: float = Field(default=1.0, gt=0.0, le=64.0)


@dataclass(frozen=True)
class BackfillSummary:
    run_id: str
    model_version: str
    total: int
    done: int
    failed: int
    seconds: float
    state: str

    @property
    def per_second(self) -> float:
        return (self.done + self.failed) / self.seconds if self.seconds > 0 else 0.0


@lru_cache(maxsize=1)
def _worker_context() -> tuple[Settings, Database, Any]:
    """Settings, database and storage of one Ray worker process, made once and reused by its tasks."""
    from recall_ray.storage import storage_from_settings

    settings = get_settings()
    return settings, Database.from_settings(settings, pool_size=2), storage_from_settings(settings)


def _pending(batch: dict[str, np.ndarray], scope: backfills.Scope) -> dict[str, list[Any]]:
    """One page start (and the next page's start) -> the assets of that page still lacking the version."""
    _, db, _ = _worker_context()
    rows: list[dict[str, Any]] = []
    with db.session() as s:
        for first, before in zip(batch["first"], batch["before"], strict=True):
            rows += backfills.pending_page(s, scope, str(first), str(before) or None)
    return {k: [r[k] or "" for r in rows] for k in ("asset_id", "owner", "storage_key", "content_type")}


def _fetch_decode(batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
    """Bytes from storage through the intake checks; a bad item becomes an error row, not a failed run."""
    from recall_ray.intake import decode_image, fetch_by_key

    settings, _, storage = _worker_context()
    out: dict[str, list[Any]] = {
        k: [] for k in ("asset_id", "owner", "pixels", "shape", "error_code", "error")
    }
    for asset_id, owner, key, ctype in zip(
        batch["asset_id"], batch["owner"], batch["storage_key"], batch["content_type"], strict=True
    ):
        pixels, shape, code, error = b"", [0, 0, 0], "", ""
        try:
            image = np.asarray(
                decode_image(fetch_by_key(storage, str(key), settings), settings, ctype or None).image
            )
            pixels, shape = image.tobytes(), list(image.shape)
        except RecallError as exc:
            code, error = exc.code, exc.message
        except Exception as exc:  # noqa: BLE001 - any item failure is recorded with its reason
            code, error = type(exc).__name__, str(exc) or type(exc).__name__
        for k, v in zip(out, (str(asset_id), str(owner), pixels, shape, code, error), strict=True):
            out[k].append(v)
    return out


class ClipEmbedder:
    """One model replica of the actor pool: the same ``ClipModel`` code the Serve deployment runs."""

    def __init__(self, model_root: str, version: str):
        from deployments.clip import ClipModel

        self.model = ClipModel(Path(model_root), version).load()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        ok = [i for i, code in enumerate(batch["error_code"]) if not code]
        images = [
            np.frombuffer(batch["pixels"][i], np.uint8).reshape([int(x) for x in batch["shape"][i]])
            for i in ok
        ]
        vectors = np.zeros((len(batch["asset_id"]), self.model.dim), np.float32)
        if images:
            vectors[ok] = self.model.embed_images(images)
        return {
            "asset_id": batch["asset_id"],
            "owner": batch["owner"],
            "vector": vectors,
            "error_code": batch["error_code"],
            "error": batch["error"],
        }


def _write(batch: dict[str, np.ndarray], run_id: str, version: str) -> dict[str, list[int]]:
    _, db, _ = _worker_context()
    vectors, failures = [], []
    for asset_id, owner, vector, code, error in zip(
        batch["asset_id"], batch["owner"], batch["vector"], batch["error_code"], batch["error"], strict=True
    ):
        if code:
            failures.append((str(asset_id), str(code), str(error)))
        else:
            vectors.append((str(asset_id), str(owner), vector))
    with db.session() as s:
        written, failed = backfills.record_batch(s, run_id, version, vectors, failures)
    return {"written": [written], "failed": [failed]}


def build_pipeline(
    opts: BackfillOptions, model_root: Path, scope: backfills.Scope, run_id: str, starts: list[str]
):  # noqa: ANN201
    """The Ray Data pipeline over the pages that start at ``starts``; it yields one row per written batch."""
    import ray
    from ray.data import ActorPoolStrategy

    pages = [{"first": f, "before": n} for f, n in zip(starts, [*starts[1:], ""], strict=True)]
    return (
        ray.data.from_items(pages, override_num_blocks=len(pages))
        .map_batches(_pending, fn_kwargs={"scope": scope}, batch_size=1, num_cpus=0.25)
        .map_batches(_fetch_decode, batch_size=opts.batch_size, num_cpus=0.5)
        .map_batches(
            ClipEmbedder,
            fn_constructor_kwargs={"model_root": str(model_root), "version": opts.model_version},
            batch_size=opts.batch_size,
            compute=ActorPoolStrategy(size=opts.actors),
            num_cpus=opts.cpus_per_actor,
            num_gpus=opts.num_gpus or None,
        )
        .map_batches(
            _write,
            fn_kwargs={"run_id": run_id, "version": opts.model_version},
            batch_size=opts.batch_size,
            num_cpus=0.25,
        )
    )


class Progress:
    """Progress of the driver's view: logged every few seconds and exported as Ray metrics (Prometheus)."""

    def __init__(self, run_id: str, model_version: str, total: int):
        from ray.util.metrics import Gauge

        self.run_id, self.total, self.done, self.failed = run_id, total, 0, 0
        self.tags = {"run_id": run_id, "model_version": model_version}
        keys = tuple(self.tags)
        self.gauges = {
            "done": Gauge("recall_backfill_done", "assets embedded by a backfill run", tag_keys=keys),
            "failed": Gauge("recall_backfill_failed", "assets a backfill run could not embed", tag_keys=keys),
            "total": Gauge("recall_backfill_total", "assets a backfill run set out to embed", tag_keys=keys),
        }
        self.gauges["total"].set(total, tags=self.tags)
        self._logged = time.monotonic()

    def add(self, written: int, failed: int) -> None:
        self.done, self.failed = self.done + written, self.failed + failed
        self.gauges["done"].set(self.done, tags=self.tags)
        self.gauges["failed"].set(self.failed, tags=self.tags)
        if time.monotonic() - self._logged > 5:
            self._logged = time.monotonic()
            log.info(
                "backfill %s: %d/%d embedded, %d failed", self.run_id, self.done, self.total, self.failed
            )


def run_backfill(opts: BackfillOptions, settings: Settings | None = None) -> BackfillSummary:
    """Run one backfill on the connected Ray cluster (``ray.init`` first) and return its summary."""
    import ray

    from recall_ray import model_registry
    from recall_ray.repositories.vector_index import register_model_version

    settings = settings or get_settings()
    root = settings.effective_model_root
    manifest = model_registry.verify(root, opts.model_version)
    if manifest.task != "clip":
        raise RecallError(f"{opts.model_version} is a {manifest.task} model, not CLIP", code="AI_MODEL_TASK")
    scope = backfills.Scope(opts.model_version, opts.owner, opts.since)
    db = Database.from_settings(settings, pool_size=2)
    t0 = time.monotonic()
    try:
        with backfills.version_lock(db.engine, opts.model_version) as locked:
            with db.session() as s:
                if not locked:
                    backfills.refuse_concurrent(s, opts.model_version)
                register_model_version(s, opts.model_version, "image", int(manifest.dim or 0))
                run = backfills.start_run(s, scope, ray.get_runtime_context().get_job_id())
                starts = backfills.page_starts(s, scope, opts.page_size)
            log.info(
                "backfill %s of %s: %d assets in %d pages", run.id, run.model_version, run.total, len(starts)
            )
            progress, state = Progress(run.id, opts.model_version, run.total), "failed"
            try:
                if starts:
                    pipeline = build_pipeline(opts, root, scope, run.id, starts)
                    for batch in pipeline.iter_batches(batch_size=None, batch_format="numpy"):
                        progress.add(int(np.sum(batch["written"])), int(np.sum(batch["failed"])))
                state = "succeeded"
            finally:
                with db.session() as s:
                    final = backfills.finish_run(s, run.id, state)
                    summary = BackfillSummary(
                        run.id,
                        run.model_version,
                        run.total,
                        final.done,
                        final.failed,
                        time.monotonic() - t0,
                        state,
                    )
    finally:
        db.dispose()
    log.info(
        "backfill %s %s: %d embedded, %d failed in %.1fs",
        run.id,
        state,
        summary.done,
        summary.failed,
        summary.seconds,
    )
    return summary


def parse_args(argv: list[str] | None = None) -> BackfillOptions:
    p = argparse.ArgumentParser(prog="python -m recall_ray.jobs.reembed", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="the CLIP version to embed with, name@version")
    p.add_argument("--owner", default=None, help="only this user's assets")
    p.add_argument("--since", default=None, help="only assets taken (or registered) since this ISO date")
    p.add_argument("--page-size", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--actors", type=int, default=1, help="model actors in the pool")
    p.add_argument("--num-gpus", type=float, default=0.0, help="GPU share per model actor")
    p.add_argument(
        "--cpus-per-actor",
        type=float,
        default=1.0,
        help="CPUs each model actor reserves (and its torch threads)",
    )
    a = p.parse_args(argv)
    since = None
    if a.since:
        since = dt.datetime.fromisoformat(a.since)
        since = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
    return BackfillOptions(
        model_version=a.model,
        owner=a.owner,
        since=since,
        page_size=a.page_size,
        batch_size=a.batch_size,
        actors=a.actors,
        num_gpus=a.num_gpus,
        cpus_per_actor=a.cpus_per_actor,
    )


def main(argv: list[str] | None = None) -> int:
    import ray

    from recall_ray import logs

    logs.configure()
    opts = parse_args(argv)
    settings = get_settings()
    # Under `ray job submit` RAY_ADDRESS names the cluster; run alone without it, this starts a local Ray.
    ray.init(address=settings.ray_address, namespace="recall", log_to_driver=False)
    try:
        summary = run_backfill(opts, settings)
    except RecallError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    print(
        f"backfill {summary.run_id} {summary.state}: {summary.done}/{summary.total} embedded, "
        f"{summary.failed} failed, {summary.seconds:.1f}s ({summary.per_second:.1f} assets/s)"
    )
    return 0 if summary.state == "succeeded" else 1


if __name__ == "__main__":
    # Run the importable module's main, not this __main__ copy: Ray pickles the pipeline's functions by
    # module name, and workers cannot import functions that live in __main__.
    from recall_ray.jobs import reembed

    sys.exit(reembed.main())
