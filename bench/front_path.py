"""The front path: what the Flask front (gunicorn, authentication, limits, validation, logs, metrics) adds to
a call into the Serve application, against a direct handle call from a driver and against Serve's own HTTP
proxy, for a no-op and for a text embedding (tiny CLIP, so the path's overhead dominates).

    python -m bench.front_path [--n 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import requests

from bench.common import figure, latency_stats, save, table
from bench.stack import stack

TEXT = "a picnic in the park"
PROXY = "http://127.0.0.1:8001"  # deploy/serve.cpu.yaml's http_options


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=300, help="requests per path and round")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    with stack(front_workers=1) as st:
        ingress = st.ingress()
        caller = {"user_id": "bench-user", "service": None, "request_id": None}
        http = requests.Session()
        front = requests.Session()
        front.headers["Authorization"] = f"Bearer {st.token}"

        def ok(resp: requests.Response) -> None:
            resp.raise_for_status()

        paths: dict[str, dict[str, Callable[[], object]]] = {
            "no-op": {
                "handle": lambda: ingress.noop.remote().result(),
                "HTTP hop alone (gunicorn /healthz, no Ray call)": lambda: ok(
                    front.get(f"{st.base_url}/healthz", timeout=30)
                ),
                "handle, api operation": lambda: ingress.api.remote("ping", caller, {}).result(),
                "Serve HTTP proxy": lambda: ok(http.get(f"{PROXY}/noop", timeout=30)),
                "Flask front": lambda: ok(front.get(f"{st.base_url}/ai/ping", timeout=30)),
            },
            "text embedding": {
                "handle": lambda: ingress.embed_text.remote(TEXT).result(),
                "handle, api operation": lambda: ingress.api.remote(
                    "embeddings.text", caller, {"text": TEXT}
                ).result(),
                "Serve HTTP proxy": lambda: ok(
                    http.get(f"{PROXY}/embed_text", params={"q": TEXT}, timeout=30)
                ),
                "Flask front": lambda: ok(
                    front.post(f"{st.base_url}/ai/embeddings/text", json={"text": TEXT}, timeout=30)
                ),
            },
        }
        for fns in paths.values():
            for fn in fns.values():
                for _ in range(30):  # warm up: connections, handles, JIT-free but cache-hungry paths
                    fn()
        per_round: dict[tuple[str, str], list[dict]] = {}
        for _ in range(args.rounds):
            for kind, fns in paths.items():
                samples: dict[str, list[float]] = {name: [] for name in fns}
                for _ in range(args.n):  # one call of each path in turn, so drift hits them alike
                    for name, fn in fns.items():
                        t0 = time.perf_counter()
                        fn()
                        samples[name].append(time.perf_counter() - t0)
                for name, values in samples.items():
                    per_round.setdefault((kind, name), []).append(latency_stats(values))
    stats = {
        key: {m: statistics.median(r[m] for r in rounds) for m in ("p50_ms", "p99_ms")}
        for key, rounds in per_round.items()
    }
    rows, figures = [], []
    for kind in paths:
        base = stats[(kind, "handle")]
        for name in paths[kind]:
            s = stats[(kind, name)]
            rows.append([kind, name, s["p50_ms"], s["p99_ms"], round(s["p50_ms"] - base["p50_ms"], 3)])
        added = stats[(kind, "Flask front")]["p50_ms"] - base["p50_ms"]
        via_proxy = stats[(kind, "Flask front")]["p50_ms"] - stats[(kind, "Serve HTTP proxy")]["p50_ms"]
        figures.append(
            figure(
                f"{kind}: p50 added by the Flask front over a direct handle call",
                round(added, 3),
                "ms",
                "<= 3 ms",
                added <= 3.0,
                flask_p50_ms=stats[(kind, "Flask front")]["p50_ms"],
                handle_p50_ms=base["p50_ms"],
                flask_over_serve_proxy_ms=round(via_proxy, 3),
            )
        )
    save(
        "front_path",
        figures=figures,
        tables=[
            table(
                f"Latency per call, single client, {args.n} calls x {args.rounds} rounds, the paths called "
                "in turn (median of the rounds' percentiles)",
                ["request", "path", "p50 ms", "p99 ms", "p50 added over handle, ms"],
                rows,
            )
        ],
        notes=[
            "handle: `ingress.noop` / `ingress.embed_text` from a Ray driver; handle, api operation: the "
            "call the front makes (`ingress.api`: validates the payload, runs the service for the caller).",
            "Serve HTTP proxy: Serve's own HTTP proxy on loopback to the ingress's `__call__`; Flask front: "
            "gunicorn (1 gthread worker) over HTTP keep-alive with a bearer token, rate limits, JSON logs "
            "and metrics: GET /ai/ping and POST /ai/embeddings/text.",
        ],
    )


if __name__ == "__main__":
    main()
