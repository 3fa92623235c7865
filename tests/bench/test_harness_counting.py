"""The benchmark harness counts right: every delivery checked, a missing or a
duplicated one detected. Correctness only: nothing here looks at a clock."""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from autosdlc_ws.bench.loadgen import LoadConfig, LoadGen, Phase, run_loadgen
from autosdlc_ws.bench.protocol import EventFactory, make_protocol
from autosdlc_ws.bench.targets import peers_dir
from autosdlc_ws.server.connection import Connection
from tests.conftest import base_settings, make_token, start_gateway, timeout

N = 5
EVENTS = 20

CLIENTS = ["aiohttp", "picows"]  # picows comes with the bench extra, which `make test` installs


def _config(target: str, base_url: str, client: str, **kw: Any) -> LoadConfig:
    return LoadConfig(
        target=target, base_url=base_url, n=N, client=client, progress=False, warmup_events=0,
        settle_s=0.0, drain_timeout=timeout(5), connect_timeout=timeout(30),
        phases=[Phase("count", batch=kw.pop("batch", 1), duration=0.0, max_events=EVENTS,
                      min_events=EVENTS)],
        batch=kw.pop("batch_frames", False), **kw)


@pytest.fixture
async def gateway() -> Any:
    running = await start_gateway(base_settings(max_connections_per_identity=1000))
    yield running
    await running.runner.cleanup()


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("batch", [1, 4])
async def test_clean_run_counts_every_delivery(gateway: Any, client: str, batch: int) -> None:
    result = await run_loadgen(_config("gateway", gateway.http_url, client, token=make_token(), batch=batch))
    assert result["ok"], result
    assert result["errors"] == {}
    assert result["published_events"] == EVENTS
    phase = result["phases"][0]
    assert phase["events"] == EVENTS and phase["deliveries"] == N * EVENTS
    assert phase["latency_ms"]["samples"] == N * EVENTS
    assert phase["complete"]


