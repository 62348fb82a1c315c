"""Presigned GET and PUT for the local object store (the embedded default; S3 serves its own URLs)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from flask_front.api import front
from recall_ray.errors import NotFound, Unauthorized
from recall_ray.intake import sniff_format
from recall_ray.storage import LocalStorage

bp = Blueprint("storage", __name__)


def _local() -> LocalStorage:
    from recall_ray.storage import storage_from_settings

    store = storage_from_settings(front().settings)
    if not isinstance(store, LocalStorage):
        raise NotFound("no local object storage here", code="AI_NOT_FOUND")
    return store


def _verify(store: LocalStorage, method: str, key: str) -> None:
    expires, signature = request.args.get("expires", ""), request.args.get("signature", "")
    if not expires.isdigit() or not store.verify_presigned(method, key, int(expires), signature):
        raise Unauthorized("the URL's signature is invalid or expired", code="AUTH_URL_SIGNATURE")


@bp.get("/storage/<path:key>")
def get_object(key: str) -> Response:
    store = _local()
    _verify(store, "GET", key)
    info = store.head(key)
    return Response(store.get(key), mimetype=info.content_type or "application/octet-stream")


@bp.put("/storage/<path:key>")
def put_object(key: str) -> Response:
    store = _local()
    _verify(store, "PUT", key)
    request.max_content_length = front().settings.image_max_bytes  # photos, not the JSON API's limit
    data = request.get_data()
    sniff_format(data)  # only images are stored
    store.put(key, data, request.content_type)
    return Response(status=204)
