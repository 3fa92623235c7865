"""When to refresh the token in-band, before the server closes with 4003 at its expiry."""

from __future__ import annotations

from typing import Any

from autosdlc_ws.client.actions import REFRESH_TIMER, Action, FetchToken, StartTimer


class TokenRefresh:
    """The expiry of the token the connection presented, and the refresh timer's delays:
    half the remaining time, or `refresh_before_s` ahead of the expiry if that is later;
    after a failed attempt a quarter of what remains (0.05 to 5 s), until the expiry."""

    def __init__(self, refresh_before_s: float | None, has_token_provider: bool) -> None:
        self._enabled = refresh_before_s is not None and has_token_provider
        self._before_s = refresh_before_s or 0.0
        self._expires_ms: int | None = None
        self._failed = False
        self.awaiting_token = False  # a FetchToken was asked for and not answered yet

    def opened(self, expires_at_ms: int | None, now_ms: int) -> list[Action]:
        """A connection authenticated with a token valid until `expires_at_ms`."""
        self._expires_ms = expires_at_ms
        self._failed = False
        self.awaiting_token = False
        return self.schedule(now_ms)

    def schedule(self, now_ms: int) -> list[Action]:
        if self._expires_ms is None or not self._enabled:
            return []
        remaining = (self._expires_ms - now_ms) / 1000
        if remaining <= 0:
            return []  # the server closes with 4003; the reconnect fetches a fresh token
        if self._failed:
            delay = min(max(remaining / 4, 0.05), 5.0)
        else:
            delay = max(remaining / 2, remaining - self._before_s)
        return [StartTimer(REFRESH_TIMER, delay)]

    def due(self) -> list[Action]:
        """The refresh timer fired: ask the driver for a fresh token."""
        self.awaiting_token = True
        return [FetchToken()]

    def succeeded(self, answer: dict[str, Any], now_ms: int) -> list[Action]:
        """The server accepted the fresh token (`auth_success` with its new `expiresAt`)."""
        self._failed = False
        expires = (answer.get("data") or {}).get("expiresAt")
        self._expires_ms = expires if isinstance(expires, int) else None
        return self.schedule(now_ms)

    def failed(self, now_ms: int) -> list[Action]:
        self._failed = True
        return self.schedule(now_ms)
