"""Backfill throughput: the re-embedding job (Ray Data: page, fetch and decode, CLIP ViT-B-32 in an actor
pool, batched UPSERTs) over photos in object storage, against the model's own batched throughput on the same
decoded images in the same run.

    python -m bench.backfill [--assets 240]
"""

from __future__ import annotations

import argparse
import io
import os
import time

import numpy as np

from bench.common import figure, save, table
from bench.stack import BENCH_CLIP, MODEL_ROOT, stack

BATCH = 32


def main(argv: list[str] | None = None) -> None:
    import torch
    from PIL import Image
    from skimage import data

    from deployments.clip import ClipModel
    from recall_ray.database import Database
    from recall_ray.intake import decode_image
    from recall_ray.jobs.reembed import BackfillOptions, run_backfill
    from recall_ray.orm import Asset
    from recall_ray.storage import storage_from_settings

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--assets", type=int, default=240)
    args = p.parse_args(argv)
    base = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.hubble_deep_field()]
    blobs = []
    for i in range(args.assets):
        img = Image.fromarray(base[i % len(base)]).rotate(i % 360)
        buf = io.BytesIO()
        img.convert("RGB").save(buf, "JPEG", quality=85)
        blobs.append(buf.getvalue())
    with stack({"clip": BENCH_CLIP}, serve=False) as st:
        storage = storage_from_settings(st.settings)
        db = Database.from_settings(st.settings)
        with db.session() as s:
            for i, blob in enumerate(blobs):
                key = f"bench/backfill/{i}.jpg"
                storage.put(key, blob, "image/jpeg")
                s.add(
                    Asset(
                        owner_user_id=f"user-{i % 20}",
                        storage_key=key,
                        content_type="image/jpeg",
                        state="ready",
                    )
                )
        db.dispose()
        # The model alone: the same decoded images, batches of 32, in this process with every core.
        torch.set_num_threads(os.cpu_count() or 1)
        images = [np.asarray(decode_image(b, st.settings).image) for b in blobs[:96]]
        model = ClipModel(MODEL_ROOT, BENCH_CLIP).load()
        model.embed_images(images[:BATCH])
        t0 = time.perf_counter()
        for i in range(0, len(images), BATCH):
            model.embed_images(images[i : i + BATCH])
        model_rate = len(images) / (time.perf_counter() - t0)
        del model
        # One actor with both cores' threads, as the model-alone run has; fetch/decode tasks and UPSERTs share
        # those cores (Ray's logical CPUs on this head are more than the physical ones).
        cores = float(os.cpu_count() or 1)
        opts = BackfillOptions(model_version=BENCH_CLIP, batch_size=BATCH, actors=1, cpus_per_actor=cores)
        summary = run_backfill(opts, st.settings)
    rate = summary.done / summary.seconds
    save(
        "backfill",
        figures=[
            figure(
                "backfill assets/s / the model's own batched images/s",
                round(rate / model_rate, 3),
                "x",
                None,
                None,
                backfill_assets_s=round(rate, 2),
                model_images_s=round(model_rate, 2),
            )
        ],
        tables=[
            table(
                f"{args.assets} photos (scikit-image samples, 512 px JPEG) in local object storage, "
                "one model actor",
                ["run", "assets", "embedded", "failed", "seconds", "assets/s"],
                [
                    [
                        "backfill (whole job: pages, fetch + decode, model, UPSERTs)",
                        summary.total,
                        summary.done,
                        summary.failed,
                        round(summary.seconds, 1),
                        round(rate, 2),
                    ],
                    [
                        "model alone (ClipModel.embed_images, batch 32, decoded images)",
                        len(images),
                        len(images),
                        0,
                        round(len(images) / model_rate, 1),
                        round(model_rate, 2),
                    ],
                ],
            )
        ],
        notes=[
            "The job's time includes Ray Data's start (the actor loads the model) and its last UPSERTs; the "
            "model-alone figure is only forwards, preprocessing included.",
        ],
    )


if __name__ == "__main__":
    main()
