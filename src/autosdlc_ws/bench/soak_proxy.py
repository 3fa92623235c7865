"""A TCP forwarder in front of the gateway that can cut connections, for the soak's resume storms.

The SDK clients of a soak load process connect through it; `abort(k)` resets
k of the connections open now on both sides, which is what a network cut
looks like (close 1006, no close frame): each client reconnects and resumes
by itself. Going through a forwarder keeps the storm outside the client
(no reaching into its private socket) and outside the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import random


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target_port>."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.accepted = 0
        self.cut = 0
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self.accepted += 1
        pair = (client_w, up_w)
        self._pairs.add(pair)
        pumps = [asyncio.create_task(_pump(client_r, up_w)), asyncio.create_task(_pump(up_r, client_w))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            self._pairs.discard(pair)
            client_w.transport.abort()
            up_w.transport.abort()

    def abort(self, k: int, rng: random.Random | None = None) -> int:
        """Reset `k` random connections (all of them when fewer are open); how many were cut."""
        pairs = list(self._pairs)
        chosen = (rng or random).sample(pairs, min(k, len(pairs)))
        for client_w, up_w in chosen:
            client_w.transport.abort()
            up_w.transport.abort()
        self.cut += len(chosen)
        return len(chosen)

    async def close(self) -> None:
        self.abort(len(self._pairs))
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while True:
            data = await reader.read(65536)
            if not data:
                return
            writer.write(data)
            await writer.drain()
