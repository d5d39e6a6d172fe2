"""Hub settings: ``UNITY_*`` environment variables, then an optional TOML file.

Every setting is listed in ``docs/configuration.md``; a test keeps the two in
sync. The config file is ``$UNITY_CONFIG_FILE`` when set, else
``<data dir>/unity.toml`` when that exists. Environment variables win.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from unity_sdk import HOST_ID_PATTERN, RETENTION_KEY, host_id_for

__all__ = ["Settings", "default_data_dir", "get_settings"]

DEFAULT_AUTOENABLE = ["system-info", "disk-monitor", "network-monitor", "process-monitor"]


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/unity``, else ``~/.local/share/unity``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "unity"


def _config_file() -> Path | None:
    explicit = os.environ.get("UNITY_CONFIG_FILE")
    if explicit:
        return Path(explicit)
    data_dir = Path(os.environ.get("UNITY_DATA_DIR") or default_data_dir())
    candidate = data_dir / "unity.toml"
    return candidate if candidate.is_file() else None


class Settings(BaseSettings):
    """The hub's settings. Each field is one ``UNITY_<NAME>`` variable."""

    model_config = SettingsConfigDict(env_prefix="UNITY_", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder for the SQLite database and other state.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL; empty means SQLite in the data dir. "
        "PostgreSQL: postgresql+asyncpg://user:pass@host/db",
    )
    host: str = Field(default="127.0.0.1", description="Address `unity serve` listens on.")
    port: int = Field(default=8765, ge=1, le=65535, description="Port `unity serve` listens on.")
    tls_certfile: Path | None = Field(
        default=None,
        description="PEM certificate (chain) for `unity serve` to speak HTTPS itself; "
        "with UNITY_TLS_KEYFILE. Unset: plain HTTP (put a TLS proxy in front).",
    )
    tls_keyfile: Path | None = Field(
        default=None, description="PEM private key of UNITY_TLS_CERTFILE."
    )
    log_level: str = Field(default="INFO", description="Python logging level of the hub.")
    hostname: str = Field(
        default_factory=socket.gethostname,
        description="Host name recorded with metrics the hub collects locally.",
    )
    host_id: str = Field(
        default="",
        description="This machine's id among the hosts (the hub's own host card, and the "
        "`@host` of plugin instances). Empty: derived from UNITY_HOSTNAME "
        "(`NAS-01.lan` -> `nas-01`).",
    )
    autoenable: list[str] = Field(
        default_factory=lambda: list(DEFAULT_AUTOENABLE),
        description="Plugins enabled when they first enter an empty registry "
        "(JSON list, e.g. '[\"system-info\"]'; '[]' enables none).",
    )
    disabled_plugins: list[str] = Field(
        default_factory=list,
        description="Plugin ids the loader skips entirely (JSON list).",
    )
    retention_days: int = Field(
        default=7,
        ge=RETENTION_KEY.minimum,
        le=RETENTION_KEY.maximum,
        description="Days of metrics and executions kept per plugin by default "
        "(a plugin's config may set its own, within the same bounds).",
    )
    audit_retention_days: int = Field(
        default=365,
        ge=1,
        description="Days the credential audit log is kept (the hub's routine uses of a "
        "credential are kept UNITY_RETENTION_DAYS).",
    )
    batch_receipt_days: int = Field(
        default=7,
        ge=1,
        description="Days an external plugin's batch id is remembered: a retry within "
        "them is answered as a duplicate, a later one is stored again.",
    )
    rollup_minute_days: int = Field(
        default=90,
        ge=1,
        description="Days the 1-minute rollup tier (min/avg/max/count/last of every "
        "declared numeric metric) is kept.",
    )
    rollup_hour_days: int = Field(
        default=730, ge=1, description="Days the 1-hour rollup tier is kept."
    )
    rollup_interval_seconds: float = Field(
        default=60,
        gt=0,
        description="How often the hub rolls closed minutes and hours into the rollup tiers.",
    )
    retention_check_seconds: float = Field(
        default=3600, gt=0, description="How often the hub deletes data past retention."
    )
    hub_id: str = Field(
        default="",
        max_length=128,
        description="This hub's name among hubs sharing one PostgreSQL database (shown as the "
        "holder of its leases). Empty: host name, process id and a random suffix.",
    )
    hub_sync_seconds: float = Field(
        default=5,
        gt=0,
        le=300,
        description="On PostgreSQL, how often the hub reads plugins' enabled state and config, "
        "so changes made through another hub take effect here.",
    )
    scheduler_jitter: float = Field(
        default=0.1,
        ge=0,
        le=0.5,
        description="Random spread of each run's start, as a fraction of the interval; "
        "when above 0 the first runs are also spread over the first interval.",
    )
    degraded_after: int = Field(
        default=1, ge=1, description="Consecutive failures after which a plugin is degraded."
    )
    failing_after: int = Field(
        default=3, ge=1, description="Consecutive failures after which a plugin is failing."
    )
    health_check_seconds: float = Field(
        default=300,
        ge=0,
        description="How often each enabled plugin's health_check runs on its own "
        "(0: only on request); health is also assessed from every run's document.",
    )
    max_backoff_seconds: float = Field(
        default=900, gt=0, description="Upper bound of the delay between failing runs."
    )
    isolation_memory_mb: int = Field(
        default=1024,
        ge=0,
        description="Address-space cap of process-isolated plugin runs (0: none).",
    )
    process_isolation: list[str] = Field(
        default_factory=list,
        description="Plugin ids run in process isolation whatever their metadata says "
        "(JSON list; `unity serve --isolate ID` adds one).",
    )
    isolate_entry_points: bool = Field(
        default=False,
        description="Run every pip-installed (entry-point) plugin in process isolation.",
    )
    plugin_load_timeout: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Seconds plugins get to import and answer get_metadata() at start "
        "(all in parallel); a slower one is reported as failed to load.",
    )
    max_document_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest document a plugin run may return (serialized JSON, bytes); "
        "a larger one fails the run and nothing is stored.",
    )
    plugin_output_bytes: int = Field(
        default=64 * 1024,
        ge=0,
        description="Bytes of print and log output a plugin may write at once and per "
        "minute; the rest is dropped and counted in one warning per run.",
    )
    plugin_cpu_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Share of one CPU core a thread-mode plugin may use on average; "
        "after a run that used more, its next run waits longer (0: no limit).",
    )
    shutdown_grace_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Seconds the hub takes at most to stop: runs in flight and on_disable "
        "get this long, then blocked plugin threads are abandoned and children killed.",
    )
    dev_mode: bool = Field(
        default=False, description="Watch plugin source files and hot-reload them (serve --reload)."
    )
    stale_after_missed: int = Field(
        default=3,
        ge=1,
        description="Missed intervals after which an enabled plugin that stopped "
        "reporting (or running) is stale.",
    )
    agent_poll_seconds: float = Field(
        default=10.0,
        ge=1,
        le=3600,
        description="How often an agent asks the hub what to run. Never longer than the "
        "shortest interval of its enabled plugins, so a change reaches it within one interval.",
    )
    discovery_seconds: float = Field(
        default=600,
        ge=0,
        description="How often the hub looks at what runs on its own machine and proposes "
        "plugins for it, as agents do on theirs (0: never).",
    )
    max_batch_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest metric batch body accepted (bytes)."
    )
    schema_check_seconds: float = Field(
        default=5,
        gt=0,
        le=300,
        description="Longest the hub spends checking an external plugin's metadata, or a "
        "config against its schema, before refusing with 422 (checked off the event loop).",
    )
    max_future_skew_seconds: float = Field(
        default=300,
        ge=0,
        le=86400,
        description="How far ahead of the hub's clock an external plugin's sample may be "
        "dated; later samples are refused with 422.",
    )
    max_page_size: int = Field(default=1000, ge=1, description="Largest `limit` a list accepts.")
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body accepted (bytes), except metric batches "
        "(UNITY_MAX_BATCH_BYTES); larger ones are refused with 413 before they are read.",
    )
    body_timeout: float = Field(
        default=60,
        gt=0,
        description="Seconds a client has to send a whole request body; slower ones get 408.",
    )
    header_timeout: float = Field(
        default=10,
        gt=0,
        description="Seconds a connection has to send complete request headers, from when it "
        "opens or starts its next request; slower ones get 408 and are closed.",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Open HTTP connections `unity serve` accepts; requests on connections "
        "beyond it are answered 503 with Retry-After.",
    )
    database_connect_timeout: float = Field(
        default=10,
        gt=0,
        description="Seconds to wait for a PostgreSQL connection (connect, or a free pool slot) "
        "before the request is answered 503.",
    )
    bootstrap_token: bool = Field(
        default=True,
        description="On start, create and print an admin token when no admin token exists.",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="Master key of the credentials store: base64 of 32 random bytes. "
        "Unset: the key file master.key in the data dir (created on first start, mode 0600).",
    )
    master_key_previous: SecretStr | None = Field(
        default=None,
        description="The master key a rotation moves away from (or master.key.previous); "
        "needed only until `unity credentials rotate-master-key` has finished.",
    )
    ssh_connect_timeout: float = Field(
        default=10, gt=0, le=300, description="Seconds to connect and log in to a server over SSH."
    )
    auth_failure_burst: int = Field(
        default=5,
        ge=0,
        description="Failed authentications per client address and window answered at once; "
        "each further one is answered after a growing delay.",
    )
    auth_failure_limit: int = Field(
        default=20,
        ge=1,
        description="Failed authentications per client address and window after which the "
        "address is answered 429 with Retry-After until old failures leave the window.",
    )
    auth_failure_window_seconds: float = Field(
        default=60, gt=0, description="The moving window failed authentications are counted in."
    )
    auth_failure_delay_seconds: float = Field(
        default=0.25,
        ge=0,
        description="Delay added per failure beyond the burst (at most 8 steps).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For "
        "and X-Forwarded-Proto the hub believes (JSON list). Empty: the connecting "
        "address is the client.",
    )
    alert_eval_seconds: float = Field(
        default=15,
        gt=0,
        le=3600,
        description="How often the alert engine checks `for` durations, missing data and "
        "repeats (rules on metrics are evaluated as each run is recorded).",
    )
    alert_repeat_seconds: float = Field(
        default=4 * 3600,
        gt=0,
        description="How often a firing, unacknowledged alert is told again.",
    )
    alert_history_days: int = Field(
        default=90, ge=1, description="Days alert transitions (the alert history) are kept."
    )

    public_url: str = Field(
        default="",
        description="The hub's address as people reach it (e.g. https://unity.lan); links in "
        "notifications are built on it. Empty: links are paths relative to the hub.",
    )
    notify_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often the hub looks for notifications due."
    )
    notify_group_wait_seconds: float = Field(
        default=30,
        ge=0,
        le=3600,
        description="Notices of one host (or one rule) arriving within this many seconds of "
        "the first go out as one message.",
    )
    notify_rate_window_seconds: float = Field(
        default=60,
        gt=0,
        description="The window a channel's rate limit (messages per window) counts in; "
        "notices beyond it wait and go out together as one digest.",
    )
    notify_timeout_seconds: float = Field(
        default=15, gt=0, le=300, description="Seconds one delivery attempt may take."
    )
    notify_retry_seconds: float = Field(
        default=15,
        gt=0,
        description="Delay before the first retry of a failed delivery; doubles per attempt.",
    )
    notify_max_retry_seconds: float = Field(
        default=900, gt=0, description="Upper bound of the delay between delivery retries."
    )
    notify_max_attempts: int = Field(
        default=20,
        ge=1,
        description="Delivery attempts of a notice before it is marked failed for good.",
    )
    notify_log_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Days the delivery log is kept, and notices that failed for good or "
        "were dropped.",
    )
    notify_lease_seconds: float = Field(
        default=300,
        gt=0,
        description="How long a hub holds notices it claimed; a hub that died holding them "
        "loses them to the others after this.",
    )
    plugin_loop_threads: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Shared event-loop threads that run in-hub plugins (0: min(4, CPUs) + 1); "
        "a plugin that blocks gets a thread of its own on top.",
    )
    plugin_stall_seconds: float = Field(
        default=0.5,
        ge=0,
        description="How long one plugin may hold a shared plugin loop without awaiting "
        "before it is moved to a thread of its own and the others to a fresh loop "
        "(0: never moved).",
    )
    plugin_dedicated_threads: list[str] = Field(
        default_factory=list,
        description="Plugin ids that run on a thread of their own from the start (JSON "
        "list): plugins known to block.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @model_validator(mode="after")
    def _own_host_id(self) -> Settings:
        if not self.host_id:
            self.host_id = host_id_for(self.hostname)
        elif not re.fullmatch(HOST_ID_PATTERN, self.host_id):
            raise ValueError(
                "host_id must be lower-case letters, digits and inner hyphens, "
                "at most 24 characters"
            )
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("UNITY_TLS_CERTFILE and UNITY_TLS_KEYFILE go together: set both")
        for path in (self.tls_certfile, self.tls_keyfile):
            if path is not None and not path.is_file():
                raise ValueError(f"{path} is not a readable file")
        return self

    @field_validator("public_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'unity.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings(**overrides: Any) -> Settings:
    """The process-wide settings (cached); tests build ``Settings`` directly."""
    return Settings(**overrides)
