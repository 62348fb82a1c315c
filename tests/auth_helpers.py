"""Credentials for the tests: an RSA key served as a JWKS over HTTP on loopback (standing in for Google's
key endpoint, which this machine cannot reach), token factories and the HMAC request signer."""

from __future__ import annotations

import http.server
import json
import secrets
import threading
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from flask_front.auth import sign_request

PROJECT = "recall-test"
GOOGLE_CLIENT = "recall-ai-test"


class Issuer:
    """An RSA signing key and its JWKS endpoint (``Cache-Control: max-age``), counting fetches."""

    def __init__(self, kid: str = "key-1", max_age: int = 3600):
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.fetches = 0
        self.max_age = max_age
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                issuer.fetches += 1
                body = json.dumps({"keys": [issuer.jwk()]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", f"public, max-age={issuer.max_age}")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def jwk(self) -> dict[str, Any]:
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {**data, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def firebase_token(self, user: str, *, kid: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": f"https://securetoken.google.com/{PROJECT}",
            "aud": PROJECT,
            "sub": user,
            "user_id": user,
            "iat": now,
            "auth_time": now,
            "exp": now + 3600,
            **claims,
        }
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    def google_token(self, user: str, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": "https://accounts.google.com",
            "aud": GOOGLE_CLIENT,
            "sub": user,
            "iat": now,
            "exp": now + 600,
        }
        return jwt.encode({**body, **claims}, self.key, algorithm="RS256", headers={"kid": self.kid})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    key_id: str,
    secret: str,
    user: str = "",
    query: str = "",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers of a Firebase Functions service call, signed as the front expects."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_urlsafe(18)
    signature = sign_request(
        secret, method=method, path=path, query=query, timestamp=ts, nonce=nonce, body=body, user=user
    )
    headers = {
        "X-Recall-Key-Id": key_id,
        "X-Recall-Timestamp": ts,
        "X-Recall-Nonce": nonce,
        "X-Recall-Signature": signature,
    }
    if user:
        headers["X-Recall-User-Id"] = user
    return headers


class Caller:
    """A Flask test client that authenticates every request one way (a user's token, or a signed call)."""

    def __init__(self, client: Any, headers: Any):
        self.client = client
        self._headers = headers  # (method, path, query, body) -> headers

    def request(
        self, method: str, path: str, json_body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        path_only, _, query = path.partition("?")
        body = b"" if json_body is None else json.dumps(json_body).encode()
        all_headers = {**self._headers(method, path_only, query, body), **(headers or {})}
        return self.client.open(
            path,
            method=method,
            data=body,
            headers=all_headers,
            content_type="application/json" if json_body is not None else None,
        )

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, json_body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json_body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


def as_user(client: Any, issuer: Issuer, user: str) -> Caller:
    token = issuer.firebase_token(user)
    return Caller(client, lambda m, p, q, b: bearer(token))


def as_service(client: Any, key_id: str, secret: str, user: str = "") -> Caller:
    return Caller(
        client, lambda m, p, q, b: signed(m, p, b, key_id=key_id, secret=secret, user=user, query=q)
    )
