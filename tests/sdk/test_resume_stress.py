"""Resume under fire: 2,000 numbered events published over HTTP while a proxy cuts the
client's connection at least 20 times; the application must see every `seq` exactly
once, in order."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from autosdlc_ws.client import AutoSDLCWebSocket, ConnectionState, Publisher, ReconnectPolicy, ResetEvent
from tests.conftest import base_settings, make_token, timeout
from tests.sdk.conftest import TcpProxy, wait_until

N = 2000
MIN_DROPS = 20
BATCH = 10


async def test_every_event_exactly_once_in_order_across_20_cuts(gateway_factory: Any,
                                                                 proxy_factory: Any) -> None:
    running = await gateway_factory(base_settings(heartbeat_interval_s=2.0))
    proxy: TcpProxy = await proxy_factory(running.port)
    token = make_token()
    rng = random.Random(5)
    ws = AutoSDLCWebSocket(proxy.ws_url, token=token, queue_size=256,
                           reconnect=ReconnectPolicy(base=0.005, cap=0.05, stable_after=0.2))
    await ws.connect()
    await ws.subscribe(["agent_log"], {"agentId": "stress"})
    published = asyncio.Event()

    async def publisher() -> None:
        async with Publisher(running.http_url, token=token) as pub:
            for start in range(0, N, BATCH):
                await pub.publish_many([
                    {"type": "agent_log", "data": {"agentId": "stress", "level": "info",
                                                   "message": f"event {i}", "seq": i}}
                    for i in range(start, start + BATCH)])
                await asyncio.sleep(0.01)
        published.set()

    cuts_while_publishing = 0

    async def cutter() -> None:
        nonlocal cuts_while_publishing
        cut: str | None = None
        while not published.is_set() or proxy.drops < MIN_DROPS:
            while ws.state is not ConnectionState.OPEN or ws.connection_id == cut:
                await asyncio.sleep(0.002)  # each cut hits a new, established connection
            await asyncio.sleep(rng.uniform(0.02, 0.08))
            cut = ws.connection_id
            proxy.drop_all()
            cuts_while_publishing += not published.is_set()

    seqs: list[int] = []
    resets: list[ResetEvent] = []

    async def consume() -> None:
        async for event in ws:
            if isinstance(event, ResetEvent):
                resets.append(event)
                continue
            seqs.append(event.data.model_extra["seq"])
            if len(seqs) == N:
                return

    tasks = [asyncio.create_task(publisher()), asyncio.create_task(cutter())]
    try:
        await asyncio.wait_for(consume(), timeout(40))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout(10))
        await wait_until(lambda: ws.stats.reconnects >= proxy.drops and ws.state is ConnectionState.OPEN)
    finally:
        for task in tasks:
            task.cancel()
        await ws.close()
    await asyncio.sleep(0)
    print(f"\nresume figures: events={len(seqs)} drops={proxy.drops} "
          f"cuts_while_publishing={cuts_while_publishing} reconnects={ws.stats.reconnects} "
          f"resumed={ws.stats.resumed} resets={len(resets)} "
          f"duplicates_dropped_by_client={ws.stats.duplicates_dropped} "
          f"lost={len(set(range(N)) - set(seqs))} repeated={len(seqs) - len(set(seqs))}")
    assert seqs == list(range(N))  # no loss, no duplicate, in order
    assert cuts_while_publishing >= MIN_DROPS and ws.stats.reconnects == proxy.drops
    assert ws.stats.resumed == ws.stats.reconnects and not resets
