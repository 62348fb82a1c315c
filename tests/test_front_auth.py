"""The negative security suite: every forged, stale, replayed or misplaced credential gets 401 in the error
format; valid ones (including a rotated key in its overlap window) are accepted."""

import base64
import json
import time

import jwt
import pytest

from tests.auth_helpers import PROJECT, as_service, bearer, signed
from tests.conftest import OLD_SERVICE_KEY, OLD_SERVICE_KEY_ID, SERVICE_KEY, SERVICE_KEY_ID

SEARCH = {"text": "beach"}


def post_search(client, headers, body=SEARCH, query=""):
    return client.post(
        "/ai/search" + query, data=json.dumps(body), headers=headers, content_type="application/json"
    )


def assert_401(resp, code=None):
    assert resp.status_code == 401, resp.get_json()
    err = resp.get_json()["error"]
    assert set(err) == {"code", "message", "details"} and err["code"].startswith("AUTH_")
    if code:
        assert err["code"] == code, err
    return err["code"]


def test_valid_tokens_are_accepted(client, issuer):
    for token in (issuer.firebase_token("alice"), issuer.google_token("alice-google")):
        resp = post_search(client, bearer(token))
        assert resp.status_code == 200, resp.get_json()


def test_alg_none_refused(client, issuer):
    claims = jwt.decode(issuer.firebase_token("alice"), options={"verify_signature": False})
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    assert_401(post_search(client, bearer((header + b"." + payload + b".").decode())), "AUTH_TOKEN_ALGORITHM")


def test_hs256_signed_with_the_rsa_public_key_refused(client, issuer):
    claims = jwt.decode(issuer.firebase_token("alice"), options={"verify_signature": False})
    # The classic confusion attack: the public key used as an HMAC secret. PyJWT refuses to even build it
    # with a PEM secret, so sign by hand.
    import hashlib
    import hmac

    head = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": issuer.kid}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    sig = base64.urlsafe_b64encode(hmac.new(issuer.public_pem(), head + b"." + body, hashlib.sha256).digest())
    forged = (head + b"." + body + b"." + sig.rstrip(b"=")).decode()
    assert_401(post_search(client, bearer(forged)))


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"aud": "another-project"}, "AUTH_TOKEN_AUDIENCE"),
        ({"iss": "https://securetoken.google.com/another-project"}, "AUTH_TOKEN_ISSUER"),
        ({"iss": "https://evil.example.com"}, "AUTH_TOKEN_ISSUER"),
        ({"exp": -61}, "AUTH_TOKEN_EXPIRED"),  # times are seconds from now, taken when the test runs
        ({"iat": 120}, "AUTH_TOKEN_IAT"),
    ],
)
def test_bad_claims_refused(client, issuer, claims, code):
    claims = {k: int(time.time()) + v if k in ("exp", "iat") else v for k, v in claims.items()}
    assert_401(post_search(client, bearer(issuer.firebase_token("alice", **claims))), code)


def test_leeway_is_at_most_sixty_seconds(client, issuer):
    ok = issuer.firebase_token("alice", exp=int(time.time()) - 30, iat=int(time.time()) - 600)
    assert post_search(client, bearer(ok)).status_code == 200
    assert_401(post_search(client, bearer(issuer.firebase_token("alice", iat=int(time.time()) + 90))))


def test_unknown_kid_refused_without_refetching_every_time(client, issuer):
    before = issuer.fetches
    for _ in range(3):
        assert_401(
            post_search(client, bearer(issuer.firebase_token("alice", kid="rotated-away"))),
            "AUTH_TOKEN_KID_UNKNOWN",
        )
    assert issuer.fetches - before <= 1  # at most one refetch a minute for unknown keys
    fetched = issuer.fetches
    for _ in range(3):  # the key set is cached for its Cache-Control max-age
        assert post_search(client, bearer(issuer.firebase_token("alice"))).status_code == 200
    assert issuer.fetches == fetched


def test_token_in_query_string_refused(client, issuer):
    token = issuer.firebase_token("alice")
    assert_401(post_search(client, {}, query=f"?access_token={token}"), "AUTH_TOKEN_IN_QUERY")
    assert_401(post_search(client, bearer(token), query="?token=x"), "AUTH_TOKEN_IN_QUERY")


