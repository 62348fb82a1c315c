"""One settings object for every 12-factor variable (seed section 11) plus Ray and the data directory."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from recall_ray.errors import ConfigError


class ServiceKey(BaseModel):
    secret: SecretStr
    expires_at: dt.datetime | None = None


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "recall"


class Settings(BaseSettings):
    """Read from the environment (and an optional ``.env``); names are the upper-case field names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # `NAME=` in .env (as .env.example has it) means the default
        extra="ignore",
        populate_by_name=True,
    )

    recall_env: Literal["development", "test", "production"] = "development"
    data_dir: Annotated[Path, Field(validation_alias="RECALL_DATA_DIR")] = Field(
        default_factory=_default_data_dir
    )

    database_url: str | None = None
    database_pool_size: int = Field(default=5, ge=1, le=100)
    redis_url: str | None = None

    storage_backend: Literal["local", "s3"] | None = None
    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_presign_expiry_s: int = Field(default=300, ge=1, le=3600)
    # Hosts whose signed URLs the intake may fetch (https only); comma separated in the environment.
    signed_url_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    model_root: Path | None = None
    model_profile: Literal["tiny", "cpu", "gpu"] = "tiny"
    # The LLM the GPU profile serves with vLLM: a model version under MODEL_ROOT (name@version).
    vllm_model_name: str = Field(default="gpt-oss-20b@2025-08", pattern=r"^[^@\s]+@[^@\s]+$")
    vllm_max_model_len: int = Field(default=4096, ge=256, le=262144)
    vllm_tensor_parallel_size: int = Field(default=1, ge=1, le=16)

    secret_key: SecretStr | None = None
    sentry_dsn: SecretStr | None = None
    ray_address: str | None = None
    serve_app_name: str = "recall"
    serve_timeout_s: float = Field(default=60.0, gt=0, le=600)

    # Authentication. Firebase ID tokens: aud = a project id, iss = https://securetoken.google.com/<project>.
    firebase_project_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    firebase_jwks_url: str = (
        "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com"
    )
    # Google-signed OIDC tokens (service accounts, Cloud Functions): aud = one of these client ids / URLs.
    google_oauth_client_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    google_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    jwt_leeway_s: int = Field(default=60, ge=0, le=60)
    # Self-hosters' HS256 tokens signed with SECRET_KEY.
    selfhost_tokens: bool = True
    selfhost_issuer: str = "recall-selfhost"
    selfhost_audience: str = "recall-ai"
    # Firebase Functions' signed service calls: "keyid:secret[:expires_unix],..." (several for rotation: the
    # old key gets an expiry, the end of its overlap window).
    service_hmac_keys: Annotated[dict[str, ServiceKey], NoDecode] = Field(default_factory=dict)
    hmac_max_skew_s: int = Field(default=300, ge=30, le=900)

    # The HTTP edge.
    rate_limit_user: str = "120/minute"
    rate_limit_ip: str = "600/minute"
    proxy_hops: int = Field(default=0, ge=0, le=5)  # reverse proxies in front of gunicorn (Caddy: 1)
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    metrics_token: SecretStr | None = None
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=60)

    # Jobs and webhooks.
    job_max_attempts: int = Field(default=5, ge=1, le=20)
    job_backoff_base_s: float = Field(default=2.0, gt=0, le=600)
    job_backoff_max_s: float = Field(default=300.0, gt=0)
    job_lease_s: float = Field(default=120.0, ge=5)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)

    # Feature thresholds.
    search_min_score: float = Field(default=0.2, ge=-1, le=1)
    face_match_threshold: float = Field(default=0.45, ge=-1, le=1)
    min_face_size: int = Field(default=40, ge=8)
    min_face_score: float = Field(default=0.5, ge=0, le=1)
    schedule_async_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    default_timezone: str = "Asia/Tokyo"

    # Build information for /version (set by the deployment; otherwise read from git at start).
    git_sha: str | None = None
    build_time: str | None = None

    image_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    image_max_pixels: int = Field(default=50_000_000, ge=10_000)
    image_max_side: int = Field(default=12_000, ge=64)
    image_resize_bound: int = Field(default=2048, ge=64)
    fetch_timeout_s: float = Field(default=10.0, gt=0, le=120)

    # Backups (`recall db backup`): where they go, and how they are encrypted when a key is configured.
    backup_dir: Path | None = None  # default: <data dir>/backups
    backup_age_recipient: str | None = None  # age public key: backups are encrypted to it
    backup_age_identity: Path | None = None  # age identity file: restores decrypt with it
    backup_gpg_recipient: str | None = None  # or a gpg key id / e-mail (gpg's own keyring decrypts)

    @field_validator("signed_url_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        return value

    @field_validator("firebase_project_ids", "google_oauth_client_ids", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("service_hmac_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        keys: dict[str, dict[str, object]] = {}
        for item in filter(None, (v.strip() for v in value.split(","))):
            parts = item.split(":")
            if len(parts) not in (2, 3) or not parts[0] or len(parts[1]) < 32:
                raise ValueError(
                    "must be 'keyid:secret[:expires_unix]' items, comma separated, secrets of 32+ characters"
                )
            expires = None
            if len(parts) == 3:
                if not parts[2].isdigit():
                    raise ValueError(f"key {parts[0]}: expiry must be unix seconds")
                expires = dt.datetime.fromtimestamp(int(parts[2]), dt.UTC)
            keys[parts[0]] = {"secret": parts[1], "expires_at": expires}
        return keys

    @field_validator("default_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception:
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if self.storage_backend is None:
            self.storage_backend = "s3" if self.s3_bucket else "local"
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("S3_BUCKET is required when STORAGE_BACKEND=s3")
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("WEBHOOK_SECRET is required when WEBHOOK_URL is set")
        if self.recall_env == "production":
            if self.webhook_url and not self.webhook_url.startswith("https://"):
                raise ValueError("WEBHOOK_URL must be https in production")
            # The embedded database is a production choice on one box (Debian has no pgvector package).
            if self.secret_key is None:
                raise ValueError("SECRET_KEY is required when RECALL_ENV=production")
            if self.model_profile == "tiny":
                raise ValueError("MODEL_PROFILE=tiny (random test models) is not allowed in production")
        return self

    @property
    def sqlalchemy_url(self) -> str | None:
        if self.database_url is None:
            return None
        return to_psycopg_url(self.database_url)

    @property
    def effective_model_root(self) -> Path:
        return self.model_root or self.data_dir / "models"

    def secret_key_value(self) -> str:
        """SECRET_KEY, or on a development box a key generated once and kept (0600) in the data dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


def to_psycopg_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_settings(**overrides: object) -> Settings:
    """Build settings; a missing or malformed value raises ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = "_".join(str(p) for p in err["loc"]).upper() or "settings"
            problems.append(f"{loc}: {err['msg']}")
        raise ConfigError(
            "invalid configuration: " + "; ".join(problems),
            code="CONFIG_INVALID",
            details={"problems": problems},
        ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
