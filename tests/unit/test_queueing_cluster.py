"""The cluster client wrapper turns redis-py's transient AttributeError into a retry, then
into a connection failure the broker already handles (never a 500 on an upgrade)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from autosdlc_ws.broker.redis_target import QueueingCluster


def client() -> QueueingCluster:
    return QueueingCluster(startup_nodes=[ClusterNode("127.0.0.1", 1)], max_connections=4)


async def test_one_transient_attribute_error_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    async def flaky(self: RedisCluster, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            raise AttributeError("'NoneType' object has no attribute 'writelines'")
        return "PONG"

    monkeypatch.setattr(RedisCluster, "execute_command", flaky)
    assert await client().execute_command("PING") == "PONG"
    assert len(calls) == 2


async def test_a_lasting_one_is_a_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: RedisCluster, *args: Any, **kwargs: Any) -> Any:
        raise AttributeError("'NoneType' object has no attribute 'writelines'")

    monkeypatch.setattr(RedisCluster, "execute_command", broken)
    with pytest.raises(RedisConnectionError, match="not ready"):
        await client().execute_command("PING")
