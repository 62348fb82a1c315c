"""Steps the end-to-end tests share: put a photo in object storage, register it, wait for its job."""

from __future__ import annotations

import time
from typing import Any

from PIL import Image

from recall_ray.config import get_settings
from recall_ray.storage import storage_from_settings, user_key_prefix
from tests.images import encode


def upload(user: str, image: Image.Image, name: str, fmt: str = "JPEG") -> str:
    key = f"{user_key_prefix(user)}{name}.{fmt.lower()}"
    storage_from_settings(get_settings()).put(key, encode(image, fmt), f"image/{fmt.lower()}")
    return key


def register(caller: Any, user: str, image: Image.Image, name: str, **fields: Any) -> dict[str, Any]:
    resp = caller.post("/ai/assets", {"storageKey": upload(user, image, name), **fields})
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()


def wait_job(
    caller: Any, job_id: str, timeout_s: float = 120, states=("succeeded", "dead")
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        resp = caller.get(f"/ai/jobs/{job_id}")
        assert resp.status_code == 200, resp.get_json()
        job = resp.get_json()
        if job["state"] in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['state']} after {timeout_s}s: {job}")
        time.sleep(0.2)


def ingest(caller: Any, user: str, image: Image.Image, name: str, **fields: Any) -> str:
    """Register a photo and wait until it is embedded; returns the asset id."""
    reg = register(caller, user, image, name, **fields)
    job = wait_job(caller, reg["jobId"])
    assert job["state"] == "succeeded", job
    return reg["assetId"]
