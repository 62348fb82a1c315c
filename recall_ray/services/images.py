"""Image bytes for a service: an asset's object by key, or a signed URL, always through the intake checks."""

from __future__ import annotations

import asyncio

from recall_ray.intake import DecodedImage, SignedUrlFetcher, decode_image, fetch_by_key
from recall_ray.orm import Asset
from recall_ray.services.context import Context


async def asset_image(ctx: Context, asset: Asset) -> DecodedImage:
    data = await asyncio.to_thread(fetch_by_key, ctx.storage, asset.storage_key, ctx.settings)
    return await asyncio.to_thread(decode_image, data, ctx.settings, asset.content_type)


async def url_image(ctx: Context, url: str) -> DecodedImage:
    fetcher = SignedUrlFetcher.from_settings(ctx.settings)
    data = await asyncio.to_thread(fetcher.fetch, url)
    return await asyncio.to_thread(decode_image, data, ctx.settings)
