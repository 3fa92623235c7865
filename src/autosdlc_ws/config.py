"""Configuration: one frozen, typed object; TOML file, then `AUTOSDLC_WS_*` environment.

Every field can be set in the TOML file (top-level key of the same name) and
overridden by the environment variable `AUTOSDLC_WS_<FIELD IN UPPER CASE>`.
Lists come from the environment as comma-separated values; booleans as
1/0/true/false/yes/no. API keys are only configured in the file
(`[[api_keys]]` with `name`, `sha256`, `permissions`) or as JSON in
`AUTOSDLC_WS_API_KEYS`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from autosdlc_ws.broker.registry import check_broker_url
from autosdlc_ws.core.permissions import PermissionSyntaxError, parse_permissions
from autosdlc_ws.core.type_limits import RateLimitsError, TypeLimit, parse_rate_limits
from autosdlc_ws.errors import ConfigError
from autosdlc_ws.server.logs import MessageLogConfig

ENV_PREFIX = "AUTOSDLC_WS_"


@dataclass(frozen=True, slots=True)
class ApiKeyEntry:
    name: str
    sha256: str  # hex digest of the key; the plaintext is never stored
    permissions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Settings:
    # --- network -----------------------------------------------------------
    host: str = "127.0.0.1"  # interface to bind
    port: int = 8765  # one port for WebSocket and HTTP
    workers: int = 1  # worker processes sharing the port (needs a shared broker)
    broker: str = "memory"  # "memory", a redis:// (rediss://) or redis-cluster://h:p[,h:p] URL; see broker.registry
    tls_cert: str | None = None  # PEM certificate chain; with tls_key serves wss/https
    tls_key: str | None = None
    allowed_origins: tuple[str, ...] = ()  # browser Origin allow-list; empty allows any
    trusted_proxies: tuple[str, ...] = ()  # proxy addresses/CIDRs whose X-Forwarded-For names the client
    http_idle_timeout_s: float = 30.0  # request head not complete by then: connection dropped (slowloris)
    # --- authentication ----------------------------------------------------
    jwt_secret: str | None = None  # HS256 secret
    jwt_public_keys: tuple[str, ...] = ()  # PEM files (RS256/ES256)
    jwks_files: tuple[str, ...] = ()  # JWKS JSON files; keys picked by `kid`
    jwt_algorithms: tuple[str, ...] = ("HS256", "RS256", "ES256")  # allow-list; never "none"
    jwt_issuer: str | None = None  # required `iss` when set
    jwt_audience: str | None = None  # required `aud` when set
    jwt_leeway_s: float = 5.0  # clock-skew allowance for exp/nbf
    jwt_require_exp: bool = True  # refuse tokens that never expire
    api_keys: tuple[ApiKeyEntry, ...] = ()
    auth_timeout_s: float = 5.0  # unauthenticated connections must auth within this
    max_auth_failures: int = 3  # in-band failures in a row before close 4001
    # --- protocol ----------------------------------------------------------
    heartbeat_interval_s: float = 25.0  # WebSocket ping interval; missed pong closes; 0 = no pings
    max_frame_bytes: int = 65536  # incoming frame size; a frame of exactly this is accepted
    max_decompressed_bytes: int = 1048576  # cap on a client's gzip frame once inflated
    max_json_depth: int = 32  # nesting of arrays/objects in a client message; deeper is invalid_message
    gzip_threshold_bytes: int = 1024  # outgoing JSON above this is gzipped for clients that ask
    max_subscriptions_per_connection: int = 100
    max_connections_per_process: int = 0  # 0: the open-files limit less 256; past it upgrades get 503
    max_connections_per_identity: int = 100
    max_connections_per_ip: int = 5000  # open WebSocket connections from one client address; 0 = off
    rate_connect_per_ip_per_s: float = 200.0  # upgrade attempts per client address (token bucket); 0 = off
    rate_connect_per_ip_burst: int = 1000
    outgoing_buffer_bytes: int = 4 * 1048576  # unsent bytes per connection before close 4008
    max_batch_bytes: int = 65536  # batched frames (opt-in `batch=1`): most JSON bytes in one array frame
    write_delay_ms: float = 0.0  # wait up to this long to gather more frames per write; 0 = next loop iteration
    # --- rate limits (token buckets per connection and message kind) --------
    rate_publish_per_s: float = 200.0
    rate_publish_burst: int = 400
    rate_control_per_s: float = 20.0  # subscribe/unsubscribe/auth_request/ping
    rate_control_burst: int = 40
    rate_identity_publish_per_s: float = 1000.0  # WebSocket publishes per identity, all connections; 0 = off
    rate_identity_publish_burst: int = 2000
    rate_limits: Mapping[str, TypeLimit] = field(default_factory=dict)  # message type -> {per_s, burst} per identity
    rate_violations_before_close: int = 50  # rate_limited answers in a row before close 1008
    http_publish_max_bytes: int = 1048576  # body cap of POST /api/v1/events
    # --- history and resume ------------------------------------------------
    history_max_events: int = 100_000
    history_max_age_s: float = 3600.0
    history_cache_events: int = 10_000  # redis: newest events a worker keeps in memory to answer resumes; 0 = off
    session_ttl_s: float = 300.0  # how long a disconnected session can be resumed
    # --- snapshot on subscribe (last value per event type and resource) -------
    snapshot_ttl_s: float = 86400.0  # a last value older than this is no longer sent
    snapshot_max_keys: int = 100_000  # last values kept per deployment (oldest dropped); 0 = off
    # --- redis broker (when broker is a redis:// URL) -------------------------
    redis_prefix: str = "{autosdlc}:"  # key and channel prefix; the {hash tag} keeps keys in one Cluster slot
    redis_reconnect_max_s: float = 5.0  # cap of the jittered exponential backoff while Redis is away
    redis_partitions: int = 16  # redis-cluster://: event log partitions, spread over the masters
    redis_partition_readers: str = "needed"  # redis-cluster://: read the partitions subscriptions need, or "all"
    connection_slot_lease_s: float = 30.0  # redis: a dead worker's identity slots lapse after it
    # --- sources -----------------------------------------------------------
    github_webhook_secret: str | None = None
    github_webhook_max_bytes: int = 1048576
    # --- system monitor ------------------------------------------------------
    monitor_interval_s: float = 5.0  # how often the system monitor looks; 0 disables it
    alert_error_rate_per_min: float = 120.0  # error frames per minute that raise a system_alert
    alert_connections: int = 50_000  # open connections that raise a system_alert
    alert_memory_mb: float = 4096.0  # worker RSS that raises a system_alert
    environment: str = "local"  # environment name in the gateway's own deployment_status events
    # --- operations --------------------------------------------------------
    shutdown_grace_s: float = 5.0  # time to drain queued frames on shutdown
    log_level: str = "INFO"  # DEBUG, INFO, WARNING, ERROR
    log_format: str = "text"  # "text" (key=value) or "json"
    message_log: MessageLogConfig | None = None  # message-logging filter at start (as PUT /api/v1/logging)
    dashboard: bool = True  # serve the web dashboard at /
    event_loop: str = "asyncio"  # "asyncio", "uvloop" or "auto" (uvloop when installed); also `serve --loop`

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError("workers must be at least 1")
        check_broker_url(self.broker, workers=self.workers)
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls_cert and tls_key go together")
        if "none" in (a.lower() for a in self.jwt_algorithms):
            raise ConfigError("jwt_algorithms must not contain 'none'")
        if self.log_format not in ("text", "json"):
            raise ConfigError("log_format must be 'text' or 'json'")
        try:  # also when built in code: a dict of plain {per_s, burst} is parsed here
            object.__setattr__(self, "rate_limits", parse_rate_limits(self.rate_limits))
        except RateLimitsError as exc:
            raise ConfigError(str(exc)) from None
        for entry in self.api_keys:
            if not re.fullmatch(r"[0-9a-f]{64}", entry.sha256):
                raise ConfigError(f"api key {entry.name!r}: sha256 must be 64 lowercase hex digits")
            try:
                parse_permissions(entry.permissions)
            except PermissionSyntaxError as exc:
                raise ConfigError(f"api key {entry.name!r}: {exc}") from None
        for name in ("max_frame_bytes", "max_decompressed_bytes", "outgoing_buffer_bytes",
                     "http_idle_timeout_s", "connection_slot_lease_s", "snapshot_ttl_s", "max_batch_bytes"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if not 0 <= self.write_delay_ms <= 1000:
            raise ConfigError("write_delay_ms must be from 0 to 1000")
        if self.event_loop not in ("auto", "asyncio", "uvloop"):
            raise ConfigError("event_loop must be 'auto', 'asyncio' or 'uvloop'")
        if self.redis_partition_readers not in ("needed", "all"):
            raise ConfigError("redis_partition_readers must be 'needed' or 'all'")
        if self.max_connections_per_process < 0:
            raise ConfigError("max_connections_per_process must be 0 (from the open-files limit) or positive")
        if self.heartbeat_interval_s < 0:
            raise ConfigError("heartbeat_interval_s must be 0 (no pings) or positive")
        if not 1 <= self.redis_partitions <= 1024:
            raise ConfigError("redis_partitions must be between 1 and 1024")
        if self.snapshot_max_keys < 0:
            raise ConfigError("snapshot_max_keys must be 0 (off) or positive")
        if self.history_cache_events < 0:
            raise ConfigError("history_cache_events must be 0 (off) or positive")
        if not 1 <= self.max_json_depth <= 200:  # orjson encodes at most 254 levels
            raise ConfigError("max_json_depth must be from 1 to 200")
        if self.message_log is not None and not isinstance(self.message_log, MessageLogConfig):
            raise ConfigError("message_log must be a MessageLogConfig (load_settings parses the table)")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ConfigError(f"trusted_proxies: {proxy!r} is not an IP address or network") from None

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, annotation: Any, value: Any) -> Any:
    text = isinstance(value, str)
    hint = str(annotation)
    if name == "rate_limits":
        try:
            return parse_rate_limits(value)
        except RateLimitsError as exc:
            raise ConfigError(str(exc)) from None
    if name == "api_keys":
        items = json.loads(value) if text else value
        for i in items:
            # A typo ("permission = [...]") would otherwise give a key with no permissions.
            extra = sorted(set(i) - {"name", "sha256", "permissions"})
            if extra:
                raise ConfigError(f"api_keys: unknown keys {', '.join(extra)} in entry {i.get('name')!r}")
        return tuple(
            ApiKeyEntry(
                name=str(i["name"]), sha256=str(i["sha256"]).lower(),
                permissions=tuple(i.get("permissions", ())),
            )
            for i in items
        )
    if name == "message_log":
        return _message_log(value)
    if hint.startswith("tuple"):
        if text:
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return tuple(value)
    if hint == "bool":
        if text:
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ConfigError(f"{name}: {value!r} is not a boolean")
            return value.lower() in ("1", "true", "yes")
        return bool(value)
    if hint == "int":
        return int(value)
    if hint == "float":
        return float(value)
    if value in ("", None) and "None" in hint:
        return None
    return str(value)


def _message_log(value: Any) -> MessageLogConfig | None:
    """The `message_log` table (TOML) or JSON object (environment), validated as
    `PUT /api/v1/logging` validates its body; a ValueError names what is wrong."""
    if isinstance(value, MessageLogConfig) or value is None:
        return value
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not valid JSON ({exc}); expected an object such as "
                             '{"enabled": true, "types": ["agent_*"]}') from None
    if not isinstance(value, dict):
        raise ValueError("expected a table (TOML) or JSON object of message-logging settings")
    return MessageLogConfig.from_json(value)


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """File, then environment, then explicit overrides (CLI flags), in that order."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    config_path = path or env.get(ENV_PREFIX + "CONFIG")
    if config_path:
        try:
            raw.update(tomllib.loads(Path(config_path).read_text()))
        except FileNotFoundError:
            raise ConfigError(f"config file {config_path} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_path}: {exc}") from None
    known = {f.name: f for f in fields(Settings)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
    for name in known:
        env_value = env.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            raw[name] = env_value
    for name, value in (overrides or {}).items():
        if value is not None:
            raw[name] = value
    values: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            values[name] = _coerce(name, known[name].type, value)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"config {name}: {exc}") from None
    return Settings(**values)


def describe_settings() -> list[tuple[str, str, str]]:
    """(name, default, comment) rows for the README's configuration table."""
    source = Path(__file__).read_text().splitlines()
    rows = []
    for f in fields(Settings):
        comment = ""
        for line in source:
            if re.match(rf"\s+{f.name}: ", line) and "#" in line:
                comment = line.split("#", 1)[1].strip()
        default: Any = f.default
        if default is dataclasses.MISSING:
            default = f.default_factory()  # type: ignore[misc,operator,unused-ignore]
        rows.append((f.name, repr(default), comment))
    return rows



def config_table_markdown() -> str:
    rows = ["| key | default | meaning |", "|---|---|---|"]
    rows += [f"| `{name}` | `{default}` | {comment} |" for name, default, comment in describe_settings()]
    return "\n".join(rows)


if __name__ == "__main__":  # python -m autosdlc_ws.config > table (used by `make docs`)
    print(config_table_markdown())
