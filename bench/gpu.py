"""All four models resident on one GPU with deploy/serve.gpu-1x.yaml: CLIP images/s, faces/s, Florence-2
latency, LLM tokens/s and the GPU memory each model's process holds. Run through bench/gpu.sh on a one-GPU
(H200-class) machine; every phase has a time limit so the whole run stays under 8 minutes.

Weights come from BENCH_MODEL_ROOT (the production versions, copied from a machine that ran
`recall models pull`); without them the run stops and says which are missing.

    python -m bench.gpu [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time

import numpy as np

from bench.common import figure, latency_stats, save, table
from bench.stack import stack


async def rate(call, callers: int, seconds: float) -> tuple[float, int]:  # noqa: ANN001
    """Completed calls per second with ``callers`` concurrent callers."""
    done = 0
    stop = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await call()
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return done / (time.perf_counter() - t0), done


def gpu_memory_by_replica() -> dict[str, float]:
    """MiB of GPU memory per Serve replica process (nvidia-smi's per-process accounting)."""
    import re

    import psutil

    out = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    usage: dict[str, float] = {}
    for line in out.strip().splitlines():
        pid, mib = (x.strip() for x in line.split(","))
        try:
            cmd = " ".join(psutil.Process(int(pid)).cmdline())
        except psutil.Error:
            cmd = pid
        m = re.search(r"ServeReplica:recall:(\w+)", cmd)
        name = m.group(1) if m else f"pid {pid}"
        usage[name] = usage.get(name, 0.0) + float(mib)
    return usage


def main(argv: list[str] | None = None) -> None:
    from ray import serve
    from skimage import data

    from recall_ray import evalset

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=20.0)
    args = p.parse_args(argv)
    photo = np.asarray(data.astronaut())
    poster = np.asarray(evalset.render(evalset.POSTERS[0]))
    t0 = time.perf_counter()
    with stack(profile="gpu"):
        startup_s = time.perf_counter() - t0
        h = {n: serve.get_deployment_handle(n, "recall") for n in ("Clip", "Faces", "Vlm", "Llm")}
        memory = gpu_memory_by_replica()
        clip_rate, _ = asyncio.run(rate(lambda: h["Clip"].embed_image.remote(photo), 128, args.seconds))
        faces_rate, _ = asyncio.run(rate(lambda: h["Faces"].analyze.remote(photo), 32, args.seconds))
        vlm_lat = []
        for _ in range(8):
            s = time.perf_counter()
            h["Vlm"].read.remote(poster).result(timeout_s=120)
            vlm_lat.append(time.perf_counter() - s)
        request = {
            "messages": [{"role": "user", "content": "Suggest a weekend get-together for five friends."}],
            "max_tokens": 256,
            "temperature": 0.7,
        }
        tokens: list[int] = []

        async def generate() -> None:
            out = await h["Llm"].generate.remote(request)
            tokens.append(out["completion_tokens"])

        t = time.perf_counter()
        asyncio.run(rate(generate, 32, args.seconds))
        llm_tps = sum(tokens) / (time.perf_counter() - t)
        single = h["Llm"].generate.remote({**request, "temperature": 0.0}).result(timeout_s=120)
        memory_after = gpu_memory_by_replica()
    vlm = latency_stats(vlm_lat)
    save(
        "gpu",
        figures=[
            figure("CLIP ViT-B-32 images/s (128 callers, @serve.batch)", round(clip_rate, 1), "images/s"),
            figure("faces (SCRFD + ArcFace) images/s (32 callers)", round(faces_rate, 1), "images/s"),
            figure("Florence-2 + OCR read of a poster, p50", vlm["p50_ms"], "ms"),
            figure("LLM generation (32 concurrent requests)", round(llm_tps, 1), "tokens/s"),
            figure(
                "LLM single request",
                round(single["completion_tokens"] / max(single["latency_ms"], 1) * 1000, 1),
                "tokens/s",
            ),
            figure("application start-up (all four models resident)", round(startup_s, 1), "s"),
        ],
        tables=[
            table(
                "GPU memory per model process, MiB (nvidia-smi), after start and after the load",
                ["deployment", "after start", "after load"],
                [[n, memory.get(n), memory_after.get(n)] for n in sorted({*memory, *memory_after})],
            )
        ],
        notes=["Shares and budgets: deploy/serve.gpu-1x.yaml."],
    )
    print(f"gpu benchmark done: {statistics.fmean([clip_rate, faces_rate]):.1f} mean images/s")


if __name__ == "__main__":
    main()
