"""`autosdlc-ws status` reads a live gateway's figures."""

from __future__ import annotations

import asyncio
import json

import websockets

from autosdlc_ws.tools.status import parse_metrics, quantile, render_table, status_rows
from tests.conftest import RunningGateway, make_token


def test_quantile_from_cumulative_buckets() -> None:
    buckets = [(0.001, 10.0), (0.01, 90.0), (0.1, 99.0), (float("inf"), 100.0)]
    assert quantile(buckets, 0.5) == 0.01
    assert quantile(buckets, 0.99) == 0.1
    assert quantile([], 0.5) is None


def test_parse_metrics_splits_labels() -> None:
    m = parse_metrics('# TYPE x_total counter\nx_total{code="a"} 2\nx_total{code="b"} 3\ny 4\n')
    assert m.labelled["x_total"] == {"a": 2.0, "b": 3.0} and m.scalars["y"] == 4.0


async def test_status_against_a_live_gateway(server: RunningGateway) -> None:
    async with websockets.connect(f"{server.ws_url}?token={make_token()}") as ws:
        for _ in range(2):
            await ws.recv()
        await ws.send(json.dumps({"type": "subscribe", "data": {"events": ["agent_*"], "filters": {"agentId": "a"}}}))
        await ws.recv()
        await ws.send("not json")
        await ws.recv()
        rows = dict(await asyncio.to_thread(status_rows, server.http_url))
    assert rows["health"] == "ok" and rows["ready"].startswith("yes")
    assert rows["connections"].startswith("1 ") and "jwt=1" in rows["connections"]
    assert rows["subscriptions"].startswith("1 ") and "agent=1" in rows["subscriptions"]
    assert "invalid_json=1" in rows["errors"]
    assert "deliveries" in render_table(rows.items())
