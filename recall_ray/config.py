"""One settings object for every 12-factor variable (seed section 11) plus Ray and the data directory."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from recall_ray.errors import ConfigError


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "recall"


class Settings(BaseSettings):
    """Read from the environment (and an optional ``.env``); names are the upper-case field names."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
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
    vllm_model_name: str = "gpt-oss-20b"
    vllm_max_model_len: int = Field(default=4096, ge=256, le=262144)
    vllm_tensor_parallel_size: int = Field(default=1, ge=1, le=16)

    secret_key: SecretStr | None = None
    sentry_dsn: SecretStr | None = None
    ray_address: str | None = None

    image_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    image_max_pixels: int = Field(default=50_000_000, ge=10_000)
    image_max_side: int = Field(default=12_000, ge=64)
    image_resize_bound: int = Field(default=2048, ge=64)
    fetch_timeout_s: float = Field(default=10.0, gt=0, le=120)

    @field_validator("signed_url_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
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
        if self.recall_env == "production":
            for name in ("database_url", "secret_key"):
                if getattr(self, name) is None:
                    raise ValueError(f"{name.upper()} is required when RECALL_ENV=production")
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
