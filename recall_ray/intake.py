"""Image intake: every image path in the project goes through here.

Bytes come from object storage by key, or from a signed URL on an allow-listed S3 host (https only, no
redirects, no non-global addresses, byte cap, timeout). The format is decided by magic bytes, never by the
name or the claimed type; Pillow opens it with that one decoder; the pixel limit is an error, not a warning;
EXIF orientation is applied and the image is bounded in size.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from PIL import Image, ImageFile, ImageOps

from recall_ray.config import Settings
from recall_ray.errors import ImageRejected, PayloadTooLarge, Unavailable, UnsupportedMedia, UrlRefused
from recall_ray.storage import ObjectStorage

ImageFile.LOAD_TRUNCATED_IMAGES = False

CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "HEIF": "image/heic"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_heif_registered = False


@dataclass
class DecodedImage:
    image: Image.Image  # RGB, orientation applied, bounded in size
    format: str  # JPEG, PNG, WEBP, HEIF
    content_type: str
    width: int  # original dimensions, after orientation
    height: int
    byte_size: int
    sha256: str


def sniff_format(data: bytes) -> str:
    """The container format from magic bytes; raises for anything that is not an accepted image."""
    if not data:
        raise ImageRejected("the image is empty (0 bytes)", code="AI_IMAGE_EMPTY")
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIF"
    detected = _name_other(data)
    raise UnsupportedMedia(
        f"unsupported image format ({detected}); accepted: JPEG, PNG, WebP, HEIC",
        code="AI_IMAGE_UNSUPPORTED_FORMAT",
        details={"detected": detected},
    )


def _name_other(data: bytes) -> str:
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[:4] == b"%!PS" or data[:4] == b"\xc5\xd0\xd3\xc6":
        return "EPS"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    if data[:5] == b"%PDF-":
        return "PDF"
    return "unknown"


def _register_heif() -> None:
    global _heif_registered
    if not _heif_registered:
        from pillow_heif import register_heif_opener

        register_heif_opener()
        _heif_registered = True


def decode_image(data: bytes, settings: Settings, claimed_type: str | None = None) -> DecodedImage:
    if len(data) > settings.image_max_bytes:
        raise PayloadTooLarge(
            f"image is {len(data)} bytes, the limit is {settings.image_max_bytes}",
            code="AI_IMAGE_TOO_MANY_BYTES",
        )
    fmt = sniff_format(data)
    if claimed_type:
        claimed = claimed_type.split(";")[0].strip().lower()
        accepted = {CONTENT_TYPES[fmt]} | ({"image/heif"} if fmt == "HEIF" else set())
        if claimed not in accepted and claimed != "application/octet-stream":
            raise ImageRejected(
                f"content is {fmt} but was declared {claimed}",
                code="AI_IMAGE_TYPE_MISMATCH",
                details={"declared": claimed, "detected": CONTENT_TYPES[fmt]},
            )
    if fmt == "HEIF":
        _register_heif()
    Image.MAX_IMAGE_PIXELS = settings.image_max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = img.size
            if max(width, height) > settings.image_max_side:
                raise ImageRejected(
                    f"image is {width}x{height}; the longest side may be at most {settings.image_max_side}",
                    code="AI_IMAGE_DIMENSIONS",
                    details={"width": width, "height": height, "max_side": settings.image_max_side},
                )
            if width * height > settings.image_max_pixels:
                raise _bomb(width, height, settings)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb(*_peek_size(data), settings) from None
    except ImageRejected:
        raise
    except Image.UnidentifiedImageError:
        raise ImageRejected(f"the data is not a readable {fmt} image", code="AI_IMAGE_CORRUPT") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc)
        if "truncated" in msg or isinstance(exc, EOFError):
            raise ImageRejected("the image file is truncated", code="AI_IMAGE_TRUNCATED") from None
        raise ImageRejected(f"the {fmt} image could not be decoded", code="AI_IMAGE_CORRUPT") from None

    img = ImageOps.exif_transpose(img)
    width, height = img.size
    if img.mode != "RGB":
        img = img.convert("RGB")
    bound = settings.image_resize_bound
    if max(width, height) > bound:
        img.thumbnail((bound, bound), Image.Resampling.LANCZOS)
    return DecodedImage(
        image=img,
        format=fmt,
        content_type=CONTENT_TYPES[fmt],
        width=width,
        height=height,
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _peek_size(data: bytes) -> tuple[int, int]:
    saved = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None
        with Image.open(io.BytesIO(data)) as probe:
            return probe.size
    except Exception:
        return (0, 0)
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _bomb(width: int, height: int, settings: Settings) -> ImageRejected:
    return ImageRejected(
        f"image would decode to {width * height} pixels, more than the limit of {settings.image_max_pixels} "
        "(decompression bomb)",
        code="AI_IMAGE_DECOMPRESSION_BOMB",
        details={"width": width, "height": height, "max_pixels": settings.image_max_pixels},
    )


def fetch_by_key(storage: ObjectStorage, key: str, settings: Settings) -> bytes:
    return storage.get(key, max_bytes=settings.image_max_bytes)


# --- signed URLs -------------------------------------------------------------------------------------------

Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UrlRefused(f"host {host!r} does not resolve", code="AI_URL_UNRESOLVABLE") from None
    return sorted({info[4][0] for info in infos})


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback, whatever the prefix says
    return ip.is_global and not ip.is_multicast


class SignedUrlFetcher:
    """Fetches a signed URL with the checks that stop it being used to reach internal services."""

    def __init__(
        self,
        allowed_hosts: list[str],
        *,
        max_bytes: int,
        timeout_s: float,
        resolver: Resolver = system_resolver,
        address_allowed: Callable[[str], bool] = is_public_address,
        ca_certs: str | None = None,
    ):
        self.allowed_hosts = {h.lower().rstrip(".") for h in allowed_hosts}
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.resolver = resolver
        self.address_allowed = address_allowed
        self.ca_certs = ca_certs

    @classmethod
    def from_settings(cls, settings: Settings) -> SignedUrlFetcher:
        return cls(
            settings.signed_url_hosts, max_bytes=settings.image_max_bytes, timeout_s=settings.fetch_timeout_s
        )

    def check(self, url: str) -> tuple[str, int, str, str]:
        """Validate the URL; returns (host, port, pinned address, path with query)."""
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise UrlRefused(
                "only https URLs are accepted", code="AI_URL_SCHEME", details={"scheme": parts.scheme}
            )
        if parts.username or parts.password:
            raise UrlRefused("URLs with credentials are refused", code="AI_URL_CREDENTIALS")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise UrlRefused("the URL has no host", code="AI_URL_HOST_MISSING")
        literal = _ip_literal(host)
        if (
            host == "localhost"
            or host.endswith(".localhost")
            or (literal is not None and not self.address_allowed(literal))
        ):
            raise UrlRefused(
                f"host {host} is a non-global address", code="AI_URL_ADDRESS_REFUSED", details={"host": host}
            )
        if host not in self.allowed_hosts:
            raise UrlRefused(
                f"host {host} is not an allowed storage host",
                code="AI_URL_HOST_NOT_ALLOWED",
                details={"host": host},
            )
        port = parts.port or 443
        addresses = [literal] if literal else self.resolver(host, port)
        refused = [a for a in addresses if not self.address_allowed(a)]
        if not addresses or refused:
            raise UrlRefused(
                f"host {host} resolves to a non-global address",
                code="AI_URL_ADDRESS_REFUSED",
                details={"host": host},
            )
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return host, port, addresses[0], path

    def fetch(self, url: str) -> bytes:
        import urllib3

        host, port, address, path = self.check(url)
        # Connect to the address that was checked (no second DNS lookup), verify TLS for the host name.
        pool = urllib3.HTTPSConnectionPool(
            address,
            port=port,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=self.ca_certs or _default_ca(),
            timeout=urllib3.Timeout(connect=self.timeout_s, read=self.timeout_s),
            retries=False,
        )
        try:
            resp = pool.urlopen(
                "GET",
                path,
                headers={"Host": host},
                redirect=False,
                preload_content=False,
                assert_same_host=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise Unavailable(
                f"fetching the image failed: {type(exc).__name__}", code="AI_URL_FETCH_FAILED"
            ) from None
        try:
            if 300 <= resp.status < 400:
                raise UrlRefused(
                    "the URL redirects; redirects are not followed",
                    code="AI_URL_REDIRECT",
                    details={"status": resp.status},
                )
            if resp.status != 200:
                raise UrlRefused(
                    f"the URL answered HTTP {resp.status}",
                    code="AI_URL_STATUS",
                    details={"status": resp.status},
                )
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > self.max_bytes:
                raise PayloadTooLarge(
                    f"image is {length} bytes, the limit is {self.max_bytes}", code="AI_IMAGE_TOO_MANY_BYTES"
                )
            chunks, total = [], 0
            for chunk in resp.stream(65536):
                total += len(chunk)
                if total > self.max_bytes:
                    raise PayloadTooLarge(
                        f"image exceeds the limit of {self.max_bytes} bytes", code="AI_IMAGE_TOO_MANY_BYTES"
                    )
                chunks.append(chunk)
            return b"".join(chunks)
        except urllib3.exceptions.HTTPError as exc:
            raise Unavailable(
                f"fetching the image failed: {type(exc).__name__}", code="AI_URL_FETCH_FAILED"
            ) from None
        finally:
            resp.release_conn()
            pool.close()


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def _default_ca() -> str:
    import certifi

    return certifi.where()
