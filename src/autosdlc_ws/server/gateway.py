"""The gateway: settings, authenticator, broker backend, hub and the live connections.

Everything a route handler needs goes through this object; it is built once
per worker with its clock, backend and registry injected, so tests build one
with a memory backend and a fake clock. A `Connection` sees it only through
the narrow `ConnectionHost` protocol (`server.connection_host`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import psutil
from prometheus_client import CollectorRegistry

from autosdlc_ws import __version__
from autosdlc_ws.broker.backend import Backend
from autosdlc_ws.broker.base import (
    BrokerEvent,
    Outage,
    OutageKind,
    PublishReceipt,
    SharedLimits,
    SnapshotResult,
)
from autosdlc_ws.broker.control import ControlChannel, NodeInfo, this_process
from autosdlc_ws.broker.trail import SendTrail
from autosdlc_ws.config import Settings
from autosdlc_ws.core.auth import Authenticator, Principal
from autosdlc_ws.core.connection_core import AuthAccepted
from autosdlc_ws.core.envelope import make_message
from autosdlc_ws.core.error_groups import ErrorAggregator
from autosdlc_ws.core.open_values import unknown_values
from autosdlc_ws.core.partitions import PartitionDemand, affected, partition_scope
from autosdlc_ws.core.ratelimit import KeyedBuckets
from autosdlc_ws.core.resources import KIND_OF_KEY
from autosdlc_ws.core.schema_versions import stamp_version
from autosdlc_ws.core.subscription_counts import SubscriberCounts, SubscriptionShape, top_counts
from autosdlc_ws.core.subscriptions import Subscription
from autosdlc_ws.core.type_limits import Charge, TypeLimits
from autosdlc_ws.errors import CloseCode
from autosdlc_ws.server.admin_view import register_commands
from autosdlc_ws.server.alerts import (
    ERRORS_ORIGIN,
    BrokerOutageState,
    outage_alert,
    system_alert,
)
from autosdlc_ws.server.connection import Connection
from autosdlc_ws.server.hub import Hub
from autosdlc_ws.server.local_admin import GatewayAdmin
from autosdlc_ws.server.logs import MessageLog
from autosdlc_ws.server.sessions import Sessions, SessionStart
from autosdlc_ws.server.stats import SUBSCRIBER_RESOURCES_TOP, GatewayStats, StatsCollector

log = logging.getLogger("autosdlc_ws.gateway")

#: Prefix of the per-type buckets' keys in the shared limits (beside `rate:publish:`).
TYPE_LIMIT_NAMESPACE = "rate:"
#: An error-burst alert is raised once per deployment in this window, by the
#: first node whose group crosses the threshold (the group's own rate window).
ERROR_ALERT_LEASE_S = 60.0


@dataclass(frozen=True, slots=True)
class SharedBuckets:
    """Token buckets per identity kept by the shared limits: with a shared broker
    one bucket per identity for every worker, key `<namespace><identity>`."""

    limits: SharedLimits
    namespace: str
    rate_per_s: float
    burst: float

    async def take(self, identity: str, cost: float = 1) -> int:
        """0 when allowed (and charged), else milliseconds to wait."""
        return await self.limits.take_tokens(self.namespace + identity, self.rate_per_s, self.burst, cost)


class Gateway:
    def __init__(
        self,
        settings: Settings,
        *,
        backend: Backend,
        authenticator: Authenticator | None = None,
        clock_ms: Callable[[], int] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.authenticator = authenticator or Authenticator.from_settings(settings)
        self.now_ms: Callable[[], int] = clock_ms or (lambda: int(time.time() * 1000))
        self.stats = GatewayStats()
        self.message_log = MessageLog(settings.message_log)
        self.hub = Hub(gzip_threshold=settings.gzip_threshold_bytes, stats=self.stats,
                       message_log=self.message_log)
        self.connections: dict[str, Connection] = {}
        #: Connections per resource and per event type, kept as subscriptions change
        #: (read by /metrics and GET /api/v1/subscriptions without a walk).
        self.subscriber_counts = SubscriberCounts()
        #: Subscriptions per partition of a partitioned log: which partitions this worker reads.
        self.partition_demand = PartitionDemand(backend.log.partitions)
        #: The order the hub received live events in, on a partitioned log: every
        #: connection's live send order (exact resume, `broker.trail`), kept once per event.
        self._worker_trail = SendTrail(backend.log.partitions) if backend.log.partitions > 1 else None
        self.per_identity: Counter[str] = Counter()
        #: connection id -> the identity whose slot it holds (see `take_identity_slot`)
        self._slot_holders: dict[str, str] = {}
        self.per_ip: Counter[str] = Counter()
        self.connect_limiter = (
            KeyedBuckets(settings.rate_connect_per_ip_per_s, settings.rate_connect_per_ip_burst)
            if settings.rate_connect_per_ip_per_s > 0 else None)
        #: WebSocket publishes per identity, all its connections on every worker.
        self.identity_publish_limiter = (
            SharedBuckets(backend.limits, "rate:publish:", settings.rate_identity_publish_per_s,
                          settings.rate_identity_publish_burst)
            if settings.rate_identity_publish_per_s > 0 else None)
        #: Config `rate_limits`: one bucket per (message type, identity) on every worker,
        #: drawn from by WebSocket messages and HTTP publishes alike.
        self.type_limits = TypeLimits(settings.rate_limits)
        #: HTTP publish requests per identity, on every worker: 5 x the per-connection rate.
        self.http_publish_limiter = SharedBuckets(
            backend.limits, "rate:http_publish:", settings.rate_publish_per_s * 5, settings.rate_publish_burst * 5)
        self._trusted_proxies = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]
        self.registry = registry or CollectorRegistry()
        self._process = psutil.Process()
        self.collector = StatsCollector(self.stats, self._gauges, os.environ.get("AUTOSDLC_WS_STATS_DIR"))
        self.registry.register(self.collector)
        self.started_at_ms = self.now_ms()
        self.draining = False
        self._retired_frames = 0  # frames/bytes sent by connections that have closed
        self._retired_bytes = 0
        self.error_groups = ErrorAggregator(alert_per_min=settings.alert_error_rate_per_min)
        self.alert_sink: Callable[[dict[str, Any]], Coroutine[Any, Any, None]] | None = None  # the system monitor
        #: Broker loss, announced once whether the monitor or the log noticed it first.
        self.broker_outage = BrokerOutageState()
        self._stats_task: asyncio.Task[None] | None = None
        #: This process as the deployment's node registry lists it (wall-clock times).
        self.node: NodeInfo = this_process(__version__, int(time.time() * 1000))
        self.sessions = Sessions(backend, session_ttl_s=settings.session_ttl_s, connections=self.connections,
                                 forget_subscriptions=self._forget_subscriptions)

    def _fold_connection_counters(self) -> None:
        """Frames and bytes sent: closed connections' totals plus the live ones'."""
        live = self.connections.values()
        self.stats.messages_sent = self._retired_frames + sum(c.frames_out for c in live)
        self.stats.bytes_sent = self._retired_bytes + sum(c.bytes_out for c in live)

    def _gauges(self) -> dict[str, float]:
        self._fold_connection_counters()
        gauges: dict[str, float] = {
            "connections_active": len(self.connections),
            "subscriptions_active": len(self.hub.index),
            "memory_rss_bytes": float(self._process.memory_info().rss),
            "queued_bytes": float(sum(c.queue_depth_bytes() for c in self.connections.values())),
        }
        for kind in ("jwt", "api_key", "unauthenticated"):
            gauges[f"connections_by_auth:{kind}"] = 0.0
        for conn in self.connections.values():
            principal = conn.core.principal
            gauges[f"connections_by_auth:{principal.kind if principal else 'unauthenticated'}"] += 1
        for kind in ("agent", "task", "workflow", "repo", "unfiltered"):
            gauges[f"subscriptions_by_kind:{kind}"] = 0.0
        for conn in self.connections.values():
            for sub in conn.core.subscriptions.values():
                key = sub.index_key()
                kind = KIND_OF_KEY[key] if key else "unfiltered"
                gauges[f"subscriptions_by_kind:{kind}"] += 1
        resources, types = self.subscriber_counts.counts()
        for resource, count in top_counts(resources, SUBSCRIBER_RESOURCES_TOP).items():
            gauges[f"subscribers_by_resource:{resource}"] = float(count)
        for type_name, count in types.items():
            gauges[f"subscribers_by_type:{type_name}"] = float(count)
        return gauges

    def record_error(self, code: str, message_type: str, message: str) -> None:
        """Count an error frame; one `system_alert` when its group's rate crosses the threshold."""
        self.stats.errors[code] += 1
        if code == "rate_limited":
            self.count_rate_limited(message_type)
        group = self.error_groups.record(code, message_type, message, now_ms=self.now_ms(),
                                         now_s=time.monotonic())
        if group is not None and self.alert_sink is not None:
            alert = system_alert(
                alert_id=f"errors:{code}:{message_type}", severity="warning", title="Error burst",
                message=f"{group.rate_per_min(time.monotonic())} '{code}' errors on "
                        f"{message_type} messages in the last minute",
                resolved=False, origin=ERRORS_ORIGIN, now_ms=self.now_ms())
            asyncio.get_running_loop().create_task(self._raise_once(alert))

    async def _raise_once(self, alert: dict[str, Any]) -> None:
        """Raise an error-burst alert unless another node raised the same one lately: the
        first node to take the alert's lease speaks for the deployment."""
        try:
            first = await self.control.acquire_lease(f"alert:{alert['data']['alertId']}", ERROR_ALERT_LEASE_S)
        except Exception:  # fail open: an alert twice beats no alert
            first = True
        if first and self.alert_sink is not None:
            await self.alert_sink(alert)

    # --- the ConnectionHost protocol (what a Connection may ask of its gateway) ---

    def frame_received(self, size: int, message_type: str) -> None:
        self.stats.bytes_received += size
        self.stats.received_size.observe(size)
        self.stats.messages_received[message_type] += 1

    def slow_consumer_closed(self) -> None:
        self.stats.slow_consumer_disconnects += 1

    @property
    def logs_messages(self) -> bool:
        return self.message_log.enabled

    def log_message(self, direction: str, message: dict[str, Any], *, subject: str | None,
                    connection_id: str) -> None:
        self.message_log.log(direction, message, subject=subject, connection_id=connection_id)

    def _scope(self, subscription: Subscription[Any]) -> frozenset[int] | None:
        return partition_scope(subscription.types, subscription.filters, self.log_partitions)

    async def prepare_subscription(self, subscription: Subscription[Any]) -> None:
        # a no-op for a log read whole; a partitioned one (even of 1 partition) starts readers
        await self.backend.log.read_partitions(self._scope(subscription))

    def subscription_added(self, conn: Connection, subscription: Subscription[Any]) -> None:
        self.hub.index.add(subscription)
        self.subscriber_counts.add(conn, subscription.id, SubscriptionShape(subscription.types, subscription.filters))
        self.partition_demand.add(conn, subscription.id, self._scope(subscription))
        self.sessions.schedule_save(conn)

    def subscription_removed(self, conn: Connection, subscription_id: str) -> None:
        self.hub.index.remove(subscription_id)
        self.subscriber_counts.remove(conn, subscription_id)
        self._unread(self.partition_demand.remove(conn, subscription_id))
        self.sessions.schedule_save(conn)

    def _unread(self, partitions: frozenset[int]) -> None:
        if partitions:
            self.backend.log.unread_partitions(partitions)

    async def take_identity_publish(self, identity: str) -> int:
        limiter = self.identity_publish_limiter
        return 0 if limiter is None else await limiter.take(identity)

    async def take_type_limit(self, charge: Charge) -> int:
        return await self.backend.limits.take_tokens(
            TYPE_LIMIT_NAMESPACE + charge.key, charge.per_s, charge.burst, charge.cost)

    def count_rate_limited(self, message_type: str) -> None:
        """One refusal by a rate limit; by type only for types with a configured
        limit (`other` for the rest), so the metric's labels stay bounded."""
        self.stats.rate_limited += 1
        self.stats.rate_limited_by_type[self.type_limits.label(message_type)] += 1

    @property
    def log_partitions(self) -> int:
        return self.backend.log.partitions

    @property
    def worker_trail(self) -> SendTrail | None:
        return self._worker_trail

    def _trail_and_fan_out(self, record: BrokerEvent) -> None:
        assert self._worker_trail is not None
        self._worker_trail.record(record)
        self.hub.on_broker_event(record)

    @property
    def control(self) -> ControlChannel:
        """The deployment's node registry and commands (the backend's control channel)."""
        return self.backend.control

    async def start(self) -> None:
        """Start the broker, join the deployment's node registry, start the stats tick."""
        on_event = self.hub.on_broker_event if self._worker_trail is None else self._trail_and_fan_out
        await self.backend.start(on_event, self._on_outage)
        self.control.update(0, self.node_gauges())
        await self.control.start(self.node, register_commands(GatewayAdmin(self)))
        self._stats_task = asyncio.get_running_loop().create_task(self._stats_tick())

    async def close(self) -> None:
        """Stop the stats tick, leave the node registry and close the backend (after `drain`)."""
        task, self._stats_task = self._stats_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.sessions.close()
        try:
            await self.control.close()
        finally:
            await self.backend.close()

    def _on_outage(self, outage: Outage) -> None:
        """The log reports on its own health; the alert goes to this worker's subscribers."""
        alert = outage_alert(outage, self.broker_outage, self.now_ms())
        if alert is not None:
            self.deliver_locally(alert)
        if outage.kind is OutageKind.HISTORY_RESET:
            self._reset_live_subscriptions(outage)
            self.sessions.save_all_live()

    def _reset_live_subscriptions(self, outage: Outage) -> None:
        """Events of the lost partitions that no worker delivered are gone: say so
        to every live subscription that could have received them (CONTRACT §12)."""
        now = self.now_ms()
        for conn in list(self.connections.values()):
            for sub in list(conn.core.subscriptions.values()):
                if affected(partition_scope(sub.types, sub.filters, self.log_partitions), outage.partitions):
                    conn.send_message(make_message(
                        "subscription_update",
                        {"subscriptionId": sub.id, "status": "reset", "reason": outage.detail}, now_ms=now))

    def deliver_locally(self, event: dict[str, Any]) -> None:
        """Hand `event` to this worker's subscribers without the log (it may be down)."""
        stamp_version(event)
        self.backend.log.deliver_local(event)

    def node_gauges(self) -> dict[str, float]:
        """What this node's registry entry carries besides its connection count: what
        the system monitor sums (or compares) across the deployment. Three reads, no walk."""
        return {"memory_rss_bytes": float(self._process.memory_info().rss),
                "errors_total": float(sum(self.stats.errors.values()))}

    async def _stats_tick(self) -> None:
        """Once a second: the figures of the next registry heartbeat and, with several
        workers, this worker's metrics snapshot for whichever worker is scraped.
        Nothing here runs per event."""
        share = bool(os.environ.get("AUTOSDLC_WS_STATS_DIR"))
        while True:
            self.control.update(len(self.connections), self.node_gauges())
            if share:
                try:
                    self.collector.write_snapshot()
                except OSError as exc:
                    log.warning("could not write stats snapshot: %s", exc)
            await asyncio.sleep(1.0)

    # --- publishing -----------------------------------------------------------

    async def publish(self, events: Sequence[dict[str, Any]]) -> list[PublishReceipt]:
        for event in events:  # once here, so fan-out and replay pay nothing for it
            stamp_version(event)
            for field in unknown_values(event):
                self.stats.unknown_values[field] += 1
        receipts = await self.backend.log.publish(events)
        self.stats.events_published += sum(1 for r in receipts if not r.duplicate)
        return receipts

    async def snapshot(self, subscription: Subscription[Any]) -> SnapshotResult:
        return await self.backend.log.snapshot(subscription.types, subscription.filters)

    # --- connection admission ---------------------------------------------------

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client's address: the peer, or, when the peer is a trusted proxy, the
        right-most X-Forwarded-For entry that is not itself a trusted proxy."""
        address = peer or ""
        if not self._trusted_proxies or not forwarded_for or not self._is_trusted(address):
            return address
        for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
            address = hop
            if not self._is_trusted(hop):
                break
        return address

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._trusted_proxies)

    def connect_attempt(self, address: str) -> int:
        """Charge one upgrade attempt to `address`: 0 when allowed, else ms to wait."""
        if self.connect_limiter is None:
            return 0
        return self.connect_limiter.take(address, time.monotonic())

    def claim_address(self, address: str) -> bool:
        """Count one more open connection from `address`, unless it is at the cap.
        Each successful claim is paired with one `release_address`."""
        cap = self.settings.max_connections_per_ip
        if cap > 0 and self.per_ip[address] >= cap:
            return False
        self.per_ip[address] += 1
        return True

    def release_address(self, address: str) -> None:
        self.per_ip[address] -= 1
        if self.per_ip[address] <= 0:
            del self.per_ip[address]

    async def take_identity_slot(self, principal: Principal, holder_id: str) -> bool:
        """Take one of the identity's `max_connections_per_identity` slots for the
        connection `holder_id` (counted across every worker sharing the broker).

        The slot goes back with `release_identity_slot`, or in `unregister`."""
        if not await self.backend.limits.acquire_slot(principal.identity, holder_id,
                                                      self.settings.max_connections_per_identity):
            return False
        self._slot_holders[holder_id] = principal.identity
        self.per_identity[principal.identity] += 1
        return True

    async def release_identity_slot(self, holder_id: str) -> None:
        identity = self._slot_holders.pop(holder_id, None)
        if identity is None:
            return
        self.per_identity[identity] -= 1
        if self.per_identity[identity] <= 0:
            del self.per_identity[identity]
        await self.backend.limits.release_slot(identity, holder_id)

    def register(self, conn: Connection) -> None:
        self.connections[conn.core.connection_id] = conn
        if conn.core.principal is not None:
            self.stats.connections_opened[conn.core.principal.kind] += 1

    async def unregister(self, conn: Connection) -> None:
        if self.connections.pop(conn.core.connection_id, None) is not None:
            self._retired_frames += conn.frames_out
            self._retired_bytes += conn.bytes_out
        self._forget_subscriptions(conn)
        await self.release_identity_slot(conn.core.connection_id)
        await self.sessions.disconnected(conn)

    def _forget_subscriptions(self, conn: Connection) -> None:
        """`conn` is gone or superseded: its subscriptions leave this worker's index."""
        self.hub.index.remove_owner(conn)
        self.subscriber_counts.drop_owner(conn)
        self._unread(self.partition_demand.drop_owner(conn))

    # --- sessions (server/sessions.py) --------------------------------------------

    async def accept_in_band_auth(self, conn: Connection, action: AuthAccepted) -> None:
        if not action.first:
            return
        now = self.now_ms()
        if not await self.take_identity_slot(action.principal, conn.core.connection_id):
            await conn.execute(conn.core.reject_auth(
                "too_many_connections",
                f"{action.principal.subject} already has "
                f"{self.settings.max_connections_per_identity} connections",
                CloseCode.POLICY, now, action.correlation_id))
            return
        self.stats.connections_opened[action.principal.kind] += 1

        async def announce(started: SessionStart) -> None:
            await conn.execute(conn.core.finish_auth(now, resumed=started.resumed, new_session_id=started.session_id,
                                                     correlation_id=action.correlation_id))

        await self.sessions.open(conn, action.principal, action.resume_session_id, action.last_event_id, announce)

    # --- shutdown ---------------------------------------------------------------

    async def drain(self) -> None:
        """Tell every client to reconnect elsewhere, flush what is owed, close 1001."""
        self.draining = True
        now = self.now_ms()
        conns = list(self.connections.values())
        for conn in conns:
            conn.send_message(make_message("disconnect", {"reason": "server shutting down",
                                                          "reconnect": True}, now_ms=now))
        if conns:
            await asyncio.gather(*(c.close(CloseCode.GOING_AWAY, "server shutting down") for c in conns),
                                 return_exceptions=True)
