"""Snapshot on subscribe across workers: two gateways on one Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from autosdlc_ws.broker.redis_log import RedisEventLog
from tests.conftest import base_settings
from tests.integration.helpers import agent_status, open_authed, publish
from tests.integration.test_snapshot import check_snapshot_exactly_once, subscribe_with_snapshot
from tests.redis.conftest import RedisServer, make_redis_broker

Factory = Callable[..., Any]


async def test_published_on_one_worker_snapshot_on_the_other_exactly_once_while_publishing(
        redis_server: RedisServer, prefix: str, gateway_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    g1 = await gateway_factory(base_settings(), backend=make_redis_broker(redis_server.url, prefix))
    g2 = await gateway_factory(base_settings(), backend=make_redis_broker(redis_server.url, prefix))
    # the subscriber's worker gets each live message late, so the snapshot is
    # read ahead of its live delivery: the case the hold-back is there for
    log = g2.gateway.backend.log
    assert isinstance(log, RedisEventLog)
    on_payload = log._on_payload

    async def late(payload: bytes) -> None:
        await asyncio.sleep(0.02)
        await on_payload(payload)

    monkeypatch.setattr(log, "_on_payload", late)
    await check_snapshot_exactly_once(g1, g2)
    # and the store outlives every worker: a third one started now sees the same last values
    g3 = await gateway_factory(base_settings(), backend=make_redis_broker(redis_server.url, prefix))
    await publish(g1, agent_status("a0", "final"))
    client = await open_authed(g3)
    try:
        await subscribe_with_snapshot(client, ["agent_status"], {"agentId": "a0"})
        msg = await client.recv()
        assert msg["id"] == "final" and msg["metadata"]["snapshot"] is True
        await client.silent()
    finally:
        await client.close()
