"""The front's own rules: object-level authorization on every route, rate limits, idempotency keys, the
error format, request ids, metrics, version and readiness."""

import json
import socket
import subprocess
import time

import pytest

from tests.flows import ingest, wait_job
from tests.images import astronaut
from tests.test_schedule import REF, poster


@pytest.fixture
def alices(alice, clean_db):
    asset = ingest(alice, "alice", astronaut(), "astro", faceOptIn=True)
    view = alice.get(f"/ai/assets/{asset}").get_json()
    board = ingest(alice, "alice", poster("en-lunch"), "board")
    obs = alice.post("/ai/schedule/from_image", {"assetId": board, "referenceTime": REF}).get_json()[
        "observationId"
    ]
    from sqlalchemy import select

    from recall_ray.orm import FaceEmbedding

    with clean_db.session() as s:
        face = s.scalars(select(FaceEmbedding.id).where(FaceEmbedding.asset_id == asset)).one()
    return {"asset": asset, "job": view["job"]["jobId"], "observation": obs, "face": face}


def test_bob_gets_404_for_every_route_on_alices_ids(alice, bob, alices):
    a, j, o, f = alices["asset"], alices["job"], alices["observation"], alices["face"]
    calls = [
        ("GET", f"/ai/assets/{a}", None),
        ("DELETE", f"/ai/assets/{a}", None),
        ("GET", f"/ai/jobs/{j}", None),
        ("GET", f"/ai/observations/{o}", None),
        ("DELETE", f"/ai/observations/{o}", None),
        ("POST", "/ai/search", {"assetId": a}),
        ("POST", "/ai/themes/suggest", {"assetIds": [a]}),
        ("POST", "/ai/people/match", {"assetId": a, "candidateUserIds": ["bob"]}),
        ("POST", "/ai/people/match", {"faceIds": [f], "candidateUserIds": ["bob"]}),
        ("POST", "/ai/people/enroll", {"assetIds": [a]}),
        ("POST", "/ai/schedule/from_image", {"assetId": a}),
        ("POST", "/ai/schedule/from_image", {"assetIds": [a]}),
    ]
    for method, path, body in calls:
        resp = bob.request(method, path, body)
        assert resp.status_code == 404, (method, path, resp.get_json())
        assert resp.get_json()["error"]["code"].endswith("NOT_FOUND")
    # Nothing of alice's changed, and she still sees all of it.
    assert (
        alice.get(f"/ai/assets/{a}").status_code == 200
        and alice.get(f"/ai/observations/{o}").status_code == 200
    )


def test_service_acting_for_bob_is_scoped_like_bob(functions, alices):
    as_bob = functions("bob")
    assert as_bob.get(f"/ai/assets/{alices['asset']}").status_code == 404
    assert functions("alice").get(f"/ai/assets/{alices['asset']}").status_code == 200
    resp = functions().get(f"/ai/assets/{alices['asset']}")  # a service acting for nobody
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "AUTH_USER_REQUIRED"


def test_malformed_ids_are_404_not_500(alice):
    for path in ("/ai/assets/../../etc", "/ai/assets/not-a-ulid", "/ai/jobs/x", "/ai/observations/obs_1"):
        assert alice.get(path).status_code == 404, path


def limited_app(front_settings, **overrides):
    from flask_front import create_app
    from recall_ray.config import load_settings

    return create_app(load_settings(firebase_jwks_url=front_settings.firebase_jwks_url, **overrides))


