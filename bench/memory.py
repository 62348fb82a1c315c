"""Memory of the whole CPU stack while it serves: Ray (GCS, raylet, dashboard), the Serve replicas (ingress,
jobs, CLIP ViT-B-32, faces, VLM + OCR, LLM), gunicorn with 2 workers, and PostgreSQL, sampled every half
second as proportional set size (shared pages split between their processes) and as plain RSS.

    python -m bench.memory [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections import defaultdict

import psutil

from bench.common import figure, save, table
from bench.stack import CPU_VERSIONS, component, stack, stack_processes


def sample(data_dir: str) -> dict[str, tuple[float, float]]:
    """(PSS, RSS) in MiB per component of the stack (the benchmark's own process is not part of it)."""
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for p in stack_processes(data_dir):
        if p.pid == os.getpid():
            continue
        try:
            info = p.memory_full_info()
        except (psutil.Error, OSError):
            continue
        entry = out[component(p)]
        entry[0] += info.pss / 2**20
        entry[1] += info.rss / 2**20
    return {k: (v[0], v[1]) for k, v in out.items()}


def workload(base_url: str, token: str, stop: threading.Event) -> int:
    """Ingest, search, themes and a schedule read, round after round, until ``stop``."""
    from PIL import Image
    from skimage import data

    from recall_ray import evalset
    from recall_ray.cli.demo import Client

    api = Client(base_url, token)
    photos = [Image.fromarray(a) for a in (data.astronaut(), data.chelsea(), data.coffee())]
    poster = evalset.render(evalset.POSTERS[0])
    rounds = 0
    while not stop.is_set():
        ids = [api.ingest(img, face_opt_in=i == 0)[0] for i, img in enumerate([*photos, poster])]
        api.call("POST", "/ai/search", {"text": "a cat", "k": 5})
        api.call("POST", "/ai/themes/suggest", {"assetIds": ids})
        api.call("POST", "/ai/schedule/from_image", {"assetId": ids[-1]})
        rounds += 1
    return rounds


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    args = p.parse_args(argv)
    with stack(CPU_VERSIONS, front_workers=2) as st:
        time.sleep(3)
        idle = sample(st.data_dir)
        stop = threading.Event()
        rounds: list[int] = []
        worker = threading.Thread(target=lambda: rounds.append(workload(st.base_url, st.token, stop)))
        worker.start()
        peak_total, peak = 0.0, idle
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            now = sample(st.data_dir)
            total = sum(v[0] for v in now.values())
            if total > peak_total:
                peak_total, peak = total, now
            time.sleep(0.5)
        stop.set()
        worker.join()
    idle_total = sum(v[0] for v in idle.values())
    machine_mib = psutil.virtual_memory().total / 2**20
    rows = [
        [name, round(idle.get(name, (0, 0))[0]), round(peak[name][0]), round(peak[name][1])]
        for name in sorted(peak, key=lambda n: -peak[n][0])
    ]
    rows.append(["total", round(idle_total), round(peak_total), round(sum(v[1] for v in peak.values()))])
    save(
        "memory",
        figures=[
            figure(
                "peak memory of the whole CPU stack while serving (PSS)",
                round(peak_total / 1024, 2),
                "GiB",
                None,
                None,
                idle_gib=round(idle_total / 1024, 2),
                peak_over_idle=round(peak_total / idle_total, 2),
                of_machine=round(peak_total / machine_mib, 3),
            ),
            figure("peak while serving / idle after start", round(peak_total / idle_total, 2), "x"),
        ],
        tables=[
            table(
                "Memory by component, MiB (idle after start; at the peak while serving, "
                f"{rounds[0] if rounds else 0} rounds of ingest + search + themes + schedule)",
                ["component", "idle PSS", "peak PSS", "peak RSS"],
                rows,
            )
        ],
        notes=[
            "Models: CLIP ViT-B-32 (random weights, production size, fp32), faces Haar + ArcFace-contract "
            "ONNX (small), Florence-2 tiny + Tesseract, LLM tiny: the production faces (ArcFace R50 166 MB, "
            "SCRFD 17 MB) and Florence-2 base (0.23 B parameters) weights are not on this machine.",
            "PSS splits shared pages between the processes that map them, so the sum is the stack's real "
            "footprint; RSS counts shared libraries (torch, Ray) once per process.",
        ],
    )


if __name__ == "__main__":
    main()
