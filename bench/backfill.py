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
SMALL, SMALL_OWNER = 32, "bench-small"  # a run over these alone measures the fixed cost of a run


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
    p.add_argument("--assets", type=int, default=480)
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
                        owner_user_id=SMALL_OWNER if i < SMALL else f"user-{i % 20}",
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
        # What the pipeline does besides the model: storage read and intake (magic bytes, decode, bound).
        t0 = time.perf_counter()
        for i in range(96):
            decode_image(storage.get(f"bench/backfill/{i}.jpg"), st.settings)
        decode_rate = 96 / (time.perf_counter() - t0)
        # One actor with both cores' threads, as the model-alone run has; fetch/decode tasks and UPSERTs share
        # those cores (Ray's logical CPUs on this head are more than the physical ones).
        cores = float(os.cpu_count() or 1)
        opts = BackfillOptions(model_version=BENCH_CLIP, batch_size=BATCH, actors=1, cpus_per_actor=cores)
        small = run_backfill(opts.model_copy(update={"owner": SMALL_OWNER}), st.settings)
        full = run_backfill(opts, st.settings)  # the rest: what the small run left
    total_s = small.seconds + full.seconds
    rate = (small.done + full.done) / total_s
    # Both runs pay the same fixed cost (Ray Data start, the actor loading the model); their difference in
    # time is the marginal cost of the extra assets.
    marginal = (full.done - small.done) / (full.seconds - small.seconds)
    fixed_s = small.seconds - small.done / marginal
    both = 1 / (1 / model_rate + 1 / decode_rate)  # model and intake taking turns on the same cores
    save(
        "backfill",
        figures=[
            figure(
                "backfill assets/s (whole runs) / the model's own batched images/s",
                round(rate / model_rate, 3),
                "x",
                None,
                None,
                backfill_assets_s=round(rate, 2),
                model_images_s=round(model_rate, 2),
            ),
            figure(
                "backfill marginal assets/s (past the fixed start-up) / the model's images/s",
                round(marginal / model_rate, 3),
                "x",
                marginal_assets_s=round(marginal, 2),
                fixed_start_s=round(fixed_s, 1),
            ),
        ],
        tables=[
            table(
                f"{args.assets} photos (scikit-image samples, 512 px JPEG) in local object storage, "
                "one model actor",
                ["measurement", "images", "seconds", "images/s"],
                [
                    [
                        "backfill run 1 (one owner's assets)",
                        small.done,
                        round(small.seconds, 1),
                        round(small.done / small.seconds, 2),
                    ],
                    [
                        "backfill run 2 (the rest)",
                        full.done,
                        round(full.seconds, 1),
                        round(full.done / full.seconds, 2),
                    ],
                    [
                        "backfill, marginal (run 2 - run 1)",
                        full.done - small.done,
                        round(full.seconds - small.seconds, 1),
                        round(marginal, 2),
                    ],
                    ["backfill, fixed cost of a run (start-up)", None, round(fixed_s, 1), None],
                    [
                        "model alone (ClipModel.embed_images, batch 32, decoded images)",
                        96,
                        round(96 / model_rate, 1),
                        round(model_rate, 2),
                    ],
                    [
                        "intake alone (storage read + decode + bound, one process)",
                        96,
                        round(96 / decode_rate, 2),
                        round(decode_rate, 2),
                    ],
                    [
                        "model + intake taking turns on the same cores, no overhead",
                        None,
                        None,
                        round(both, 2),
                    ],
                ],
            )
        ],
        notes=[
            "A run's fixed cost (Ray Data starting its operators, the actor loading the model) is measured "
            "as what two runs of different sizes share; the marginal rate is the steady throughput.",
            f"{small.failed + full.failed} items failed.",
        ],
    )


if __name__ == "__main__":
    main()
