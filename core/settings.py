"""One settings object, read from RECRUITMAIL_* environment variables (operations.md)."""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError, ValidationInfo, field_validator
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


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str, name: str) -> list[IPNetwork]:
    """Comma-separated CIDRs (a bare address is a /32 or /128)."""
    out: list[IPNetwork] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{name}: {part!r} is not a network (e.g. 10.1.0.0/16)") from None
    return out


def parse_ports(value: str, name: str) -> list[tuple[int, int]]:
    """Comma-separated ports or ranges ("2526", "1024-65535")."""
    out: list[tuple[int, int]] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"{name}: {part!r} is not a port or a range a-b") from None
        if not (1 <= a <= b <= 65535):
            raise ValueError(f"{name}: {part!r} is outside 1-65535")
        out.append((a, b))
    return out


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
    # A claimed message is SENDING under a lease the worker's heartbeat renews every
    # lease_renew_seconds; a dead worker's messages are taken over once it has run out
    # (found by the sweeper, every sweep_interval_seconds).
    lease_seconds: int = 15
    lease_renew_seconds: float | None = None  # default: a third of lease_seconds
    sweep_interval_seconds: int = 5
    # SENT is written per mail right after the server's 250, several connections' mails
    # in one write (at most this many), and a connection takes its next mail only once the
    # write is done: a crash can re-send at most one mail per connection.
    sent_write_max: int = 50
    # A writer with nothing in flight gathers requests this long before it writes, so the
    # SENTs of connections whose 250s came within it go in one statement. It fits in the
    # next mail's MAIL/RCPT/DATA round trips (the content waits for the write); on this
    # 2-core machine 1 ms halved PostgreSQL's CPU a mail and raised a bulk's rate by a
    # fifth (2 ms and more made connections wait at the gate). 0: write at once.
    sent_write_linger_seconds: float = 0.001
    smtp_timeout_seconds: float = 30.0
    smtp_connections_per_server: int = 8
    # Extra CA bundle to verify SMTP servers' certificates (a company relay with a private CA).
    smtp_ca_file: Path | None = None
    # Company SMTP servers may only be at public addresses on the usual submission ports,
    # unless the operator allows more (comma-separated CIDRs; ports and ranges "a-b").
    company_smtp_allowed_networks: str = ""
    company_smtp_allowed_ports: str = ""
    # Pacing of company servers (core.services.pacing): a worker waits in place for a slot
    # up to this long, longer waits go back to the queue with Message.expectedSendAt.
    pacing_wait_in_place_seconds: float = 2.0
    # Idle pooled connections to a server with a connection limit close after this long,
    # so other worker processes can have its connections.
    limited_idle_close_seconds: float = 3.0
    # The lengths of a server limit's "minute" and "day" (tests shorten them; the same
    # code runs).
    pacing_minute_seconds: float = 60.0
    pacing_day_seconds: float = 86400.0
    # GraphQL guards and web settings.
    # Origins (scheme://host[:port], comma-separated) whose pages may call the API (CORS)
    # and open its websocket; "*" allows every origin. None by default.
    allowed_origins: str = ""
    introspection: bool = True
    max_query_depth: int = 15
    max_aliases: int = 100
    # Live subscriptions: events waiting for one subscription of a websocket (references
    # to shared payloads). A subscriber whose oldest waits 0.5 s is behind and gets status
    # changes of one message merged; when it is full the connection is closed with 4420
    # (see README, "Live updates").
    ws_queue_size: int = 5000
    # Status-change subscriptions of plain fields made without the GraphQL executor
    # (schema/live_compiled.py); false runs every selection through the executor.
    live_compiled: bool = True
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

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: str) -> str:
        for item in (i.strip() for i in v.split(",")):
            if not item or item == "*":
                continue
            parts = urlsplit(item)
            if (parts.scheme not in ("http", "https") or not parts.netloc
                    or parts.path not in ("", "/") or parts.query or parts.fragment):
                raise ValueError(f"{item!r} is not an origin (scheme://host[:port], or *)")
        return v

    @field_validator("company_smtp_allowed_networks")
    @classmethod
    def _networks(cls, v: str) -> str:
        parse_networks(v, "RECRUITMAIL_COMPANY_SMTP_ALLOWED_NETWORKS")
        return v

    @field_validator("company_smtp_allowed_ports")
    @classmethod
    def _ports(cls, v: str) -> str:
        parse_ports(v, "RECRUITMAIL_COMPANY_SMTP_ALLOWED_PORTS")
        return v

    @property
    def company_smtp_networks(self) -> list[IPNetwork]:
        return parse_networks(self.company_smtp_allowed_networks, "")

    @property
    def company_smtp_ports(self) -> list[tuple[int, int]]:
        return parse_ports(self.company_smtp_allowed_ports, "")

    @field_validator("sent_write_linger_seconds")
    @classmethod
    def _short_linger(cls, v: float) -> float:
        if not 0 <= v <= 0.1:
            raise ValueError(f"must be from 0 to 0.1 seconds, got {v}")
        return v

    @field_validator("lease_seconds", "sent_write_max", "sweep_interval_seconds")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"must be at least 1, got {v}")
        return v

    @field_validator("lease_renew_seconds")
    @classmethod
    def _renew(cls, v: float | None, info: ValidationInfo) -> float | None:
        lease = info.data.get("lease_seconds")
        if v is None:
            return v
        if v <= 0 or (lease is not None and v >= lease):
            raise ValueError(f"must be above 0 and below RECRUITMAIL_LEASE_SECONDS ({lease}),"
                             f" got {v}")
        return v

    @field_validator("inbound_port", "api_port")
    @classmethod
    def _port(cls, v: int) -> int:
        if not 0 <= v <= 65535:
            raise ValueError(f"port {v} out of range 0-65535")
        return v

    @property
    def lease_renew_every(self) -> float:
        return self.lease_renew_seconds or self.lease_seconds / 3

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
