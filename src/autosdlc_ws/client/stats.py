"""The client's counters, kept by the core and read by the application as `ws.stats`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ClientStats:
    """Counters of one client, over all its connections."""

    connects: int = 0  # successful handshakes
    reconnects: int = 0  # of which after a lost connection
    resumed: int = 0  # reconnects the server answered with resumed: true
    resets: int = 0  # ResetEvents surfaced
    events_received: int = 0  # events handed to the application (duplicates excluded)
    duplicates_dropped: int = 0
    heartbeat_timeouts: int = 0  # connections declared dead by the watchdog
    token_refreshes: int = 0  # successful in-band refreshes
    last_close_code: int | None = None