@pytest.mark.parametrize("client", CLIENTS)
async def test_batched_frames_count_each_event(gateway: Any, client: str, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = 0
    original = Connection._batched_frames

    def counting(self: Connection, memo: Any) -> list[bytes]:
        nonlocal arrays
        arrays += 1
        return original(self, memo)

    monkeypatch.setattr(Connection, "_batched_frames", counting)
    result = await run_loadgen(_config("gateway", gateway.http_url, client, token=make_token(), batch=4,
                                       batch_frames=True))
    assert result["ok"] and result["errors"] == {}, result
    assert result["phases"][0]["deliveries"] == N * EVENTS
    assert arrays > 0, "4 events per POST must have reached the clients as arrays"


def test_gateway_protocol_asks_for_batches_and_decodes_arrays() -> None:
    proto = make_protocol("gateway", batch=True, compression=True)
    assert proto.ws_url("http://h:1") == "ws://h:1/ws?compression=gzip&batch=1"
    assert make_protocol("gateway").ws_url("http://h:1") == "ws://h:1/ws"
    kind, items = proto.decode(b'[{"type":"agent_log"},{"type":"agent_log"}]', False)
    assert kind == "events" and len(items) == 2
    with pytest.raises(ValueError, match="gateway only"):
        make_protocol("bare-aiohttp", batch=True)


@pytest.fixture
def tampered(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The server drops the 7th event to one connection and sends the 3rd twice to another."""
    original = Connection.deliver
    seen: Counter[int] = Counter()
    order: list[int] = []

    def deliver(self: Connection, out: Any, offset: int) -> None:
        key = id(self)
        if key not in order:
            order.append(key)
        seen[key] += 1
        if key == order[0] and seen[key] == 7:
            return  # lost
        original(self, out, offset)
        if len(order) > 1 and key == order[1] and seen[key] == 3:
            original(self, out, offset)  # duplicated

    monkeypatch.setattr(Connection, "deliver", deliver)
    yield {"seen": seen}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("batch_frames", [False, True])
async def test_missing_and_duplicated_deliveries_are_detected(gateway: Any, tampered: Any,
                                                              client: str, batch_frames: bool) -> None:
    # with batched frames, 4 events per POST: the lost and the doubled event sit inside arrays
    per_post = 4 if batch_frames else 1
    result = await run_loadgen(_config("gateway", gateway.http_url, client, token=make_token(),
                                       batch=per_post, batch_frames=batch_frames))
    assert not result["ok"]
    assert result["errors"] == {"missing": 1, "duplicate": 1}
    assert any("missing x1 at seq 6" in s for s in result["error_samples"])
    assert any("duplicate x1 at seq 2" in s for s in result["error_samples"])


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_lost_last_event_is_counted_at_the_end(gateway: Any, monkeypatch: pytest.MonkeyPatch,
                                                       client: str) -> None:
    original = Connection.deliver
    victims: list[int] = []
    seen: Counter[int] = Counter()

    def deliver(self: Connection, out: Any, offset: int) -> None:
        if not victims:
            victims.append(id(self))
        seen[id(self)] += 1
        if id(self) == victims[0] and seen[id(self)] == EVENTS:
            return
        original(self, out, offset)

    monkeypatch.setattr(Connection, "deliver", deliver)
    cfg = _config("gateway", gateway.http_url, client, token=make_token())
    cfg.drain_timeout = timeout(1)
    result = await run_loadgen(cfg)
    assert result["errors"] == {"missing": 1}
    assert not result["phases"][0]["complete"]


class _FakeConn:
    def __init__(self, lg: LoadGen) -> None:
        self.lg = lg
        self.index = 0
        self.expected = 0


async def test_out_of_order_and_corrupt_frames_are_classified() -> None:
    lg = LoadGen(LoadConfig(target="bare-aiohttp", base_url="http://127.0.0.1:1", n=1, progress=False))
    lg._prepare(4)
    conn = _FakeConn(lg)
    from autosdlc_ws.bench.load_connections import _slow_path

    frames = lg.frames
    _slow_path(conn, frames[1], False)  # seq 0 skipped
    _slow_path(conn, frames[0], False)  # late: counted as a duplicate/out-of-order delivery
    corrupt = frames[2].replace(b'"level":"info"', b'"level":"warn"')
    _slow_path(conn, corrupt, False)
    _slow_path(conn, b'{"type":"agent_log","data":{"run":"other","seq":3}}', False)
    assert lg.errors == Counter({"missing": 1, "duplicate": 1, "corrupt": 1, "foreign": 1})
    assert conn.expected == 3


def test_expected_frames_per_protocol() -> None:
    factory = EventFactory("abcd", 300)
    event = factory.make(10_000, 1_000_000_000_000_000)
    import orjson

    raw = orjson.dumps(event)
    assert len(raw) == 300
    assert make_protocol("socketio").expected(event, raw) == b'42["event",' + raw + b"]"
    assert make_protocol("bare-aiohttp").expected(event, raw) == raw
    gz = make_protocol("gateway", compression=True)
    gz.gzip_threshold = 100
    kind, decoded = gz.decode(gz.expected(event, raw), True)
    assert kind == "event" and decoded["data"] == event["data"] and decoded["metadata"]["compressed"] is True


def _load_peer(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"peer_{name}", peers_dir() / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("client", CLIENTS)
async def test_bare_aiohttp_peer(client: str) -> None:
    runner, url = await _serve(_load_peer("bare_aiohttp").build_app())
    try:
        result = await run_loadgen(_config("bare-aiohttp", url, client, batch=5))
    finally:
        await runner.cleanup()
    assert result["ok"], result


@pytest.mark.parametrize("client", CLIENTS)
async def test_socketio_peer_speaks_engineio(client: str) -> None:
    # python-socketio comes with the bench extra, which the test venv always has:
    # importing it here fails the test, never skips it, when it is missing.
    import socketio  # noqa: F401
    runner, url = await _serve(_load_peer("socketio_server").build_app())
    try:
        result = await run_loadgen(_config("socketio", url, client))
    finally:
        await runner.cleanup()
    assert result["ok"], result


def test_an_array_of_the_next_expected_events_is_matched_without_parsing() -> None:
    from types import SimpleNamespace

    from autosdlc_ws.bench.load_connections import _expected_array

    frames = [b'{"seq":0}', b'{"seq":1}', b'{"seq":2}']
    latencies: list[int] = []
    lg = SimpleNamespace(frames=frames, published=3, sent_ns=[0, 0, 0], lat_append=latencies.append,
                         last_ns=0, count=0, wake_at=10, wake=lambda: None)
    conn = SimpleNamespace(lg=lg, expected=0)
    assert _expected_array(conn, b'[{"seq":0},{"seq":1}]')
    assert (conn.expected, lg.count, len(latencies)) == (2, 2, 2)
    for not_next in (b'[{"seq":1},{"seq":2}]', b'[{"seq":2},]', b'[{"seq":2}{"seq":2}]',
                     b'[{"seq":2},{"seq":3}]', b'[{"seq":2}'):
        assert not _expected_array(conn, not_next)
    assert (conn.expected, lg.count) == (2, 2)  # a mismatch counts nothing: the slow path decides
    assert _expected_array(conn, b'[{"seq":2}]') and conn.expected == 3
