"""Image intake: every bad image and every refused URL gets its own clear error."""

import datetime as dt
import http.server
import ssl
import threading

import pytest
from PIL import Image

from recall_ray.errors import ImageRejected, PayloadTooLarge, UnsupportedMedia, UrlRefused
from recall_ray.intake import SignedUrlFetcher, decode_image, is_public_address
from tests.images import encode, noise_image


def codes(fn, *args, **kwargs):
    with pytest.raises((ImageRejected, UnsupportedMedia, PayloadTooLarge, UrlRefused)) as exc:
        fn(*args, **kwargs)
    return exc.value.code


def test_good_images_decode(settings):
    img = noise_image(300, 200)
    for fmt in ("JPEG", "PNG", "WEBP"):
        out = decode_image(encode(img, fmt), settings)
        assert (out.width, out.height, out.format, out.image.mode) == (300, 200, fmt, "RGB")


def test_heic_decodes(settings):
    from pillow_heif import from_pillow

    buf = __import__("io").BytesIO()
    from_pillow(noise_image(64, 64)).save(buf, quality=80)
    out = decode_image(buf.getvalue(), settings, claimed_type="image/heic")
    assert out.format == "HEIF" and out.image.size == (64, 64)


def test_exif_orientation_applied_and_resized(settings):
    img = noise_image(400, 100)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = decode_image(encode(img, "JPEG", exif=exif), settings)
    assert (out.width, out.height) == (100, 400)
    big = decode_image(encode(noise_image(3000, 1000), "PNG"), settings)
    assert max(big.image.size) == settings.image_resize_bound and big.width == 3000


def test_each_bad_image_has_its_own_error(settings):
    jpeg = encode(noise_image(), "JPEG")
    png = encode(noise_image(), "PNG")
    assert codes(decode_image, b"", settings) == "AI_IMAGE_EMPTY"
    assert codes(decode_image, jpeg[: len(jpeg) // 2], settings) == "AI_IMAGE_TRUNCATED"
    assert codes(decode_image, png, settings, claimed_type="image/jpeg") == "AI_IMAGE_TYPE_MISMATCH"
    bomb = encode(Image.new("1", (10_000, 10_000)), "PNG")  # 100 Mpx in a few kB
    assert len(bomb) < 100_000
    assert codes(decode_image, bomb, settings) == "AI_IMAGE_DECOMPRESSION_BOMB"
    tall = encode(Image.new("L", (1, 20_000)), "PNG")
    assert codes(decode_image, tall, settings) == "AI_IMAGE_DIMENSIONS"
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    assert codes(decode_image, eps, settings, claimed_type="image/png") == "AI_IMAGE_UNSUPPORTED_FORMAT"
    tiff = encode(noise_image(), "TIFF")
    assert codes(decode_image, tiff, settings, claimed_type="image/png") == "AI_IMAGE_UNSUPPORTED_FORMAT"
    corrupt = png[:16] + b"\x00" * 40 + png[56:]
    assert codes(decode_image, corrupt, settings) in ("AI_IMAGE_CORRUPT", "AI_IMAGE_TRUNCATED")


def test_public_address_rules():
    assert is_public_address("8.8.8.8")
    for addr in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1", "fd00::1", "0.0.0.0"):
        assert not is_public_address(addr), addr


@pytest.fixture
def fetcher():
    return SignedUrlFetcher(
        ["photos.example.com"], max_bytes=1000, timeout_s=2, resolver=lambda host, port: ["93.184.216.34"]
    )


def test_each_refused_url_has_its_own_error(fetcher):
    assert codes(fetcher.check, "http://photos.example.com/a.jpg") == "AI_URL_SCHEME"
    assert codes(fetcher.check, "https://169.254.169.254/latest/meta-data") == "AI_URL_ADDRESS_REFUSED"
    assert codes(fetcher.check, "https://localhost/a.jpg") == "AI_URL_ADDRESS_REFUSED"
    assert codes(fetcher.check, "https://[::ffff:127.0.0.1]/a.jpg") == "AI_URL_ADDRESS_REFUSED"
    assert codes(fetcher.check, "https://evil.example.net/a.jpg") == "AI_URL_HOST_NOT_ALLOWED"
    assert codes(fetcher.check, "https://user:pw@photos.example.com/a.jpg") == "AI_URL_CREDENTIALS"
    rebinding = SignedUrlFetcher(
        ["photos.example.com"], max_bytes=10, timeout_s=1, resolver=lambda host, port: ["10.1.2.3"]
    )
    assert codes(rebinding.check, "https://photos.example.com/a.jpg") == "AI_URL_ADDRESS_REFUSED"
    assert fetcher.check("https://photos.example.com/a.jpg?X-Amz-Signature=abc")[2] == "93.184.216.34"


@pytest.fixture
def https_server(tmp_path):
    """A real HTTPS server on loopback with a self-signed certificate for photos.example.com."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "photos.example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("photos.example.com")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    body = encode(noise_image(8, 8), "PNG")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path.startswith("/redirect"):
                self.send_response(302)
                self.send_header("Location", "https://169.254.169.254/")
                self.end_headers()
                return
            payload = body * 200 if self.path.startswith("/big") else body
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], str(cert_path), body
    server.shutdown()


def test_fetch_over_https_redirect_and_byte_cap(https_server):
    port, ca, body = https_server
    # Loopback stands in for a public S3 host here: the address policy is the one seam replaced.
    fetcher = SignedUrlFetcher(
        ["photos.example.com"],
        max_bytes=len(body) * 10,
        timeout_s=3,
        resolver=lambda host, p: ["127.0.0.1"],
        address_allowed=lambda a: True,
        ca_certs=ca,
    )
    assert fetcher.fetch(f"https://photos.example.com:{port}/ok.png?sig=1") == body
    assert codes(fetcher.fetch, f"https://photos.example.com:{port}/redirect") == "AI_URL_REDIRECT"
    assert codes(fetcher.fetch, f"https://photos.example.com:{port}/big.png") == "AI_IMAGE_TOO_MANY_BYTES"