def test_missing_and_malformed_credentials(client):
    assert_401(post_search(client, {}), "AUTH_MISSING")
    assert_401(post_search(client, {"Authorization": "Basic YWxpY2U6cHc="}), "AUTH_SCHEME")
    assert_401(post_search(client, bearer("not-a-jwt")), "AUTH_TOKEN_INVALID")
    # Acting for a user needs a signed service call, not just a header.
    assert_401(post_search(client, {"X-Recall-User-Id": "alice"}), "AUTH_ACT_FOR_REQUIRES_SERVICE")


def test_selfhost_hs256_token(client, front_settings):
    from flask_front.auth import SelfHostTokenVerifier

    token = SelfHostTokenVerifier(front_settings).issue("carol", ttl_s=60)
    assert post_search(client, bearer(token)).status_code == 200
    wrong = jwt.encode(
        {
            "iss": "recall-selfhost",
            "aud": "recall-ai",
            "sub": "carol",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        "another-secret-that-is-long-enough-0123456789",
        algorithm="HS256",
    )
    assert_401(post_search(client, bearer(wrong)), "AUTH_TOKEN_INVALID")


def sign(body=SEARCH, **kw):
    raw = json.dumps(body).encode()
    opts = {"key_id": SERVICE_KEY_ID, "secret": SERVICE_KEY, "user": "alice"} | kw
    return raw, signed("POST", "/ai/search", raw, **opts)


def test_hmac_valid_call_acts_for_the_user(client):
    raw, headers = sign()
    resp = client.post("/ai/search", data=raw, headers=headers, content_type="application/json")
    assert resp.status_code == 200, resp.get_json()


def test_hmac_flipped_body_byte_refused(client):
    raw, headers = sign()
    flipped = raw.replace(b"beach", b"beacH")
    resp = client.post("/ai/search", data=flipped, headers=headers, content_type="application/json")
    assert_401(resp, "AUTH_HMAC_SIGNATURE")


@pytest.mark.parametrize("skew", [-301, 301])
def test_hmac_timestamp_outside_window_refused(client, skew):
    raw, headers = sign(timestamp=int(time.time()) + skew)
    assert_401(
        client.post("/ai/search", data=raw, headers=headers, content_type="application/json"),
        "AUTH_HMAC_TIMESTAMP",
    )


def test_hmac_reused_nonce_refused(client):
    raw, headers = sign()
    first = client.post("/ai/search", data=raw, headers=headers, content_type="application/json")
    assert first.status_code == 200
    again = client.post("/ai/search", data=raw, headers=headers, content_type="application/json")
    assert_401(again, "AUTH_HMAC_REPLAY")


def test_hmac_unknown_key_and_tampered_user_refused(client):
    raw, headers = sign(key_id="no-such-key")
    assert_401(
        client.post("/ai/search", data=raw, headers=headers, content_type="application/json"),
        "AUTH_HMAC_KEY_UNKNOWN",
    )
    raw, headers = sign()
    headers["X-Recall-User-Id"] = "mallory"  # the acting-for user is part of the signature
    assert_401(
        client.post("/ai/search", data=raw, headers=headers, content_type="application/json"),
        "AUTH_HMAC_SIGNATURE",
    )


def test_rotated_key_in_overlap_window_accepted_and_refused_after(client, front_settings, front_app):
    raw, headers = sign(key_id=OLD_SERVICE_KEY_ID, secret=OLD_SERVICE_KEY)
    assert (
        client.post("/ai/search", data=raw, headers=headers, content_type="application/json").status_code
        == 200
    )

    from flask_front import create_app
    from recall_ray.config import load_settings

    # The same key with its overlap window closed (expiry in the past) is refused.
    keys = f"{SERVICE_KEY_ID}:{SERVICE_KEY},{OLD_SERVICE_KEY_ID}:{OLD_SERVICE_KEY}:{int(time.time()) - 1}"
    closed = create_app(
        load_settings(service_hmac_keys=keys, firebase_jwks_url=front_settings.firebase_jwks_url)
    )
    raw, headers = sign(key_id=OLD_SERVICE_KEY_ID, secret=OLD_SERVICE_KEY)
    resp = closed.test_client().post("/ai/search", data=raw, headers=headers, content_type="application/json")
    assert_401(resp, "AUTH_HMAC_KEY_EXPIRED")
    caller = as_service(closed.test_client(), SERVICE_KEY_ID, SERVICE_KEY, "alice")
    assert caller.post("/ai/search", SEARCH).status_code == 200


def test_firebase_project_from_settings(front_settings):
    assert front_settings.firebase_project_ids == [PROJECT]
