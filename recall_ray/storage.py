"""Object storage: one interface, an S3 implementation (boto3) and a local-directory implementation.

Originals are private; callers get short-lived presigned URLs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlencode

from recall_ray.config import Settings
from recall_ray.errors import BadRequest, NotFound, PayloadTooLarge, Unavailable


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None


def validate_key(key: str) -> str:
    if not key or len(key) > 1024 or key.startswith("/") or "\x00" in key or "\\" in key:
        raise BadRequest(
            "storage key must be a relative path of at most 1024 characters", code="AI_STORAGE_KEY"
        )
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise BadRequest("storage key must not contain empty, '.' or '..' segments", code="AI_STORAGE_KEY")
    return key


class ObjectStorage(Protocol):
    def put(self, key: str, data: bytes, content_type: str | None = None) -> None: ...
    def get(self, key: str, max_bytes: int | None = None) -> bytes: ...
    def head(self, key: str) -> ObjectInfo: ...
    def delete(self, key: str) -> None: ...
    def presign_get(self, key: str, expires_s: int) -> str: ...
    def presign_put(self, key: str, content_type: str, expires_s: int) -> str: ...


def _check_size(key: str, size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise PayloadTooLarge(
            f"object is {size} bytes, the limit is {max_bytes}",
            code="AI_IMAGE_TOO_MANY_BYTES",
            details={"key": key, "size": size, "limit": max_bytes},
        )


class LocalStorage:
    """Objects as files under a root directory. Presigned URLs are HMAC-signed paths that the front serves."""

    def __init__(self, root: Path, signing_key: str, base_url: str = "/storage"):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._key = signing_key.encode()
        self.base_url = base_url.rstrip("/")

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers never see a half-written object
        if content_type:
            path.with_name(f".{path.name}.content-type").write_text(content_type)

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        info = self.head(key)
        _check_size(key, info.size, max_bytes)
        return self._path(key).read_bytes()

    def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"no object at key {key!r}", code="AI_OBJECT_NOT_FOUND")
        ct_file = path.with_name(f".{path.name}.content-type")
        ct = ct_file.read_text() if ct_file.exists() else None
        return ObjectInfo(key=key, size=path.stat().st_size, content_type=ct)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        path.with_name(f".{path.name}.content-type").unlink(missing_ok=True)

    def _signature(self, method: str, key: str, expires: int) -> str:
        msg = f"{method}\n{key}\n{expires}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def _presign(self, method: str, key: str, expires_s: int) -> str:
        validate_key(key)
        expires = int(time.time()) + expires_s
        query = urlencode({"expires": expires, "signature": self._signature(method, key, expires)})
        return f"{self.base_url}/{quote(key)}?{query}"

    def presign_get(self, key: str, expires_s: int) -> str:
        return self._presign("GET", key, expires_s)

    def presign_put(self, key: str, content_type: str, expires_s: int) -> str:
        return self._presign("PUT", key, expires_s)

    def verify_presigned(self, method: str, key: str, expires: int, signature: str) -> bool:
        if expires < time.time():
            return False
        return hmac.compare_digest(self._signature(method, key, expires), signature)


class S3Storage:
    """Any S3-compatible store through boto3."""

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        create_bucket: bool = False,
    ):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(signature_version="s3v4", retries={"max_attempts": 3, "mode": "standard"}),
        )
        if create_bucket:
            self._ensure_bucket()

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def _call(self, key: str, fn, **kwargs):  # noqa: ANN001, ANN202
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(Bucket=self.bucket, Key=validate_key(key), **kwargs)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 or exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound(f"no object at key {key!r}", code="AI_OBJECT_NOT_FOUND") from None
            raise Unavailable(
                f"object storage error: {exc.response.get('Error', {}).get('Code')}",
                code="AI_STORAGE_UNAVAILABLE",
            ) from None
        except BotoCoreError as exc:
            raise Unavailable(
                f"object storage unreachable: {type(exc).__name__}", code="AI_STORAGE_UNAVAILABLE"
            ) from None

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        self._call(key, self.client.put_object, Body=data, **extra)

    def head(self, key: str) -> ObjectInfo:
        resp = self._call(key, self.client.head_object)
        return ObjectInfo(key=key, size=int(resp["ContentLength"]), content_type=resp.get("ContentType"))

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        resp = self._call(key, self.client.get_object)
        size = int(resp["ContentLength"])
        _check_size(key, size, max_bytes)
        return resp["Body"].read()

    def delete(self, key: str) -> None:
        self._call(key, self.client.delete_object)

    def presign_get(self, key: str, expires_s: int) -> str:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": validate_key(key)}, ExpiresIn=expires_s
        )

    def presign_put(self, key: str, content_type: str, expires_s: int) -> str:
        return self.client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": validate_key(key), "ContentType": content_type},
            ExpiresIn=expires_s,
        )


def storage_from_settings(settings: Settings) -> ObjectStorage:
    if settings.storage_backend == "s3":
        assert settings.s3_bucket is not None  # enforced by Settings
        return S3Storage(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint,
            region=settings.s3_region,
            access_key=settings.s3_access_key.get_secret_value() if settings.s3_access_key else None,
            secret_key=settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None,
        )
    return LocalStorage(settings.data_dir / "objects", settings.secret_key_value())


def user_key_prefix(user_id: str) -> str:
    """Where a user's own uploads live: a hash, so that object names carry no user id."""
    return f"u/{hashlib.sha256(user_id.encode()).hexdigest()[:16]}/"
