"""The credentials both clients (WebSocket and HTTP Publisher) present."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

#: A sync or async callable returning a JWT.
TokenProvider = Callable[[], "str | Awaitable[str]"]


class Credentials:
    """An `Authorization: Bearer` or `X-API-Key` header; a token provider is asked for a
    fresh token every time (before every connection attempt, in-band refresh or request)."""

    def __init__(self, token: str | None, api_key: str | None, provider: TokenProvider | None) -> None:
        self._token = token
        self._api_key = api_key
        self.provider = provider

    async def fetch_token(self) -> str:
        assert self.provider is not None
        result = self.provider()
        return str(await result if inspect.isawaitable(result) else result)

    async def headers(self) -> dict[str, str]:
        token = await self.fetch_token() if self.provider is not None else self._token
        if token:
            return {"Authorization": f"Bearer {token}"}
        return {"X-API-Key": self._api_key} if self._api_key else {}
