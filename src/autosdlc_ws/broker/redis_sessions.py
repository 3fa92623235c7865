"""Sessions in Redis: one key per session (`<prefix>session:<id>`, JSON) with its TTL,
so a client can resume on any worker sharing the Redis. On Redis Cluster
`key_of` puts each session in the slot of its own id, spreading them over
the masters."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from autosdlc_ws.broker.base import SessionRecord, SessionStore
from autosdlc_ws.broker.redis_link import REDIS_FAILURES, RedisLink
from autosdlc_ws.errors import BrokerUnavailable


class RedisSessionStore(SessionStore):
    def __init__(self, link: RedisLink, *, key_of: Callable[[str], str] | None = None) -> None:
        self.link = link
        self._key_of = key_of

    def _key(self, session_id: str) -> str:
        if self._key_of is not None:
            return self._key_of(session_id)
        return f"{self.link.prefix}session:{session_id}"

    async def save(self, record: SessionRecord, ttl_s: float) -> None:
        try:
            await self.link.client().set(self._key(record.session_id), orjson.dumps(record.to_json()),
                                         px=max(1, int(ttl_s * 1000)))
        except REDIS_FAILURES as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc

    async def load(self, session_id: str) -> SessionRecord | None:
        try:
            raw = await self.link.client().get(self._key(session_id))
        except REDIS_FAILURES as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        if raw is None:
            return None
        return SessionRecord.from_json(orjson.loads(raw))

    async def delete(self, session_id: str) -> None:
        try:
            await self.link.client().delete(self._key(session_id))
        except REDIS_FAILURES as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
