"""One settings object, read from RECRUITMAIL_* environment variables (operations.md)."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """A variable is set but wrong; the message names it in one line."""


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError as exc:
        raise ValueError(f"{name}: cannot parse {value!r} ({exc})") from exc
    if parts.scheme not in schemes:
        raise ValueError(f"{name}: scheme must be one of {', '.join(schemes)}, got {value!r}")
    if parts.scheme not in ("sqlite", "unix") and not parts.hostname:
        raise ValueError(f"{name}: no host in {value!r}")
    del port
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECRUITMAIL_", extra="ignore")

    database_url: str = "sqlite://var/recruitmail.sqlite3"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Key prefix for every Redis key and channel, so test runs and tenants of one Redis
    # can share it without seeing each other.
    redis_prefix: str = "recruitmail"
    smtp_url: str = "smtp://127.0.0.1:25"
    mail_domain: str = "localhost"
    default_from: str | None = None
    inbound_domain: str = "inbound.localhost"
    inbound_host: str = "127.0.0.1"
    inbound_port: int = 2525
    inbound_max_bytes: int = 30 * 1024 * 1024
    # PEM certificate chain and key: when both are set the gateway offers STARTTLS.
    inbound_tls_cert: Path | None = None
    inbound_tls_key: Path | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str | None = None
    blob_dir: Path = Path("var/blobs")
    secret_key: str | None = None
    var_dir: Path = Path("var")
    # Delivery tuning.
    max_attempts: int = 5
    retry_base_seconds: float = 30.0
    lease_seconds: int = 120
    sweep_interval_seconds: int = 15
    smtp_timeout_seconds: float = 30.0
    smtp_connections_per_server: int = 8
    # Extra CA bundle to verify SMTP servers' certificates (a company relay with a private CA).
    smtp_ca_file: Path | None = None
    # GraphQL guards and web settings.
    allowed_origins: str = "*"
    introspection: bool = True
    max_query_depth: int = 15
    max_aliases: int = 100
    # Live subscriptions: events waiting for one subscription of a websocket (references
    # to shared payloads). A subscriber whose oldest waits 0.5 s is behind and gets status
    # changes of one message merged; when it is full the connection is closed with 4420
    # (see README, "Live updates").
    ws_queue_size: int = 5000
    log_json: bool = True
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _db(cls, v: str) -> str:
        return _check_url("RECRUITMAIL_DATABASE_URL", v, ("sqlite", "postgres", "asyncpg"))

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, v: str) -> str:
        return _check_url("RECRUITMAIL_REDIS_URL", v, ("redis", "rediss", "unix"))

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, v: str) -> str:
        return _check_url("RECRUITMAIL_SMTP_URL", v, ("smtp", "smtp+starttls", "smtps"))

    @field_validator("inbound_port", "api_port")
    @classmethod
    def _port(cls, v: int) -> int:
        if not 0 <= v <= 65535:
            raise ValueError(f"port {v} out of range 0-65535")
        return v

    @property
    def default_from_address(self) -> str:
        return self.default_from or f"recruiting@{self.mail_domain}"

    @property
    def public_base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def secret(self) -> bytes:
        """The server secret; generated once into var/secret.key when not configured."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.var_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        key = path.read_text().strip()
        self.secret_key = key
        return key.encode()


def _env_name(loc: tuple[object, ...]) -> str:
    return "RECRUITMAIL_" + "_".join(str(p) for p in loc).upper()


def load_settings() -> Settings:
    """Build settings from the environment; a wrong value raises SettingsError naming it."""
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err.get("msg", "invalid value"))
        name = _env_name(tuple(err.get("loc", ())))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if not msg.startswith("RECRUITMAIL_"):
            msg = f"{name}: {msg}"
        raise SettingsError(msg) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment)."""
    get_settings.cache_clear()
