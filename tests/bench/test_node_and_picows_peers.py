"""The Node.js Socket.IO peer and the bare picows peer: started as the benchmark starts them
(their own process), each must deliver every event of a short run to every connection.
Correctness only: nothing here looks at a clock."""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autosdlc_ws.bench import node_peer
from autosdlc_ws.bench.loadgen import LoadConfig, Phase, run_loadgen
from autosdlc_ws.bench.targets import Server, peers_dir, start_server
from tests.conftest import missing, timeout

N = 5
EVENTS = 20
CLIENTS = ["aiohttp", "picows"]


def _run_config(target: str, base_url: str, client: str, batch: int) -> LoadConfig:
    return LoadConfig(
        target=target, base_url=base_url, n=N, client=client, progress=False, warmup_events=0,
        settle_s=0.0, drain_timeout=timeout(5), connect_timeout=timeout(30),
        phases=[Phase("count", batch=batch, duration=0.0, max_events=EVENTS, min_events=EVENTS)])


def _started(target: str, log_dir: Path) -> Iterator[Server]:
    server = start_server(target, log_dir=log_dir, cpu=None, ready_timeout=timeout(30))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def node_socketio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    absent = node_peer.missing_tools()
    if absent:
        missing(" and ".join(absent), "apt-get install nodejs npm")
    yield from _started("node-socketio", tmp_path_factory.mktemp("node-socketio"))


@pytest.fixture(scope="module")
def bare_picows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _started("bare-picows", tmp_path_factory.mktemp("bare-picows"))


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("batch", [1, 4])
async def test_node_socketio_peer_delivers_every_event(node_socketio: Server, client: str, batch: int) -> None:
    result = await run_loadgen(_run_config("node-socketio", node_socketio.base_url, client, batch))
    assert result["ok"], result
    assert result["phases"][0]["deliveries"] == N * EVENTS


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("batch", [1, 4])
async def test_bare_picows_peer_delivers_every_event(bare_picows: Server, client: str, batch: int) -> None:
    result = await run_loadgen(_run_config("bare-picows", bare_picows.base_url, client, batch))
    assert result["ok"], result
    assert result["phases"][0]["deliveries"] == N * EVENTS


def _post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url + "/api/v1/events", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout(5)) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_node_socketio_refuses_integers_it_would_re_encode_differently(node_socketio: Server) -> None:
    # JSON.parse rounds 2**60 + 1: delivered, it would not be the event that was published.
    status, body = _post(node_socketio.base_url, b'{"id":"e1","data":{"t":1152921504606846977}}')
    assert status == 400 and "2^53" in body["error"]
    assert _post(node_socketio.base_url, b'{"id":"e2","data":{"t":9007199254740991}}') == (202, {"ids": ["e2"]})


# --- the bare picows peer's HTTP handling, from plain bytes ---------------------------------------


@pytest.fixture(scope="module")
def picows_peer() -> Any:
    spec = importlib.util.spec_from_file_location("peer_bare_picows", peers_dir() / "bare_picows.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_pipelined_requests_are_split_and_a_partial_one_kept(picows_peer: Any) -> None:
    first = b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n[1,2,3]"
    second = b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"
    partial = b"POST /api/v1/events HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"id\""
    requests, rest = picows_peer.split_requests(first + second + partial)
    assert [(r.method, r.path, r.body) for r in requests] == [
        ("POST", "/api/v1/events", b"[1,2,3]"), ("GET", "/healthz", b"")]
    assert requests[0].keep_alive and not requests[1].keep_alive
    assert rest == partial
    assert picows_peer.split_requests(b"GET /healthz HTTP/1.1\r\nHost") == ([], b"GET /healthz HTTP/1.1\r\nHost")


def test_only_a_websocket_upgrade_goes_to_picows(picows_peer: Any) -> None:
    upgrade = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: Upgrade"
    assert picows_peer.is_websocket_upgrade(upgrade)
    assert not picows_peer.is_websocket_upgrade(b"GET /healthz HTTP/1.1\r\nHost: x")
    assert not picows_peer.is_websocket_upgrade(b"POST /ws HTTP/1.1\r\nUpgrade: websocket")


@pytest.mark.parametrize("raw", [
    b"NONSENSE\r\n\r\n",
    b"POST /api/v1/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST /api/v1/events HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
])
def test_requests_it_does_not_handle_are_refused(picows_peer: Any, raw: bytes) -> None:
    with pytest.raises(picows_peer.BadRequest):
        picows_peer.split_requests(raw)