def test_rate_limit_gives_429_with_headers(front_settings, issuer):
    from tests.auth_helpers import as_user

    app = limited_app(front_settings, rate_limit_user="3/minute", rate_limit_ip="100/minute")
    carol = as_user(app.test_client(), issuer, "carol")
    statuses = [carol.post("/ai/search", {"text": "x"}) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    first, limited = statuses[0], statuses[-1]
    assert first.headers["X-RateLimit-Limit"] == "3" and first.headers["X-RateLimit-Remaining"] == "2"
    assert limited.get_json()["error"]["code"] == "AI_RATE_LIMITED"
    assert int(limited.headers["Retry-After"]) > 0 and limited.headers["X-RateLimit-Remaining"] == "0"
    # The limit is per user: another user is not affected; health checks are never limited.
    dave = as_user(app.test_client(), issuer, "dave")
    assert dave.post("/ai/search", {"text": "x"}).status_code == 200
    assert all(app.test_client().get("/healthz").status_code == 200 for _ in range(5))


def test_per_ip_limit_counts_failed_logins(front_settings):
    app = limited_app(front_settings, rate_limit_ip="3/minute")
    client = app.test_client()
    codes = [
        client.post("/ai/search", json={"text": "x"}, headers={"Authorization": "Bearer nope"}).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url():
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait()


def test_rate_limit_is_shared_by_workers_through_redis(front_settings, issuer, redis_url):
    from tests.auth_helpers import as_user

    workers = [limited_app(front_settings, rate_limit_user="3/minute", redis_url=redis_url) for _ in range(2)]
    callers = [as_user(w.test_client(), issuer, "erin") for w in workers]
    codes = [callers[i % 2].post("/ai/search", {"text": "x"}).status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]


def test_idempotency_replay_mismatch_and_in_flight(alice, clean_db):
    from tests.flows import upload
    from tests.images import noise_image

    key = upload("alice", noise_image(seed=31), "idem")
    headers = {"Idempotency-Key": "register-idem-1"}
    first = alice.post("/ai/assets", {"storageKey": key}, headers=headers)
    replay = alice.post("/ai/assets", {"storageKey": key}, headers=headers)
    assert first.status_code == replay.status_code == 202
    assert replay.get_json() == first.get_json() and replay.headers.get("Idempotent-Replayed") == "true"
    other = alice.post("/ai/assets", {"storageKey": key, "faceOptIn": True}, headers=headers)
    assert other.status_code == 422 and other.get_json()["error"]["code"] == "AI_IDEMPOTENCY_KEY_REUSED"
    wait_job(alice, first.get_json()["jobId"])


def test_idempotency_keys_are_scoped_to_the_caller(alice, bob, clean_db):
    from tests.flows import upload
    from tests.images import noise_image

    headers = {"Idempotency-Key": "same-key"}
    a = alice.post("/ai/assets", {"storageKey": upload("alice", noise_image(seed=1), "k")}, headers=headers)
    b = bob.post("/ai/assets", {"storageKey": upload("bob", noise_image(seed=2), "k")}, headers=headers)
    assert a.status_code == b.status_code == 202 and a.get_json()["assetId"] != b.get_json()["assetId"]


def test_concurrent_duplicate_gets_409(alice, clean_db):
    """Two identical requests at once: exactly one runs, the other is told it is in progress."""
    import hashlib

    from recall_ray.repositories import requests as request_repo
    from tests.flows import upload
    from tests.images import noise_image

    body = {"storageKey": upload("alice", noise_image(seed=41), "conc")}
    raw = json.dumps(body).encode()
    digest = hashlib.sha256(b"POST /ai/assets\n" + raw).hexdigest()
    with clean_db.session() as s:  # the first request has claimed the key and is still running
        request_repo.begin_idempotent(
            s, caller="user:alice", route="POST /ai/assets", key="k-conc", request_hash=digest, ttl_s=60
        )
    dup = alice.post("/ai/assets", body, headers={"Idempotency-Key": "k-conc"})
    assert dup.status_code == 409 and dup.get_json()["error"]["code"] == "AI_IDEMPOTENCY_IN_FLIGHT"


def test_error_format_for_http_errors(client, alice):
    cases = [
        (client.get("/nowhere"), 404, "AI_NOT_FOUND"),
        (client.put("/healthz"), 405, "AI_METHOD_NOT_ALLOWED"),
        (alice.request("POST", "/ai/search", {"text": "x" * 2_000_000}), 413, "AI_PAYLOAD_TOO_LARGE"),
        (
            alice.client.post(
                "/ai/search",
                data="text=x",
                headers=alice._headers("POST", "/ai/search", "", b"text=x"),
                content_type="application/x-www-form-urlencoded",
            ),
            415,
            "AI_UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            alice.client.post(
                "/ai/search",
                data=b"{not json",
                headers=alice._headers("POST", "/ai/search", "", b"{not json"),
                content_type="application/json",
            ),
            400,
            "AI_JSON_INVALID",
        ),
        (alice.post("/ai/search", ["a", "list"]), 422, "AI_VALIDATION_FAILED"),
    ]
    for resp, status, code in cases:
        body = resp.get_json()
        assert resp.status_code == status and body["error"]["code"] == code, (status, body)
        assert set(body["error"]) == {"code", "message", "details"} and "Traceback" not in resp.get_data(
            as_text=True
        )


def test_unexpected_errors_are_500_without_a_trace(front_settings):
    app = limited_app(front_settings)

    @app.get("/boom")
    def boom():  # an error no handler expects
        raise ZeroDivisionError("secret internals")

    resp = app.test_client().get("/boom", headers={"X-Request-ID": "req-boom-0001"})
    body = resp.get_json()
    assert resp.status_code == 500 and body["error"]["code"] == "AI_INTERNAL"
    assert (
        "secret internals" not in resp.get_data(as_text=True)
        and body["error"]["details"]["requestId"] == "req-boom-0001"
    )


def test_request_id_in_and_out_and_into_ray(alice, clean_db):
    from sqlalchemy import select

    from recall_ray.orm import AuditLog

    resp = alice.delete("/ai/people/me/faces", headers={"X-Request-ID": "trace-abc-123"})
    assert resp.status_code == 200 and resp.headers["X-Request-ID"] == "trace-abc-123"
    with clean_db.session() as s:  # the audit row was written inside Ray, with the same request id
        row = s.scalars(select(AuditLog).where(AuditLog.action == "face.opt_out")).one()
        assert row.request_id == "trace-abc-123" and row.actor == "user:alice"
    generated = alice.get("/ai/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV").headers["X-Request-ID"]
    assert len(generated) == 32
    assert (
        alice.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
        != "bad id with spaces"
    )


def test_metrics_are_protected(client, alice, front_settings):
    alice.post("/ai/search", {"text": "x"})
    direct = client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert direct.status_code == 200
    text = direct.get_data(as_text=True)
    assert "recall_http_request_duration_seconds_bucket" in text and 'route="/ai/search"' in text
    assert "recall_ray_call_duration_seconds" in text and "recall_http_in_flight" in text
    proxied = client.get(
        "/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert proxied.status_code == 401
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 401
    app = limited_app(front_settings, metrics_token="scrape-token-0123456789")
    c = app.test_client()
    assert (
        c.get(
            "/metrics",
            headers={"Authorization": "Bearer scrape-token-0123456789"},
            environ_base={"REMOTE_ADDR": "203.0.113.9"},
        ).status_code
        == 200
    )
    assert (
        c.get(
            "/metrics", headers={"Authorization": "Bearer wrong"}, environ_base={"REMOTE_ADDR": "203.0.113.9"}
        ).status_code
        == 401
    )


def test_version(client):
    body = client.get("/version").get_json()
    assert len(body["gitSha"] or "") == 40 and body["apiVersion"]
    assert (
        body["models"]["clip"] == {"openclip_tiny@test-1": 64}
        and body["models"]["faces"] == "faces_tiny@test-1"
    )


def test_readyz_follows_the_database(client, pg_server):
    ok = client.get("/readyz")
    assert ok.status_code == 200, ok.get_json()
    assert set(ok.get_json()["checks"]) == {"database", "serve", "ingress"}
    pgdata = pg_server.pgdata
    from recall_ray.database import stop_embedded

    assert stop_embedded(pgdata)
    try:
        down = client.get("/readyz")
        assert down.status_code == 503 and down.headers["Retry-After"]
        body = down.get_json()["error"]
        assert body["code"] == "AI_NOT_READY" and body["details"]["checks"]["database"]["ok"] is False
        assert body["details"]["checks"]["serve"]["ok"] is True
    finally:
        pg_server.ensure_postgres_running()
    deadline = time.monotonic() + 20
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "did not become ready again"
        time.sleep(0.5)


def test_sentry_events_are_scrubbed():
    from flask_front.observability import scrub_event

    event = {
        "request": {
            "headers": {
                "Authorization": "Bearer eyJabc.def.ghi",
                "X-Recall-User-Id": "alice",
                "Accept": "*/*",
            },
            "data": {"storageKey": "users/alice"},
            "query_string": "token=abc",
        },
        "user": {"id": "alice", "email": "alice@example.com"},
        "exception": {"values": [{"value": "failed for alice@example.com with Bearer abc.def"}]},
    }
    out = scrub_event(event)
    assert (
        out["request"]["headers"]["Authorization"] == "[redacted]"
        and out["request"]["headers"]["Accept"] == "*/*"
    )
    assert "data" not in out["request"] and "alice" not in json.dumps(out)
