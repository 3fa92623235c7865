"""Sessions in Redis: one key per session (`<prefix>session:<id>`, JSON) with its TTL,
so a client can resume on any worker sharing the Redis. On Redis Cluster
`key_of` puts each session in the slot of its own id, spreading them over
the masters."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from redis.commands.core import AsyncScript

from autosdlc_ws.broker.base import SessionRecord, SessionStore
from autosdlc_ws.broker.redis_link import REDIS_FAILURES, RedisLink
from autosdlc_ws.errors import BrokerUnavailable

#: SET the record unless the stored one names another owner (`SessionStore.save`,
#: claim=False). KEYS[1] the session; ARGV: record JSON, TTL ms, owner.
SAVE_IF_HELD = """
local stored = redis.call('GET', KEYS[1])
if stored then
  local ok, record = pcall(cjson.decode, stored)
  if ok and type(record) == 'table' then
    local owner = record['owner']
    if type(owner) == 'string' and owner ~= ARGV[3] then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class RedisSessionStore(SessionStore):
    def __init__(self, link: RedisLink, *, key_of: Callable[[str], str] | None = None) -> None:
        self.link = link
        self._key_of = key_of
        self._save_if_held: AsyncScript | None = None

    def _key(self, session_id: str) -> str:
        if self._key_of is not None:
            return self._key_of(session_id)
        return f"{self.link.prefix}session:{session_id}"

    async def save(self, record: SessionRecord, ttl_s: float, *, claim: bool = True) -> bool:
        key, value, ttl_ms = self._key(record.session_id), orjson.dumps(record.to_json()), max(1, int(ttl_s * 1000))
        try:
            client = self.link.client()
            if claim or record.owner is None:
                await client.set(key, value, px=ttl_ms)
                return True
            if self._save_if_held is None:
                self._save_if_held = client.register_script(SAVE_IF_HELD)
            return bool(await self._save_if_held(keys=[key], args=[value, ttl_ms, record.owner]))
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
