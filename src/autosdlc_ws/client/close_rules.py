"""Which close codes end the client for good, and which ones it reconnects after."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autosdlc_ws.client.errors import AutoSDLCError, ConnectionClosed, TokenExpired
from autosdlc_ws.errors import FATAL_CODES, CloseCode

#: After these close codes (1007, 1008, 1009, 4001) the client stops and reports instead of reconnecting.
STOP_CODES = frozenset(int(c) for c in FATAL_CODES)
#: Close 4003: reconnect only with a fresh token from `token_provider`.
TOKEN_EXPIRED_CODE = int(CloseCode.TOKEN_EXPIRED)


def close_outcome(code: int, reason: str, disconnect: Mapping[str, Any] | None,
                  has_token_provider: bool) -> AutoSDLCError | None:
    """The error to stop with after a connection ended with `code`, or None to reconnect.

    Stop on 1007, 1008, 1009, 4001, and when a `disconnect` frame said `reconnect: false`; on 4003
    only when there is no token provider to get a fresh token from; reconnect otherwise
    (1001, 1006, 1011, 1013, 4008, and also 1000 or unknown codes from the server: a proxy
    or a restarting gateway may use them, and a dashboard should not go dark)."""
    if disconnect is not None and disconnect.get("reconnect") is False:
        return ConnectionClosed(code, str(disconnect.get("reason") or reason))
    if code in STOP_CODES:
        return ConnectionClosed(code, reason)
    if code == TOKEN_EXPIRED_CODE and not has_token_provider:
        return TokenExpired(code, reason or "token expired")
    return None
