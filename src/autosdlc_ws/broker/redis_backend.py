"""The Redis backend: one `RedisLink` shared by a log, a session store and limits.

Registered for `redis://` and `rediss://` in `broker.registry`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autosdlc_ws.broker.backend import Backend
from autosdlc_ws.broker.redis_control import RedisControlChannel
from autosdlc_ws.broker.redis_limits import RedisSharedLimits
from autosdlc_ws.broker.redis_link import RedisLink
from autosdlc_ws.broker.redis_log import RedisEventLog
from autosdlc_ws.broker.redis_sessions import RedisSessionStore

if TYPE_CHECKING:
    from autosdlc_ws.config import Settings


def redis_backend(
    url: str,
    *,
    prefix: str = "{autosdlc}:",
    max_events: int = 100_000,
    max_age_s: float = 3600.0,
    reconnect_min_s: float = 0.05,
    reconnect_max_s: float = 5.0,
    connect_timeout_s: float = 1.0,
    command_timeout_s: float = 5.0,
    catch_up_timeout_s: float = 5.0,
    idle_ping_s: float = 2.0,
    trim_interval_s: float | None = None,
    start_timeout_s: float = 5.0,
    alert_after_s: float = 1.0,
    max_connections: int = 64,
    slot_lease_s: float = 30.0,
    slot_refresh_s: float | None = None,
    limit_timeout_s: float = 1.0,
    limit_retry_s: float = 1.0,
    snapshot_max_keys: int = 100_000,
    snapshot_ttl_s: float = 86_400.0,
    recent_events: int = 10_000,
) -> Backend:
    link = RedisLink(url, prefix=prefix, connect_timeout_s=connect_timeout_s,
                     command_timeout_s=command_timeout_s, max_connections=max_connections,
                     limit_timeout_s=limit_timeout_s)
    return Backend(
        name="redis",
        log=RedisEventLog(link, max_events=max_events, max_age_s=max_age_s,
                          reconnect_min_s=reconnect_min_s, reconnect_max_s=reconnect_max_s,
                          catch_up_timeout_s=catch_up_timeout_s, idle_ping_s=idle_ping_s,
                          trim_interval_s=trim_interval_s, start_timeout_s=start_timeout_s,
                          alert_after_s=alert_after_s, snapshot_max_keys=snapshot_max_keys,
                          snapshot_ttl_s=snapshot_ttl_s, recent_events=recent_events),
        sessions=RedisSessionStore(link),
        limits=RedisSharedLimits(link, slot_lease_s=slot_lease_s, slot_refresh_s=slot_refresh_s,
                                 limit_retry_s=limit_retry_s),
        # Its own connections (commands must get through while the log's are busy),
        # under the same prefix, so every process on this broker is one deployment.
        control=RedisControlChannel(url, prefix=prefix, connect_timeout_s=connect_timeout_s,
                                    reconnect_min_s=reconnect_min_s, reconnect_max_s=reconnect_max_s,
                                    idle_ping_s=idle_ping_s),
    )


def backend_from_settings(settings: Settings) -> Backend:
    """The `redis://` / `rediss://` registration (`broker.registry`)."""
    return redis_backend(settings.broker, prefix=settings.redis_prefix,
                         max_events=settings.history_max_events, max_age_s=settings.history_max_age_s,
                         reconnect_max_s=settings.redis_reconnect_max_s,
                         slot_lease_s=settings.connection_slot_lease_s,
                         snapshot_max_keys=settings.snapshot_max_keys, snapshot_ttl_s=settings.snapshot_ttl_s,
                         recent_events=settings.history_cache_events)
