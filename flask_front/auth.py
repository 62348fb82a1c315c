"""Authentication: who is calling. Three verifiers, each accepting exactly one kind of credential.

- Firebase ID tokens and Google-signed ID tokens: RS256 only, keys from the issuer's JWKS (cached as its
  ``Cache-Control`` says), ``aud``/``iss``/``exp``/``iat``/``sub`` checked with at most 60 s leeway.
- Self-hosters' tokens: HS256 with SECRET_KEY, verified separately, so no token crosses algorithms.
- Firebase Functions' service calls: an API key id and HMAC-SHA256 over the canonical request, a timestamp
  within the allowed skew and a nonce used once. Only these callers may act for a user (X-Recall-User-Id).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

import jwt
import requests

from recall_ray.config import Settings
from recall_ray.errors import Unauthorized

USER_HEADER = "X-Recall-User-Id"
KEY_ID_HEADER = "X-Recall-Key-Id"
TIMESTAMP_HEADER = "X-Recall-Timestamp"
NONCE_HEADER = "X-Recall-Nonce"
SIGNATURE_HEADER = "X-Recall-Signature"
TOKEN_QUERY_PARAMS = ("access_token", "id_token", "token", "api_key", "apikey", "key", "signature")
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
_USER_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


@dataclass(frozen=True)
class Principal:
    """A verified caller: a user (token) or a service (HMAC key id), acting for ``user_id`` when set."""

    kind: str  # "user" or "service"
    user_id: str | None
    service: str | None = None
    scheme: str = ""  # firebase, google, selfhost, hmac

    @property
    def actor(self) -> str:
        parts = [f"service:{self.service}"] if self.service else []
        if self.user_id:
            parts.append(f"user:{self.user_id}")
        return "/".join(parts)


def fail(code: str, message: str) -> Unauthorized:
    return Unauthorized(message, code=code)


class KeySet:
    """A JWKS fetched over HTTPS and cached for its ``Cache-Control: max-age``; an unknown ``kid`` refetches
    at most once a minute (key rotation), never on every bad token."""

    MIN_REFRESH_S = 60.0

    def __init__(self, url: str, fetch: Callable[[str], requests.Response] | None = None):
        self.url = url
        self._fetch = fetch or (lambda u: requests.get(u, timeout=5))
        self._keys: dict[str, Any] = {}
        self._expires = 0.0
        self._fetched = 0.0
        self._lock = threading.Lock()

    def key(self, kid: str) -> Any:
        now = time.monotonic()
        if now >= self._expires or (kid not in self._keys and now - self._fetched >= self.MIN_REFRESH_S):
            self._refresh()
        if kid not in self._keys:
            raise fail("AUTH_TOKEN_KID_UNKNOWN", "the token's signing key is unknown")
        return self._keys[kid]

    def _refresh(self) -> None:
        with self._lock:
            try:
                resp = self._fetch(self.url)
                resp.raise_for_status()
                keys = {}
                for jwk in resp.json().get("keys", []):
                    if jwk.get("kty") == "RSA" and jwk.get("kid"):
                        keys[jwk["kid"]] = jwt.PyJWK(jwk, algorithm="RS256").key
            except (requests.RequestException, ValueError, jwt.PyJWKError):
                if not self._keys:
                    raise fail("AUTH_KEYS_UNAVAILABLE", "the token signing keys cannot be fetched") from None
                return  # keep the keys we have until the issuer answers again
            self._keys, self._fetched = keys, time.monotonic()
            self._expires = self._fetched + _max_age(resp.headers.get("Cache-Control", ""))


def _max_age(cache_control: str) -> float:
    m = re.search(r"max-age=(\d+)", cache_control)
    return float(min(int(m.group(1)), 86400)) if m else 300.0


class RsaTokenVerifier:
    """Firebase ID tokens (iss securetoken, aud = project id) and Google ID tokens (aud = client id)."""

    def __init__(self, settings: Settings, fetch: Callable[[str], requests.Response] | None = None):
        self.leeway = settings.jwt_leeway_s
        self.issuers: dict[str, tuple[list[str], KeySet, str]] = {}
        if settings.firebase_project_ids:
            firebase = KeySet(settings.firebase_jwks_url, fetch)
            for project in settings.firebase_project_ids:
                self.issuers[f"https://securetoken.google.com/{project}"] = ([project], firebase, "firebase")
        if settings.google_oauth_client_ids:
            google = KeySet(settings.google_jwks_url, fetch)
            for issuer in GOOGLE_ISSUERS:
                self.issuers[issuer] = (settings.google_oauth_client_ids, google, "google")

    def verify(self, token: str, header: dict[str, Any]) -> Principal:
        kid = header.get("kid")
        if not kid:
            raise fail("AUTH_TOKEN_KID_MISSING", "the token names no signing key")
        # The issuer picks the key set; the signature and every claim are then checked with that key alone.
        unverified = jwt.decode(token, options={"verify_signature": False})
        issuer = unverified.get("iss")
        if issuer not in self.issuers:
            raise fail("AUTH_TOKEN_ISSUER", "the token's issuer is not accepted")
        audiences, keyset, scheme = self.issuers[issuer]
        claims = _decode(token, keyset.key(kid), "RS256", audiences, issuer, self.leeway)
        if scheme == "firebase" and claims.get("auth_time", 0) > time.time() + self.leeway:
            raise fail("AUTH_TOKEN_IAT", "the token's auth_time is in the future")
        return Principal("user", _user_of(claims), scheme=scheme)


class SelfHostTokenVerifier:
    """HS256 tokens signed with SECRET_KEY (``recall token create``)."""

    def __init__(self, settings: Settings):
        self.secret = settings.secret_key_value()
        self.issuer, self.audience, self.leeway = (
            settings.selfhost_issuer,
            settings.selfhost_audience,
            settings.jwt_leeway_s,
        )

    def verify(self, token: str, header: dict[str, Any]) -> Principal:
        claims = _decode(token, self.secret, "HS256", [self.audience], self.issuer, self.leeway)
        return Principal("user", _user_of(claims), scheme="selfhost")

    def issue(self, user_id: str, ttl_s: int = 3600) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "userId": user_id,
            "iat": now,
            "exp": now + ttl_s,
        }
        return jwt.encode(claims, self.secret, algorithm="HS256")


def _decode(
    token: str, key: Any, algorithm: str, audiences: list[str], issuer: str, leeway: int
) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audiences,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise fail("AUTH_TOKEN_EXPIRED", "the token has expired") from None
    except jwt.InvalidAudienceError:
        raise fail("AUTH_TOKEN_AUDIENCE", "the token is for another audience") from None
    except jwt.InvalidIssuerError:
        raise fail("AUTH_TOKEN_ISSUER", "the token's issuer is not accepted") from None
    except jwt.ImmatureSignatureError:
        raise fail("AUTH_TOKEN_IAT", "the token is not valid yet (iat or nbf in the future)") from None
    except jwt.MissingRequiredClaimError as exc:
        raise fail("AUTH_TOKEN_CLAIMS", f"the token lacks the {exc.claim} claim") from None
    except jwt.InvalidTokenError:
        raise fail("AUTH_TOKEN_INVALID", "the token's signature or format is invalid") from None
    if not isinstance(claims.get("iat"), int | float) or claims["iat"] > time.time() + leeway:
        raise fail("AUTH_TOKEN_IAT", "the token is not valid yet (iat in the future)")
    return claims


def _user_of(claims: dict[str, Any]) -> str:
    user = claims.get("userId") or claims.get("user_id") or claims.get("sub")
    if not isinstance(user, str) or not _USER_ID.match(user):
        raise fail("AUTH_TOKEN_CLAIMS", "the token's user id is missing or malformed")
    return user


def canonical_request(
    method: str, path: str, query: str, timestamp: str, nonce: str, body: bytes, user: str
) -> bytes:
    """What a service signs: method, path, query sorted by name then value, timestamp, nonce, the body's
    SHA-256 and the user it acts for, one per line."""
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
    lines = [method.upper(), path, canonical_query, timestamp, nonce, hashlib.sha256(body).hexdigest(), user]
    return "\n".join(lines).encode()


def sign_request(secret: str, **parts: Any) -> str:
    return hmac.new(secret.encode(), canonical_request(**parts), hashlib.sha256).hexdigest()


class HmacVerifier:
    def __init__(self, settings: Settings, use_nonce: Callable[[str, str], bool]):
        self.keys = settings.service_hmac_keys
        self.max_skew = settings.hmac_max_skew_s
        self.use_nonce = use_nonce  # records a nonce; False if it was seen before

    def verify(self, method: str, path: str, query: str, headers: Any, body: bytes) -> Principal:
        key_id = headers.get(KEY_ID_HEADER, "")
        timestamp, nonce = headers.get(TIMESTAMP_HEADER, ""), headers.get(NONCE_HEADER, "")
        signature, user = headers.get(SIGNATURE_HEADER, ""), headers.get(USER_HEADER, "")
        key = self.keys.get(key_id)
        if key is None:
            raise fail("AUTH_HMAC_KEY_UNKNOWN", "unknown API key id")
        if key.expires_at is not None and dt.datetime.now(dt.UTC) >= key.expires_at:
            raise fail("AUTH_HMAC_KEY_EXPIRED", "this API key was rotated out")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.max_skew:
            raise fail("AUTH_HMAC_TIMESTAMP", f"the request timestamp is more than {self.max_skew} s off")
        if not _NONCE.match(nonce):
            raise fail("AUTH_HMAC_NONCE", "the nonce must be 16-128 characters of [A-Za-z0-9_-]")
        if user and not _USER_ID.match(user):
            raise fail("AUTH_HMAC_USER", f"{USER_HEADER} is malformed")
        expected = sign_request(
            key.secret.get_secret_value(),
            method=method,
            path=path,
            query=query,
            timestamp=timestamp,
            nonce=nonce,
            body=body,
            user=user,
        )
        if not hmac.compare_digest(expected, signature.lower()):
            raise fail("AUTH_HMAC_SIGNATURE", "the request signature does not match")
        # Only a correctly signed request spends its nonce; a replay of it is refused from now on.
        if not self.use_nonce(key_id, nonce):
            raise fail("AUTH_HMAC_REPLAY", "this nonce was already used")
        return Principal("service", user or None, service=key_id, scheme="hmac")


class Authenticator:
    def __init__(self, settings: Settings, use_nonce: Callable[[str, str], bool], fetch=None):  # noqa: ANN001
        self.rsa = RsaTokenVerifier(settings, fetch)
        self.selfhost = SelfHostTokenVerifier(settings) if settings.selfhost_tokens else None
        self.hmac = HmacVerifier(settings, use_nonce)

    def authenticate(
        self, method: str, path: str, query: str, args: Any, headers: Any, body: bytes
    ) -> Principal:
        if any(p in args for p in TOKEN_QUERY_PARAMS):
            raise fail("AUTH_TOKEN_IN_QUERY", "credentials are refused in the query string; use headers")
        if headers.get(KEY_ID_HEADER) or headers.get(SIGNATURE_HEADER):
            return self.hmac.verify(method, path, query, headers, body)
        if headers.get(USER_HEADER):
            raise fail("AUTH_ACT_FOR_REQUIRES_SERVICE", f"only signed service calls may send {USER_HEADER}")
        auth = headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if not auth:
            raise fail("AUTH_MISSING", "authentication required: a Bearer token or a signed service request")
        if scheme.lower() != "bearer" or not token.strip():
            raise fail("AUTH_SCHEME", "the Authorization header must be 'Bearer <token>'")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise fail("AUTH_TOKEN_INVALID", "the token is not a JWT") from None
        alg = header.get("alg")
        if alg == "RS256":
            return self.rsa.verify(token, header)
        if alg == "HS256" and self.selfhost is not None:
            return self.selfhost.verify(token, header)
        raise fail("AUTH_TOKEN_ALGORITHM", f"tokens signed with {alg!r} are not accepted")
