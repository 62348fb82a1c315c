import pytest

from recall_ray.config import Settings, load_settings
from recall_ray.errors import ConfigError


@pytest.fixture(autouse=True)
def bare_environment(monkeypatch, tmp_path):
    """Each test starts from no settings at all, whatever the session's stack put into the environment."""
    for name in [*(f.upper() for f in Settings.model_fields), "RECALL_DATA_DIR"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_are_embedded(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    s = load_settings(data_dir=tmp_path)
    assert s.database_url is None
    assert s.storage_backend == "local"
    assert s.effective_model_root == tmp_path / "models"


def test_malformed_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("VLLM_MAX_MODEL_LEN", "lots")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "VLLM_MAX_MODEL_LEN" in exc.value.message


def test_bad_database_url_names_the_variable(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://x@y/z")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "DATABASE_URL" in exc.value.message


def test_production_requires_secrets(monkeypatch):
    monkeypatch.setenv("RECALL_ENV", "production")
    monkeypatch.setenv("MODEL_PROFILE", "cpu")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "SECRET_KEY" in exc.value.message


def test_s3_backend_requires_bucket(monkeypatch):
    monkeypatch.setenv("STORAGE_BACKEND", "s3")
    monkeypatch.delenv("S3_BUCKET", raising=False)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "S3_BUCKET" in exc.value.message


def test_signed_url_hosts_split_and_secret_hidden(monkeypatch):
    monkeypatch.setenv("SIGNED_URL_HOSTS", "A.example.com, b.example.com")
    monkeypatch.setenv("S3_SECRET_KEY", "very-secret")
    s = load_settings()
    assert s.signed_url_hosts == ["a.example.com", "b.example.com"]
    assert "very-secret" not in repr(s)


def test_generated_secret_key_is_private_and_stable(tmp_path):
    s = load_settings(data_dir=tmp_path)
    key = s.secret_key_value()
    assert key == s.secret_key_value() and len(key) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
