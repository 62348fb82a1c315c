"""Ingest end to end: photos registered through the Flask front, each a job in PostgreSQL run as a Ray task
(intake, CLIP ViT-B-32 and faces, UPSERTs), against the sum of the model times for the same images called
directly through the deployments' handles in the same run.

    python -m bench.ingest [--images 24] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests

from bench.common import figure, save, table
from bench.stack import CPU_VERSIONS, cpu_seconds, stack


def photos(n: int) -> list[bytes]:
    """Real photos from scikit-image's samples, as JPEG, cycled and mirrored to make ``n`` distinct files."""
    import io

    from PIL import Image
    from skimage import data

    base = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.hubble_deep_field()]
    out = []
    for i in range(n):
        img = Image.fromarray(base[i % len(base)])
        if (i // len(base)) % 2:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        buf = io.BytesIO()
        img.convert("RGB").save(buf, "JPEG", quality=88 - i % 7)  # distinct bytes per file
        out.append(buf.getvalue())
    return out


def model_seconds(images: list[np.ndarray]) -> list[float]:
    """Per image: the CLIP and faces calls one after the other, straight to the deployments."""
    from ray import serve

    clip = serve.get_deployment_handle("Clip", "recall")
    faces = serve.get_deployment_handle("Faces", "recall")
    clip.embed_image.remote(images[0]).result()
    faces.analyze.remote(images[0]).result()
    out = []
    for img in images:
        t0 = time.perf_counter()
        clip.embed_image.remote(img).result()
        faces.analyze.remote(img).result()
        out.append(time.perf_counter() - t0)
    return out


def ingest_round(base_url: str, token: str, blobs: list[bytes], tag: str, storage, db) -> float:  # noqa: ANN001
    """Seconds from the first registration to the last job done, for all of ``blobs``. Completion is read
    from the jobs table with one query every 50 ms, so watching costs the stack next to nothing."""
    from sqlalchemy import func, select

    from recall_ray.orm import Job
    from recall_ray.storage import user_key_prefix

    keys = []
    for i, blob in enumerate(blobs):
        key = f"{user_key_prefix('bench-user')}{tag}-{i}.jpg"
        storage.put(key, blob, "image/jpeg")
        keys.append(key)
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"

    def register(key: str) -> str:
        resp = http.post(f"{base_url}/ai/assets", json={"storageKey": key, "faceOptIn": True}, timeout=60)
        resp.raise_for_status()
        return resp.json()["jobId"]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        jobs = list(pool.map(register, keys))
    while True:
        with db.session() as s:
            states = dict(
                s.execute(select(Job.state, func.count()).where(Job.id.in_(jobs)).group_by(Job.state)).all()
            )
        if states.get("dead"):
            raise RuntimeError(f"{states['dead']} ingest jobs died")
        if states.get("succeeded", 0) == len(jobs):
            return time.perf_counter() - t0
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    from recall_ray.database import Database
    from recall_ray.intake import decode_image
    from recall_ray.storage import storage_from_settings

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=24)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    blobs = photos(args.images)
    with stack(CPU_VERSIONS, front_workers=1) as st:
        storage = storage_from_settings(st.settings)
        db = Database.from_settings(st.settings, pool_size=1)
        decoded = [np.asarray(decode_image(b, st.settings).image) for b in blobs]
        ingest_round(st.base_url, st.token, blobs[:2], "warm", storage, db)
        rows, e2e, models, cpu = [], [], [], {}
        for r in range(args.rounds):
            m = sum(model_seconds(decoded))
            before = cpu_seconds(st.data_dir)
            e = ingest_round(st.base_url, st.token, blobs, f"r{r}", storage, db)
            after = cpu_seconds(st.data_dir)
            for k in after:
                cpu[k] = cpu.get(k, 0.0) + (after[k] - before.get(k, 0.0)) / e / args.rounds
            models.append(m)
            e2e.append(e)
            rows.append([r + 1, round(args.images / e, 3), round(args.images / m, 3), round(m / e, 3)])
            print(f"round {r + 1}: end to end {args.images / e:.2f} images/s, models {args.images / m:.2f}")
    e2e_rate = args.images / statistics.median(e2e)
    model_rate = args.images / statistics.median(models)
    save(
        "ingest",
        figures=[
            figure(
                "ingest end to end / sum of the model times (images/s ratio)",
                round(e2e_rate / model_rate, 3),
                "x",
                None,
                None,
                end_to_end_images_s=round(e2e_rate, 3),
                models_images_s=round(model_rate, 3),
            )
        ],
        tables=[
            table(
                f"{args.images} photos per round (scikit-image samples, up to 512 px, face opt-in), CLIP "
                "ViT-B-32 (random weights) + faces (Haar + ArcFace-contract ONNX)",
                ["round", "end to end images/s", "models alone images/s", "ratio"],
                rows,
            ),
            table(
                f"Where the CPU went during the end-to-end rounds ({os.cpu_count()} cores)",
                ["process", "cores busy"],
                [[k, round(v, 3)] for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v >= 0.01],
            ),
        ],
        notes=[
            "End to end: POST /ai/assets for every photo (8 at a time) until every job succeeded: job rows, "
            "the dispatcher (4 jobs at a time), Ray tasks, storage reads, intake, both models, UPSERTs.",
            "Models alone: CLIP then faces for each decoded image, one image at a time, through the handles.",
        ],
    )


if __name__ == "__main__":
    main()
