"""The sessions of one worker's connections: start or resume, claim, keep written, replay.

A session record (identity, subscriptions, where its history starts, on a
partitioned log the send order) lives in the broker's `SessionStore`, so a
client can resume on any worker. The rules this module keeps (docs/architecture.md
"Sessions, history and resume"):

- a store that cannot answer is never "no such session": the caller closes
  1013 and the client resumes again (a fresh session would lose what it missed);
- the connection that starts or resumes a session claims its record with its
  first write (a resume's restore writes at once); other writers (the client's
  old socket, not yet seen closed on some worker) are refused from then on, and
  a connection refused is closed as stale;
- a worker starts a bounded number of sessions at once (`StartGate`), the rest
  wait their turn;
- every write that fails is retried until it lands (`SessionSaves`), the one on
  disconnect for as long as the session could be resumed;
- a broker that lost its history most likely lost the records too: the live
  connections write theirs again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from autosdlc_ws.broker.backend import Backend
from autosdlc_ws.broker.base import HistoryResult, SessionRecord
from autosdlc_ws.core.auth import Principal
from autosdlc_ws.core.connection_core import SubscriptionRecord
from autosdlc_ws.core.envelope import new_id
from autosdlc_ws.errors import BrokerUnavailable, CloseCode
from autosdlc_ws.server.connection import Connection
from autosdlc_ws.server.session_saves import SessionSaves
from autosdlc_ws.server.start_gate import StartGate

log = logging.getLogger("autosdlc_ws.gateway")

#: While a client is connected its session record is kept this long; on
#: disconnect the record's lifetime drops to `session_ttl_s`.
CONNECTED_SESSION_TTL_S = 24 * 3600.0


@dataclass(frozen=True)
class SessionStart:
    """What `Sessions.start` settled: the session's id and, on a resume, its record.

    The record is read once per resume and handed to `Sessions.replay` (in a
    resume storm every Redis round trip is paid hundreds of times at once)."""

    session_id: str
    record: SessionRecord | None = None  # the stored record resumed; None: a new session

    @property
    def resumed(self) -> bool:
        return self.record is not None


class Sessions:
    def __init__(self, backend: Backend, *, session_ttl_s: float, connections: Mapping[str, Connection],
                 forget_subscriptions: Callable[[Connection], None]) -> None:
        self.backend = backend
        self.session_ttl_s = session_ttl_s
        self._connections = connections  # the gateway's live connections
        #: takes a superseded connection's subscriptions out of the worker's index
        self._forget_subscriptions = forget_subscriptions
        self.saves = SessionSaves()
        #: around `open`: a resume storm runs a few dozen resumes at a time
        #: instead of all of them (`server.start_gate`)
        self.starting = StartGate()
        #: session id -> the live connection on this worker that holds it
        self.owners: dict[str, Connection] = {}

    def close(self) -> None:
        self.saves.close()

    # --- start or resume ---------------------------------------------------------

    async def open(self, conn: Connection, principal: Principal, session_id: str | None,
                   last_event_id: str | None, announce: Callable[[SessionStart], Awaitable[None]]) -> None:
        """Start or resume `conn`'s session, let the caller tell the client
        (`announce` sends `connect`), then restore and replay what it missed.
        At most `starting.limit` of these run at once on a worker."""
        async with self.starting:
            started = await self.start(conn, principal, session_id)
            await announce(started)
            if started.record is not None:
                await self.replay(conn, started.record, last_event_id)

    async def start(self, conn: Connection, principal: Principal, session_id: str | None) -> SessionStart:
        """Resume the named session if this principal owns it, else start a new one.

        The caller sends `connect` next, then (on a resume) calls `replay` with
        what this returned."""
        record = await self.load_resumable(session_id, principal)
        if record is None:
            fresh = SessionRecord(new_id("sess"), principal.identity, [], await self.backend.log.head(),
                                  owner=conn.core.connection_id)
            conn.session_position = fresh.position
            self._claim_locally(conn, fresh.session_id)
            await self.backend.sessions.save(fresh, CONNECTED_SESSION_TTL_S)
            conn.session_claimed = True
            return SessionStart(fresh.session_id)
        conn.session_position = record.position
        self._claim_locally(conn, record.session_id)
        # claimed by its first save (no extra write per resume: a resume storm of
        # hundreds of clients pays for every one)
        return SessionStart(record.session_id, record)

    async def load_resumable(self, session_id: str | None, principal: Principal) -> SessionRecord | None:
        if not session_id:
            return None
        try:
            record = await self.backend.sessions.load(session_id)
        except BrokerUnavailable:
            # Not "no such session": a fresh one would cost the client everything it
            # missed. The caller closes with 1013 and the client retries the resume.
            log.warning("could not load session %s: the session store is unreachable", session_id)
            raise
        except Exception as exc:  # an unreadable record: start afresh (the client is told: resumed false)
            log.warning("could not load session %s: %s", session_id, exc)
            return None
        if record is None or record.identity != principal.identity:
            return None
        return record

    def _claim_locally(self, conn: Connection, session_id: str) -> None:
        """Make `conn` the session's only live connection on this worker.

        A client that reconnects before the server noticed its old connection
        died (half-open TCP, heartbeat not yet missed) resumes a session that a
        live connection still holds. The old connection's subscriptions (same
        ids as the ones about to be restored) leave the index now, it no longer
        writes the session record, and it is closed."""
        conn.session_key = session_id
        old = self.owners.get(session_id)
        self.owners[session_id] = conn
        if old is None or old is conn:
            return
        log.info("session %s taken over by conn=%s from conn=%s", session_id,
                 conn.core.connection_id, old.core.connection_id)
        # fresher than the stored record: the old socket was still open
        conn.inherited_trail = old.trail_json()
        self._retire(old)
        self._forget_subscriptions(old)

    async def replay(self, conn: Connection, record: SessionRecord, last_event_id: str | None) -> None:
        """Restore the session's subscriptions on `conn` and send what it missed."""
        records = [SubscriptionRecord.from_json(s) for s in record.subscriptions]
        position = record.position

        async def load_history() -> HistoryResult:
            if last_event_id:
                trail = conn.inherited_trail or record.trail
                return await self.backend.log.history_after(event_id=last_event_id, position=position, trail=trail)
            if position is not None:
                return await self.backend.log.history_after(position=position)
            head = await self.backend.log.head()
            return HistoryResult([], True, None, head)

        await conn.resume(records, load_history)

    # --- keep written ------------------------------------------------------------

    def schedule_save(self, conn: Connection) -> None:
        """Write the session soon (a burst of changes is one write), retried until it lands."""
        if conn.core.principal is None or conn.superseded:
            return
        self.saves.schedule(conn.core.connection_id, lambda: self._save(conn, CONNECTED_SESSION_TTL_S),
                            conn.core.session_id)

    def save_all_live(self) -> None:
        """The broker lost its history, and most likely the session records with it:
        the live connections still know theirs, so a client whose worker dies later
        can resume instead of starting afresh."""
        for conn in list(self._connections.values()):
            if conn.session_key is not None:
                self.schedule_save(conn)

    async def disconnected(self, conn: Connection) -> None:
        """`conn` is gone: its last save, with the session's shorter lifetime."""
        if conn.session_key is not None and self.owners.get(conn.session_key) is conn:
            del self.owners[conn.session_key]
        self.saves.cancel(conn.core.connection_id)
        if conn.core.principal is None or conn.superseded or conn.session_key is None:
            return
        ttl_s = self.session_ttl_s
        try:
            await self._save(conn, ttl_s)
        except Exception as exc:
            # The broker may be down: keep trying while the session could still be
            # resumed. Fenced by owner, so a late write cannot undo a resume elsewhere.
            log.info("could not save session %s on disconnect (retrying): %s", conn.core.session_id, exc)
            self.saves.schedule(conn.core.connection_id, lambda: self._save(conn, ttl_s),
                                conn.core.session_id, give_up_after_s=ttl_s)

    async def _save(self, conn: Connection, ttl_s: float) -> None:
        if conn.superseded:
            return
        assert conn.core.principal is not None
        record = SessionRecord(
            conn.core.session_id, conn.core.principal.identity,
            [r.to_json() for r in conn.core.records()], conn.session_position,
            conn.trail_json(), conn.core.connection_id,
        )
        # The first write of a live connection claims the record; every later one (and
        # one made after it left) lands only while it still holds the record. From the
        # claim on, a connection elsewhere still holding the session (the client's old
        # socket, not yet seen closed) can no longer overwrite it.
        claim = not conn.session_claimed and conn.core.connection_id in self._connections
        if await self.backend.sessions.save(record, ttl_s, claim=claim):
            conn.session_claimed = True
            return
        # The client resumed this session on another worker while this socket still
        # looked open: the record is the new connection's now, and this one is stale.
        log.info("session %s was resumed by another connection; conn=%s stops writing it",
                 conn.core.session_id, conn.core.connection_id)
        self._retire(conn)

    def _retire(self, conn: Connection) -> None:
        """Another connection holds `conn`'s session now: it writes no more, and a
        live one is closed."""
        conn.superseded = True
        self.saves.cancel(conn.core.connection_id)
        if conn.core.connection_id in self._connections and not conn.closing:
            asyncio.get_running_loop().create_task(
                conn.close(CloseCode.NORMAL, "session resumed by another connection"))
