"""The Serve application on one local Ray: each deployment through its handle, the graphs, reconfigure,
health, missing weights and a killed replica. Tiny random models prove code paths, not quality."""

import asyncio
import contextlib
import time

import numpy as np
import pytest
import ray
from ray import serve

from recall_ray import model_registry
from recall_ray.errors import ModelUnavailable
from tests.images import astronaut, noise_image


def clip_handle():
    return serve.get_deployment_handle("Clip", app_name="recall")


def faces_handle():
    return serve.get_deployment_handle("Faces", app_name="recall")


def test_clip_embeddings_normalised_deterministic_and_versioned(recall_app):
    img = np.asarray(noise_image(120, 90, seed=1))
    a = recall_app.embed_image.remote(img).result()
    b = recall_app.embed_image.remote(img).result()
    assert a["model_version"] == "openclip_tiny@test-1" and a["dim"] == 64
    assert a["vector"].dtype == np.float32 and a["vector"].shape == (64,)
    assert abs(np.linalg.norm(a["vector"]) - 1) < 1e-5
    np.testing.assert_array_equal(a["vector"], b["vector"])
    t = recall_app.embed_text.remote("a picnic in the park").result()
    assert t["vector"].shape == (64,) and abs(np.linalg.norm(t["vector"]) - 1) < 1e-5


def test_clip_batch_equals_single(recall_app):
    images = [np.asarray(noise_image(64 + i, 64, seed=i)) for i in range(6)]
    singles = [clip_handle().embed_images_unbatched.remote([im]).result()[0]["vector"] for im in images]
    batch = [r["vector"] for r in clip_handle().embed_images_unbatched.remote(images).result()]
    # Concurrent calls go through @serve.batch together.
    handle = clip_handle()
    concurrent = [r.result()["vector"] for r in [handle.embed_image.remote(im) for im in images]]
    for s, b, c in zip(singles, batch, concurrent, strict=True):
        np.testing.assert_allclose(s, b, atol=1e-5)
        np.testing.assert_allclose(s, c, atol=1e-5)


def test_faces_haar_path_finds_astronaut_and_embeds(recall_app):
    result = recall_app.analyze_faces.remote(np.asarray(astronaut())).result()
    assert result["model_version"] == "faces_tiny@test-1"
    assert len(result["faces"]) == 1
    face = result["faces"][0]
    x1, y1, x2, y2 = face["bbox"]
    assert 150 < x1 < 200 and 40 < y1 < 100 and x2 - x1 > 60  # the astronaut's face, top centre-right
    assert face["vector"].shape == (512,) and abs(np.linalg.norm(face["vector"]) - 1) < 1e-5
    assert recall_app.analyze_faces.remote(np.zeros((300, 300, 3), np.uint8)).result()["faces"] == []
    from skimage import data

    landscape = np.asarray(data.coffee())  # a cup of coffee on a table: no face
    assert recall_app.analyze_faces.remote(landscape).result()["faces"] == []


def test_faces_batch_equals_single(recall_app):
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (112, 112, 3), dtype=np.uint8) for _ in range(5)]
    handle = faces_handle()
    singles = [handle.embed_crop.remote(c).result()["vector"] for c in crops]
    together = [r.result()["vector"] for r in [handle.embed_crop.remote(c) for c in crops]]
    for s, t in zip(singles, together, strict=True):
        np.testing.assert_allclose(s, t, atol=1e-5)
        assert abs(np.linalg.norm(s) - 1) < 1e-5


def test_schedule_graph_reads_text_and_faces(recall_app):
    from tests.posters import render_text_image

    img = render_text_image(["週末ボードゲーム会", "Sep 14, 2-6pm Shibuya Cafe"])
    out = recall_app.schedule.remote(np.asarray(img)).result()
    tesseract = [line for line in out["reading"]["lines"] if line["engine"] == "tesseract"]
    text = " ".join(line["text"] for line in tesseract)
    assert "ボードゲーム" in text and "Shibuya" in text
    assert all(0 <= line["confidence"] <= 1 for line in tesseract)
    assert out["reading"]["model_versions"]["vlm"] == "florence2_tiny@test-1"
    assert out["faces"]["faces"] == []


def test_ingest_graph_runs_clip_and_faces(recall_app):
    out = recall_app.ingest.remote(np.asarray(astronaut()), True).result()
    assert out["clip"][0]["vector"].shape == (64,) and len(out["faces"]["faces"]) == 1
    assert recall_app.ingest.remote(np.asarray(astronaut()), False).result()["faces"] is None


