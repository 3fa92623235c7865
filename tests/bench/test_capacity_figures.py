"""`bench --max-connections`: its arithmetic on plain numbers, and connections from a chosen
source address (how its load processes get past the ephemeral ports of one address)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from autosdlc_ws.bench import capacity_figures as figs
from autosdlc_ws.bench.loadgen import LoadConfig, LoadGen
from tests.conftest import timeout

KIB, MIB = figs.KIB, figs.MIB


def test_step_targets_end_at_the_cap() -> None:
    assert figs.step_targets(5000, 20_000) == [5000, 10_000, 15_000, 20_000]
    assert figs.step_targets(5000, 12_000) == [5000, 10_000, 12_000]
    assert figs.step_targets(5000, 3000) == [3000]
    with pytest.raises(ValueError):
        figs.step_targets(0, 10)


def test_shares_spread_evenly_within_each_holders_capacity() -> None:
    assert figs.shares(5000, 4, 15_000, [0, 0, 0, 0]) == [1250, 1250, 1250, 1250]
    assert sum(figs.shares(10_001, 4, 15_000, [1250] * 4)) == 5001
    # a full holder gets nothing; the others take its share
    assert figs.shares(12, 3, 5, [5, 1, 0]) == [0, 3, 3]
    assert figs.shares(13, 3, 5, [5, 1, 0]) == [0, 3, 4]
    assert figs.holders_needed(60_000, 15_000) == 4
    assert figs.holders_needed(60_001, 15_000) == 5
    with pytest.raises(ValueError):
        figs.shares(31, 3, 10, [0, 0, 0])


def test_per_connection_ratios() -> None:
    base = figs.Reading(held=0, rss_bytes=200 * MIB, cpu_s=0.3, window_s=30.0,
                        redis_bytes=2 * MIB, redis_cpu_s=0.06)
    prev = figs.Reading(held=5000, rss_bytes=200 * MIB + 5000 * 20 * KIB, cpu_s=1.8, window_s=30.0)
    now = figs.Reading(held=10_000, rss_bytes=200 * MIB + 5000 * 20 * KIB + 5000 * 22 * KIB,
                       cpu_s=3.3, window_s=30.0, redis_bytes=2 * MIB + 10_000 * 100, redis_cpu_s=0.36)
    f = figs.per_connection(now, prev, base, heartbeat_s=10.0)
    assert f["rss_per_conn_marginal_bytes"] == 22 * KIB
    assert f["rss_per_conn_bytes"] == 21 * KIB
    assert f["idle_cores"] == pytest.approx(0.11)
    # 3.0 CPU-s more than the baseline over 30 s: 0.1 core, for 10k connections
    assert f["idle_cores_per_10k"] == pytest.approx(0.1)
    # 10,000 connections x 3 pings each in 30 s = 30,000 pings for 3.0 CPU-s
    assert f["cpu_us_per_ping"] == pytest.approx(100.0)
    assert f["redis_per_conn_bytes"] == pytest.approx(100.0)
    assert f["redis_cores_per_10k"] == pytest.approx(0.01)


def test_the_million_estimate_takes_the_tightest_bound() -> None:
    host = figs.Host(cores=2, ram_gib=24.0, ram_reserve_gib=4.0, worker_base_mib=80.0, cpu_budget=0.5)
    by_fds = figs.million_estimate(connections=1_000_000, rss_per_conn_bytes=20 * KIB, idle_cores_per_10k=0.02,
                                   host=host, fds_per_worker=20_000)
    ram = 20 * figs.GIB - 2 * 80 * MIB
    assert by_fds["per_host_by_ram"] == ram // (20 * KIB)
    assert by_fds["per_host_by_fds"] == 40_000
    # half of each of 2 cores = 1 core, at 0.02 core per 10k connections
    assert by_fds["per_host_by_idle_cpu"] == 500_000
    assert by_fds["per_host"] == 40_000
    assert by_fds["hosts"] == 25 and by_fds["workers"] == 50 and by_fds["per_worker"] == 20_000
    assert by_fds["idle_cores"] == pytest.approx(2.0)
    raised = figs.million_estimate(connections=1_000_000, rss_per_conn_bytes=20 * KIB, idle_cores_per_10k=0.02,
                                   host=host, fds_per_worker=1_000_000)
    assert raised["per_host"] == raised["per_host_by_idle_cpu"] == 500_000
    assert raised["hosts"] == 2
    by_ram = figs.million_estimate(connections=1_000_000, rss_per_conn_bytes=40 * KIB, idle_cores_per_10k=0.0,
                                   host=host, fds_per_worker=1_000_000)
    assert by_ram["per_host_by_idle_cpu"] is None
    assert by_ram["per_host"] == ram // (40 * KIB) and by_ram["hosts"] == 2


def test_table_has_a_line_per_step() -> None:
    steps: list[dict[str, Any]] = [
        {"held": 0, "rss_bytes": 200 * MIB, "ok": True, "figures": None, "worker_fds": [11, 11],
         "cpu_s": 0.3, "window_s": 30.0},
        {"held": 5000, "rss_bytes": 300 * MIB, "ok": True, "redis_used_bytes": 3 * MIB, "worker_fds": [2511, 2513],
         "machine_busy_cores": 0.5,
         "figures": {"rss_per_conn_marginal_bytes": 20.5 * KIB, "rss_per_conn_bytes": 20.5 * KIB,
                     "idle_cores": 0.05, "idle_cores_per_10k": 0.1, "cpu_us_per_ping": 100.0}},
        {"held": 7000, "rss_bytes": 340 * MIB, "ok": False, "figures": None},
    ]
    lines = figs.table(steps).splitlines()
    assert len(lines) == 5
    assert lines[2].startswith("| 0 | 200 | - | - | 1.0 | - | - | - |")
    assert lines[3] == "| 5,000 | 300 | 20.5 | 20.5 | 5.0 | 10.0 | 100 | 50 | 3.0 | 2511/2513 | yes |"
    assert lines[4].endswith("| no |")


@pytest.mark.parametrize("client", ["aiohttp", "picows"])
async def test_connections_leave_from_the_given_source_address(client: str) -> None:
    remotes: list[str | None] = []

    async def ws(request: web.Request) -> web.WebSocketResponse:
        remotes.append(request.remote)
        resp = web.WebSocketResponse()
        await resp.prepare(request)
        async for _ in resp:
            pass
        return resp

    app = web.Application()
    app.router.add_get("/ws", ws)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        lg = LoadGen(LoadConfig(target="bare-aiohttp", base_url=f"http://127.0.0.1:{port}", n=3, client=client,
                                progress=False, connect_timeout=timeout(10), local_addr="127.0.0.3"))
        lg.open_ws_session()
        await lg.connect_all(0, 3)
        assert lg.ready_count == 3
        assert remotes == ["127.0.0.3"] * 3
        for conn in lg.conns:
            conn.shutdown()
        await lg.close_ws_session()
    finally:
        await runner.cleanup()
