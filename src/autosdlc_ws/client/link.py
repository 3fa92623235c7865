"""What the client core knows of the current socket (one `Link` per connection)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class LinkPhase(enum.Enum):
    AWAIT_CONNECT = "await_connect"  # the upgrade succeeded; the `connect` frame comes first
    AWAIT_AUTH = "await_auth"  # then `auth_success` (or `auth_failure`)
    OPEN = "open"


@dataclass(slots=True)
class Link:
    """What the core knows of the current socket."""

    previous_session: str | None
    phase: LinkPhase = LinkPhase.AWAIT_CONNECT
    resumed: bool = False
    expires_at_ms: int | None = None
    opened_ms: int = 0
    disconnect: dict[str, Any] | None = None  # the server's `disconnect` frame, if any
    # resume check: server ids the session should bring back, those it did, and the ping whose
    # pong marks the end of the restore (the server reads frames only after restoring)
    expected: set[str] = field(default_factory=set)
    confirmed: set[str] = field(default_factory=set)
    resume_check: str | None = None
