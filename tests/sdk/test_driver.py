"""The asyncio driver against stand-ins for aiohttp's session and WebSocket (no network):
a frame whose write failed reaches the next connection, and an attempt that times out
in the handshake is retried."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import WSMessage, WSMsgType

from autosdlc_ws.client import AutoSDLCWebSocket, ConnectionState, ReconnectPolicy
from tests.sdk.conftest import wait_until


def text(type_: str, data: dict[str, Any]) -> WSMessage:
    return WSMessage(WSMsgType.TEXT, orjson.dumps({"id": f"srv-{type_}", "type": type_, "timestamp": 1,
                                                   "data": data}).decode(), None)


def handshake(resumed: bool) -> list[WSMessage]:
    return [text("connect", {"sessionId": "s-1", "connectionId": "c-1", "resumed": resumed,
                             "heartbeatInterval": 30_000}), text("auth_success", {})]


class StandInSocket:
    """Hands out `messages`, then waits for `end()` (a close code) or the client's close;
    `broken` sockets refuse every write."""

    def __init__(self, messages: list[WSMessage], *, broken: bool = False) -> None:
        self._messages = list(messages)
        self._ended: asyncio.Queue[WSMessage] = asyncio.Queue()
        self.broken = broken
        self.closed = False
        self.written: list[dict[str, Any]] = []

    async def receive(self, timeout: float | None = None) -> WSMessage:
        if self._messages:
            return self._messages.pop(0)
        return await asyncio.wait_for(self._ended.get(), timeout)

    async def send_str(self, data: str) -> None:
        if self.broken:
            raise ConnectionResetError("the peer is gone")
        self.written.append(orjson.loads(data))

    def end(self, code: int) -> None:
        self._ended.put_nowait(WSMessage(WSMsgType.CLOSE, code, "bye"))

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.closed = True
        self._ended.put_nowait(WSMessage(WSMsgType.CLOSED, None, None))
        return True

    def exception(self) -> BaseException | None:
        return None


class StandInSession:
    """Plays the aiohttp session: each `ws_connect` takes the next socket."""

    closed = False

    def __init__(self, sockets: list[StandInSocket]) -> None:
        self.sockets = sockets
        self.connects = 0

    async def ws_connect(self, url: str, **options: Any) -> StandInSocket:
        self.connects += 1
        return self.sockets[self.connects - 1]

    async def close(self) -> None:
        return None


def client(session: StandInSession, **options: Any) -> AutoSDLCWebSocket:
    return AutoSDLCWebSocket("ws://stand-in/ws", api_key="k", http_session=session,  # type: ignore[arg-type]
                             reconnect=ReconnectPolicy(base=0.01, cap=0.02), **options)


async def test_a_frame_whose_write_failed_is_sent_on_the_next_connection() -> None:
    first = StandInSocket(handshake(resumed=False), broken=True)
    second = StandInSocket(handshake(resumed=True))
    session = StandInSession([first, second])
    ws = client(session)
    await ws.connect()
    await ws.send({"type": "agent_log", "id": "evt-1", "data": {"message": "kept"}})
    assert ws.pending_outgoing == 1  # handed back to the core's queue
    first.end(1006)
    await wait_until(lambda: [f["id"] for f in second.written] == ["evt-1"])
    assert ws.state is ConnectionState.OPEN and first.closed and ws.pending_outgoing == 0
    await ws.close()


async def test_a_handshake_that_never_completes_is_retried() -> None:
    silent = StandInSocket([])  # upgraded, then nothing: no connect frame
    good = StandInSocket(handshake(resumed=True))
    session = StandInSession([StandInSocket(handshake(resumed=False)), silent, good])
    ws = client(session, connect_timeout=0.2)
    await ws.connect()
    session.sockets[0].end(1011)
    await wait_until(lambda: session.connects == 3 and ws.state is ConnectionState.OPEN,
                     seconds=5)
    assert silent.closed and ws.stats.reconnects == 1
    await ws.close()
