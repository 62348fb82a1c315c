"""Embedding serving: open_clip's raw batched forward on this CPU (the ceiling), then the Clip Serve
deployment under 1, 8 and 32 concurrent callers, through ``@serve.batch`` and around it.

The model is ViT-B-32 with random weights: the production CLIP's architecture and compute.

    python -m bench.embedding [--seconds 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time

import numpy as np

from bench.common import figure, save, table
from bench.stack import BENCH_CLIP, MODEL_ROOT, cpu_seconds, stack

BATCHES = (1, 8, 16, 32)
CALLERS = (1, 8, 32)


def images(n: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (224, 224, 3), dtype=np.uint8) for _ in range(n)]


def ceiling(imgs: list[np.ndarray], repeats: int) -> dict[int, float]:
    """Images per second of ClipModel.embed_images in this process, every core, per batch size (median)."""
    import torch

    from deployments.clip import ClipModel

    torch.set_num_threads(os.cpu_count() or 1)
    model = ClipModel(MODEL_ROOT, BENCH_CLIP).load()
    model.embed_images(imgs[:8])  # warm up
    out = {}
    for b in BATCHES:

        def run(b: int = b) -> float:
            t0 = time.perf_counter()
            for i in range(0, len(imgs), b):
                model.embed_images(imgs[i : i + b])
            return len(imgs) / (time.perf_counter() - t0)

        out[b] = statistics.median(run() for _ in range(repeats))
        print(f"raw forward, batch {b}: {out[b]:.1f} images/s")
    return out


async def serve_rate(handle, imgs: list[np.ndarray], callers: int, batched: bool, seconds: float) -> float:
    """Images per second with ``callers`` callers, each sending one image after the other."""
    done = 0
    stop = time.perf_counter() + seconds

    async def caller(i: int) -> None:
        nonlocal done
        j = i
        while time.perf_counter() < stop:
            img = imgs[j % len(imgs)]
            if batched:
                await handle.embed_image.remote(img)
            else:
                await handle.embed_images_unbatched.remote([img])
            done += 1
            j += callers

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(callers)))
    return done / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    from ray import serve

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    imgs = images()
    rows, rates, cpu = [], {}, {}
    with stack({"clip": BENCH_CLIP}) as st:
        # The ceiling runs here, with the whole stack up and idle around it: the same background as Serve's.
        raw = ceiling(imgs, args.repeats)
        gc.collect()
        best_batch = max(raw, key=raw.get)
        clip = serve.get_deployment_handle("Clip", "recall")
        info = clip.info.remote().result()
        for batched in (True, False):
            for callers in CALLERS:
                asyncio.run(serve_rate(clip, imgs, callers, batched, 2.0))  # warm up
                before, t0 = cpu_seconds(st.data_dir), time.perf_counter()
                values = [
                    asyncio.run(serve_rate(clip, imgs, callers, batched, args.seconds))
                    for _ in range(args.repeats)
                ]
                if batched and callers == max(CALLERS):
                    wall, after = time.perf_counter() - t0, cpu_seconds(st.data_dir)
                    cpu = {k: (after[k] - before.get(k, 0.0)) / wall for k in after}
                rate = statistics.median(values)
                rates[(batched, callers)] = rate
                rows.append(
                    [
                        "@serve.batch" if batched else "one forward per request",
                        callers,
                        round(rate, 2),
                        round(rate / raw[best_batch], 3),
                        ", ".join(f"{v:.1f}" for v in values),
                    ]
                )
                print(f"serve batched={batched} callers={callers}: {rate:.1f} images/s")
    at_32 = rates[(True, 32)] / raw[best_batch]
    cores = os.cpu_count() or 1
    save(
        "embedding",
        figures=[
            figure(
                "Serve with @serve.batch at 32 callers / raw batched forward",
                round(at_32, 3),
                "x",
                ">= 0.85",
                at_32 >= 0.85,
                serve_images_s=round(rates[(True, 32)], 2),
                ceiling_images_s=round(raw[best_batch], 2),
            ),
            figure(
                "batching gain at 32 callers (batched / one forward per request)",
                round(rates[(True, 32)] / rates[(False, 32)], 2),
                "x",
            ),
            figure(
                "the Clip replica's share of the machine's CPU during that run",
                round(cpu.get("replica Clip", 0.0) / cores, 3),
                "x",
            ),
        ],
        tables=[
            table(
                "Ceiling: ClipModel.embed_images in the driver process (ViT-B-32, 224x224 inputs, "
                f"preprocessing included, {cores} threads), the stack up and idle",
                ["batch", "images/s"],
                [[b, round(v, 2)] for b, v in raw.items()],
            ),
            table(
                f"The Clip deployment through its handle (replica: {info['threads']} torch threads; "
                "max_batch_size and wait from deploy/serve.cpu.yaml)",
                ["path", "callers", "images/s", "of ceiling", "repeats"],
                rows,
            ),
            table(
                f"Where the CPU went during the @serve.batch runs with 32 callers ({cores} cores)",
                ["process", "cores busy", "share of the machine"],
                [
                    [name, round(v, 3), round(v / cores, 3)]
                    for name, v in sorted(cpu.items(), key=lambda kv: -kv[1])
                    if v >= 0.005
                ],
            ),
        ],
        notes=[
            f"Ceiling is the best batch size ({best_batch}); medians of {args.repeats} runs of "
            f"{args.seconds:.0f} s each for Serve, {args.repeats} passes over 64 images for the ceiling.",
            "Callers run in the benchmark's driver process on the same cores as the replica.",
        ],
    )


if __name__ == "__main__":
    main()