def test_llm_schema_path_reports_failure_or_valid_json(recall_app):
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    out = recall_app.generate.remote(
        {
            "messages": [{"role": "user", "content": "Suggest a title"}],
            "json_schema": schema,
            "max_tokens": 16,
        }
    ).result()
    assert out["schema_valid"] in (True, False)
    if out["schema_valid"]:
        assert isinstance(out["json_value"]["title"], str)
    else:
        assert out["error"] and out["json_value"] is None
    assert out["model_version"] == "llm_tiny@test-1" and out["engine"] == "transformers"
    assert out["completion_tokens"] <= 16


def test_models_report_versions(recall_app):
    models = recall_app.models_status.remote().result()
    assert {k: v["ok"] for k, v in models.items()} == {
        "clip": True,
        "faces": True,
        "vlm": True,
        "llm": True,
        "jobs": True,
    }
    assert models["clip"]["versions"] == {"openclip_tiny@test-1": 64}


def test_missing_weights_fail_with_path_and_fix(tmp_path, model_root):
    with pytest.raises(ModelUnavailable) as exc:
        model_registry.verify(tmp_path, "openclip_vitb32@2025-08")
    assert str(tmp_path / "openclip_vitb32@2025-08" / "manifest.json") in exc.value.message
    assert "recall models pull openclip_vitb32@2025-08" in exc.value.message
    # A corrupted file fails its checksum.
    import shutil

    copy = tmp_path / "openclip_tiny@test-1"
    shutil.copytree(model_root / "openclip_tiny@test-1", copy)
    with (copy / "weights.safetensors").open("r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelUnavailable) as exc:
        model_registry.verify(tmp_path, "openclip_tiny@test-1")
    assert exc.value.code == "AI_MODEL_CHECKSUM" and "weights.safetensors" in exc.value.message


def test_missing_weights_refuse_to_start(tmp_path):
    from deployments.app import build

    with pytest.raises(ModelUnavailable) as exc:
        build({"profile": "cpu", "model_root": str(tmp_path)})
    assert "recall models pull" in exc.value.message


def test_reconfigure_switches_version_without_dropping_requests(recall_app):
    from deployments import serve_config

    img = np.asarray(noise_image(80, 80, seed=9))
    before = recall_app.embed_image.remote(img).result()
    replicas_before = _replica_names("Clip")

    async def hammer(stop):
        results = []
        while not stop.is_set():
            results.append(await clip_handle().embed_image.remote(img))
        return results

    async def run(versions):
        stop = asyncio.Event()
        task = asyncio.ensure_future(hammer(stop))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(serve_config.update_user_config, "Clip", {"versions": versions})
        await asyncio.sleep(0.3)
        stop.set()
        return await task

    try:
        results = asyncio.run(run(["openclip_tiny@test-2"]))  # every request succeeds during the switch
        assert results and {r["model_version"] for r in results} <= {
            "openclip_tiny@test-1",
            "openclip_tiny@test-2",
        }
        after = recall_app.embed_image.remote(img).result()
        assert after["model_version"] == "openclip_tiny@test-2"
        assert not np.allclose(after["vector"], before["vector"])
        assert _replica_names("Clip") == replicas_before  # reconfigured in place, not replaced
    finally:
        asyncio.run(run(["openclip_tiny@test-1"]))
    assert recall_app.embed_image.remote(img).result()["model_version"] == "openclip_tiny@test-1"


def _replica_names(deployment):
    return sorted(
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if "SERVE_REPLICA" in a["name"] and deployment in a["name"]
    )


def test_killed_replica_is_replaced(recall_app):
    img = np.asarray(noise_image(70, 70, seed=3))
    pending = recall_app.embed_image.remote(img)
    actors = [
        a
        for a in ray.util.list_named_actors(all_namespaces=True)
        if "SERVE_REPLICA" in a["name"] and "Clip" in a["name"]
    ]
    assert actors
    ray.kill(ray.get_actor(actors[0]["name"], namespace=actors[0]["namespace"]), no_restart=True)
    with contextlib.suppress(Exception):  # the in-flight request may die with its replica
        pending.result(timeout_s=30)
    deadline = time.monotonic() + 90
    while True:
        try:
            out = recall_app.embed_image.remote(img).result(timeout_s=30)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert out["vector"].shape == (64,)
