"""Every /ai route end to end on the CPU stack (CLIP ViT-B-32 with random weights, the offline faces, VLM +
OCR and LLM models), through gunicorn and the Flask front: p50 and p95 per route, beside GET /ai/ping (the
front and Serve with no work) as the baseline of the same run.

    python -m bench.routes [--n 15]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench.common import figure, latency_stats, save, table
from bench.stack import CPU_VERSIONS, stack

REF = "2025-09-02T12:00:00+09:00"


def main(argv: list[str] | None = None) -> None:
    from PIL import Image
    from skimage import data

    from recall_ray import evalset
    from recall_ray.cli.demo import Client

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=15, help="calls per route")
    args = p.parse_args(argv)
    photos = [Image.fromarray(a) for a in (data.astronaut(), data.chelsea(), data.coffee(), data.rocket())]
    posters = [evalset.render(poster) for poster in evalset.POSTERS[: args.n + 1]]
    with stack(CPU_VERSIONS, front_workers=1) as st:
        api = Client(st.base_url, st.token)
        me, _ = api.ingest(photos[0], face_opt_in=True)
        ids = [api.ingest(img)[0] for img in photos[1:]]
        api.call("POST", "/ai/people/enroll", {"assetIds": [me]})
        poster_ids = [api.ingest(img)[0] for img in posters]
        observed = api.call(
            "POST", "/ai/schedule/from_image", {"assetId": poster_ids[0], "referenceTime": REF}
        )
        fresh_posters = iter(poster_ids[1:])
        spare = iter([api.ingest(photos[1])[0] for _ in range(args.n)])

        routes: dict[str, Callable[[], object]] = {
            "GET /ai/ping (baseline)": lambda: api.call("GET", "/ai/ping"),
            "POST /ai/uploads": lambda: api.call("POST", "/ai/uploads", {"contentType": "image/jpeg"}),
            "GET /ai/assets/{id}": lambda: api.call("GET", f"/ai/assets/{me}"),
            "POST /ai/search (text)": lambda: api.call(
                "POST", "/ai/search", {"text": "a cat on a sofa", "k": 20}
            ),
            "POST /ai/search (photo)": lambda: api.call("POST", "/ai/search", {"assetId": ids[0], "k": 20}),
            "POST /ai/embeddings/text": lambda: api.call("POST", "/ai/embeddings/text", {"text": "a picnic"}),
            "POST /ai/themes/suggest": lambda: api.call(
                "POST", "/ai/themes/suggest", {"assetIds": [me, *ids], "locale": "ja"}
            ),
            "POST /ai/people/match": lambda: api.call(
                "POST", "/ai/people/match", {"assetId": me, "candidateUserIds": ["bench-user"]}
            ),
            "POST /ai/schedule/from_image (new image)": lambda: api.call(
                "POST", "/ai/schedule/from_image", {"assetId": next(fresh_posters), "referenceTime": REF}
            ),
            "POST /ai/schedule/from_image (repeat)": lambda: api.call(
                "POST", "/ai/schedule/from_image", {"assetId": poster_ids[0], "referenceTime": REF}
            ),
            "GET /ai/observations/{id}": lambda: api.call(
                "GET", f"/ai/observations/{observed['observationId']}"
            ),
            "DELETE /ai/assets/{id}": lambda: api.call("DELETE", f"/ai/assets/{next(spare)}"),
            # Last: each registration queues an ingest job that would run beside the next measurements.
            "POST /ai/assets (register)": lambda: api.call(
                "POST", "/ai/assets", {"storageKey": api.upload(photos[2])}
            ),
        }
        stats = {}
        for name, fn in routes.items():
            fn()  # warm
            samples = []
            for _ in range(args.n - 1):
                t0 = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t0)
            stats[name] = latency_stats(samples)
            print(f"{name}: p50 {stats[name]['p50_ms']:.1f} ms")
    base = stats["GET /ai/ping (baseline)"]["p50_ms"]
    rows = [[n, s["p50_ms"], s["p95_ms"], round(s["p50_ms"] / base, 1)] for n, s in stats.items()]
    save(
        "routes",
        figures=[
            figure(f"{n} p50", s["p50_ms"], "ms", None, None, over_ping=round(s["p50_ms"] / base, 1))
            for n, s in stats.items()
            if n.startswith(
                ("POST /ai/search (text)", "POST /ai/themes", "POST /ai/schedule", "POST /ai/people")
            )
        ],
        tables=[
            table(
                f"Each route through gunicorn and the Flask front, {args.n - 1} calls after a warm-up, "
                "one client",
                ["route", "p50 ms", "p95 ms", "p50 / ping p50"],
                rows,
            )
        ],
        notes=[
            "CPU profile as far as this machine has weights: CLIP ViT-B-32 (random weights, production "
            "compute); faces, Florence-2 and the LLM are the offline test models; Tesseract is real.",
            "register: the request only (the ingest job runs after the response); schedule (new image): a "
            "poster not read before, VLM + OCR + parsing + storage; (repeat): the stored observation.",
        ],
    )


if __name__ == "__main__":
    main()
