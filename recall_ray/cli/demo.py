"""``recall demo``: the main job on embedded defaults. It starts the whole stack (embedded PostgreSQL +
pgvector, local object storage, a local Ray with the Serve application, gunicorn with the Flask front),
makes a small sample set itself and uses the HTTP API the way a client would."""

from __future__ import annotations

import io
import socket
import time
from typing import Any

import click
from PIL import Image

from recall_ray.cli import main, redact
from recall_ray.config import get_settings

USER = "demo-user"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _samples() -> dict[str, Image.Image]:
    from skimage import data

    from recall_ray import evalset

    poster = next(p for p in evalset.POSTERS if p.name == "ja-boardgames")
    return {
        "astronaut": Image.fromarray(data.astronaut()),
        "astronaut-again": Image.fromarray(data.astronaut()).crop((60, 0, 512, 452)),
        "cat": Image.fromarray(data.chelsea()),
        "coffee": Image.fromarray(data.coffee()),
        "rocket": Image.fromarray(data.rocket()),
        "poster": evalset.render(poster),
    }


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


class Client:
    """The HTTP API as a client sees it (the demo; the benchmarks reuse it)."""

    def __init__(self, base: str, token: str):
        import requests

        self.base, self.http = base, requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        resp = self.http.request(method, self.base + path, json=body, timeout=120)
        if resp.status_code >= 400:
            raise click.ClickException(f"{method} {path} -> {resp.status_code} {resp.text}")
        return resp.json() if resp.content else None

    def upload(self, img: Image.Image) -> str:
        """A presigned PUT of the photo as JPEG; returns its storage key."""
        made = self.call("POST", "/ai/uploads", {"contentType": "image/jpeg"})
        url = made["uploadUrl"] if made["uploadUrl"].startswith("http") else self.base + made["uploadUrl"]
        put = self.http.put(url, data=_jpeg(img), headers={"Content-Type": "image/jpeg"}, timeout=60)
        put.raise_for_status()
        return made["storageKey"]

    def ingest(self, img: Image.Image, face_opt_in: bool = False) -> tuple[str, dict[str, Any]]:
        """Upload, register and wait for the ingest job; returns (asset id, finished job)."""
        reg = self.call("POST", "/ai/assets", {"storageKey": self.upload(img), "faceOptIn": face_opt_in})
        return reg["assetId"], self.wait(reg["jobId"])

    def wait(self, job_id: str, timeout_s: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = self.call("GET", f"/ai/jobs/{job_id}")
            if job["state"] in ("succeeded", "dead"):
                return job
            time.sleep(0.3)
        raise click.ClickException(f"job {job_id} did not finish in {timeout_s:.0f}s")


@main.command("demo")
def demo() -> None:
    """Start everything on embedded defaults and walk through ingest, search, themes, schedule and faces."""
    from flask_front.auth import SelfHostTokenVerifier
    from recall_ray.cli.serving import connect_ray, deploy_app, prepare_database, start_front, wait_ready

    settings = get_settings()
    t0 = time.monotonic()
    url = prepare_database(settings)
    click.echo(f"[1/7] PostgreSQL + pgvector up and migrated in {time.monotonic() - t0:.1f}s ({redact(url)})")
    click.echo(f"      object storage: {settings.storage_backend}; model profile: {settings.model_profile}")
    if settings.model_profile == "tiny":
        click.echo(
            "      (tiny profile: real model code with random weights, so similarity scores and labels are "
            "not meaningful; Tesseract OCR is real)"
        )
    owns_ray = connect_ray(settings, start_local=True)
    import ray

    t1 = time.monotonic()
    deploy_app(settings, None)
    click.echo(
        f"[2/7] Ray Serve application '{settings.serve_app_name}' running in {time.monotonic() - t1:.1f}s"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    front = start_front(ray.get_runtime_context().gcs_address, f"127.0.0.1:{port}", 1, quiet=True)
    try:
        wait_ready(base)
        click.echo(f"[3/7] Flask front ready on {base} (gunicorn; /readyz is 200)")
        api = Client(base, SelfHostTokenVerifier(settings).issue(USER, ttl_s=3600))
        _walkthrough(api)
    finally:
        front.terminate()
        front.wait(timeout=30)
        if owns_ray:
            from ray import serve

            serve.shutdown()
            ray.shutdown()
    click.echo(f"done in {time.monotonic() - t0:.1f}s")


def _walkthrough(api: Client) -> None:
    samples = _samples()
    assets: dict[str, str] = {}
    t0 = time.monotonic()
    for name, img in samples.items():
        assets[name], job = api.ingest(img, face_opt_in=name.startswith("astronaut"))
        view = api.call("GET", f"/ai/assets/{assets[name]}")
        click.echo(
            f"      {name:<16} {job['state']:<9} {view['width']}x{view['height']}  "
            f"embeddings: {len(view['embeddings'])}  faces: {view['faceCount']}"
        )
    click.echo(f"[4/7] ingested {len(assets)} photos in {time.monotonic() - t0:.1f}s")

    found = api.call("POST", "/ai/search", {"text": "a photo of a cat", "k": 3, "minScore": -1.0})
    names = {v: k for k, v in assets.items()}
    hits = ", ".join(f"{names.get(h['assetId'], h['assetId'])} ({h['score']:.3f})" for h in found["results"])
    click.echo(f"[5/7] search 'a photo of a cat' -> {hits}")
    themes = api.call(
        "POST", "/ai/themes/suggest", {"assetIds": list(assets.values()), "locale": "ja", "k": 10}
    )
    for c in themes["candidates"]:
        click.echo(
            f"      theme {c['label']} score {c['score']:.3f} from {len(c['supportingAssetIds'])} photos"
        )
    if themes.get("proposal"):
        p = themes["proposal"]
        click.echo(f"      proposal ({p['generator']}): {p['title']} / {p['body']}")

    sched = api.call(
        "POST",
        "/ai/schedule/from_image",
        {"assetId": assets["poster"], "referenceTime": "2025-09-02T12:00:00+09:00"},
    )
    click.echo(f"[6/7] schedule from the poster -> observation {sched['observationId']}")
    for c in sched["scheduleCandidates"]:
        click.echo(
            f"      {c.get('title')} | {c.get('start')} - {c.get('end')} | {c.get('location')} | "
            f"confidence {c['confidence']:.2f}"
        )
    for note in sched["notes"]:
        click.echo(f"      note: {note}")
    again = api.call(
        "POST",
        "/ai/schedule/from_image",
        {"assetId": assets["poster"], "referenceTime": "2025-09-02T12:00:00+09:00"},
    )
    click.echo(
        f"      asked again: same observation {again['observationId'] == sched['observationId']}, "
        f"reused {again['reused']}"
    )

    enrolled = api.call("POST", "/ai/people/enroll", {"assetIds": [assets["astronaut"]]})
    match = api.call(
        "POST", "/ai/people/match", {"assetId": assets["astronaut-again"], "candidateUserIds": [USER]}
    )
    click.echo(
        f"[7/7] enrolled {len(enrolled['enrolled'])} face; matching another photo -> {match['matches']} "
        f"(threshold {match['threshold']})"
    )
