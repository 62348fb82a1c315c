"""Shared test fixtures: real PostgreSQL + pgvector (pgserver), a real S3 HTTP API (moto's server on
loopback), the offline tiny models, a webhook receiver on loopback and one local Ray instance with the
``recall`` Serve application for the whole session."""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

os.environ.setdefault("RECALL_ENV", "test")
os.environ.setdefault("MODEL_PROFILE", "tiny")

from recall_ray import migrate  # noqa: E402
from recall_ray.config import Settings, get_settings, load_settings  # noqa: E402
from recall_ray.database import Database  # noqa: E402
from recall_ray.orm import Base  # noqa: E402

SERVICE_KEY_ID = "fn-2025"
SERVICE_KEY = "k" * 40  # test-only HMAC secret
OLD_SERVICE_KEY_ID = "fn-2024"
OLD_SERVICE_KEY = "o" * 40
WEBHOOK_SECRET = "w" * 40
S3_BUCKET = "recall-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recall-data")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    yield server
    server.cleanup()


def make_database(pg_server, name: str) -> str:  # noqa: ANN001
    """A fresh, empty database on the session's server; returns its SQLAlchemy URL."""
    from recall_ray.config import to_psycopg_url

    pg_server.psql(f'DROP DATABASE IF EXISTS "{name}";')
    pg_server.psql(f'CREATE DATABASE "{name}";')
    return to_psycopg_url(pg_server.get_uri(name))


@pytest.fixture(scope="session")
def database_url(pg_server) -> str:  # noqa: ANN001
    url = make_database(pg_server, "recall_test")
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


def truncate_all(database: Database) -> None:
    tables = ", ".join(
        f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables) if t.name != "model_versions"
    )
    with database.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def clean_db(database: Database) -> Database:
    """The migrated test database with every table emptied."""
    truncate_all(database)
    return database


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline tiny models, built once per session (nothing is downloaded)."""
    from recall_ray.tiny_models import build_all

    root = tmp_path_factory.mktemp("models")
    build_all(root)
    return root


class WebhookReceiver:
    """A Firebase Functions stand-in on loopback: records deliveries, answers ``fail_next`` 503s first."""

    def __init__(self) -> None:
        self.deliveries: list[dict] = []
        self.fail_next = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    self.send_response(503)
                else:
                    receiver.deliveries.append({"headers": dict(self.headers), "body": body})
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/recall"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(d["body"]) for d in self.deliveries]


@pytest.fixture(scope="session")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="session")
def stack_env(
    database_url: str, s3_endpoint: str, model_root: Path, data_dir: Path, webhook_receiver: WebhookReceiver
) -> dict[str, str]:
    """The environment of the whole stack. It is set before Ray starts, so every Ray worker inherits it."""
    from recall_ray.storage import S3Storage

    env = {
        "RECALL_ENV": "test",
        "RECALL_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "MODEL_PROFILE": "tiny",
        "MODEL_ROOT": str(model_root),
        "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
        "S3_ENDPOINT": s3_endpoint,
        "S3_BUCKET": S3_BUCKET,
        "S3_ACCESS_KEY": "test",
        "S3_SECRET_KEY": "test",
        "SERVICE_HMAC_KEYS": f"{SERVICE_KEY_ID}:{SERVICE_KEY},{OLD_SERVICE_KEY_ID}:{OLD_SERVICE_KEY}",
        "WEBHOOK_URL": webhook_receiver.url,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "JOB_BACKOFF_BASE_S": "0.2",
        "JOB_BACKOFF_MAX_S": "1",
        "JOB_LEASE_S": "10",
        "FIREBASE_PROJECT_IDS": "recall-test",
        "GOOGLE_OAUTH_CLIENT_IDS": "recall-ai-test",
    }
    os.environ.update(env)
    get_settings.cache_clear()
    S3Storage(S3_BUCKET, endpoint_url=s3_endpoint, access_key="test", secret_key="test", create_bucket=True)
    return env


@pytest.fixture(scope="session")
def settings(stack_env: dict[str, str]) -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def ray_session(stack_env: dict[str, str]) -> Iterator[None]:
    """One local Ray instance for the whole test session."""
    import ray

    # The dashboard serves Ray's job submission API (recall backfill start against RAY_ADDRESS).
    ray.init(num_cpus=4, include_dashboard=True, dashboard_port=free_port(), log_to_driver=False)
    yield
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def recall_app(ray_session, model_root: Path):  # noqa: ANN001, ANN201
    """The ``recall`` Serve application on the tiny profile, deployed from deploy/serve.cpu.yaml the way
    `recall up` deploys it; returns its ingress handle."""
    from ray import serve

    from deployments import serve_config

    config = serve_config.load_config(
        serve_config.config_path("tiny"), profile="tiny", model_root=str(model_root)
    )
    config.http_options.port = free_port()  # never the port of a `recall up` or demo on this machine
    serve_config.deploy(config)
    return serve.get_app_handle(serve_config.APP_NAME)


@pytest.fixture(scope="session")
def issuer():  # noqa: ANN201
    """The RSA key and JWKS endpoint that stand in for Google's (Firebase and Google ID tokens)."""
    from tests.auth_helpers import Issuer

    issuer = Issuer()
    yield issuer
    issuer.server.shutdown()


@pytest.fixture(scope="session")
def front_settings(stack_env: dict[str, str], issuer) -> Settings:  # noqa: ANN001
    # The shared test app polls jobs often; its limits are high (the limit tests build their own apps).
    return load_settings(
        firebase_jwks_url=issuer.url,
        google_jwks_url=issuer.url,
        rate_limit_user="100000/minute",
        rate_limit_ip="100000/minute",
    )


@pytest.fixture(scope="session")
def front_app(front_settings: Settings, recall_app):  # noqa: ANN001, ANN201
    """The Flask front, in this process, calling the session's Serve application through its handle."""
    from flask_front import create_app

    return create_app(front_settings)


@pytest.fixture
def client(front_app):  # noqa: ANN001, ANN201
    return front_app.test_client()


@pytest.fixture
def alice(client, issuer):  # noqa: ANN001, ANN201
    from tests.auth_helpers import as_user

    return as_user(client, issuer, "alice")


@pytest.fixture
def bob(client, issuer):  # noqa: ANN001, ANN201
    from tests.auth_helpers import as_user

    return as_user(client, issuer, "bob")


@pytest.fixture
def functions(client):  # noqa: ANN001, ANN201
    """Firebase Functions, signing with the current key; ``functions(user)`` acts for that user."""
    from tests.auth_helpers import as_service

    return lambda user="": as_service(client, SERVICE_KEY_ID, SERVICE_KEY, user)
