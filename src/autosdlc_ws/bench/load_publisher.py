"""The load generator's publisher: HTTP/1.1 POSTs pipelined on one keep-alive connection."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import socket
import urllib.parse

from autosdlc_ws.bench.errors import BenchError


class Publisher:
    """HTTP/1.1 POSTs pipelined on one keep-alive connection.

    Requests on one connection are handled in order, so events reach the
    server in sequence order while the next request is already on its way
    (no round trip between two publishes, for any target)."""

    def __init__(self, base_url: str, token: str | None, inflight: int) -> None:
        url = urllib.parse.urlsplit(base_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 80
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self._head = (f"POST /api/v1/events HTTP/1.1\r\nHost: {url.netloc}\r\n"
                      f"Content-Type: application/json\r\n{auth}Content-Length: ").encode()
        self.inflight = max(1, inflight)
        self._slots = asyncio.Semaphore(self.inflight)
        self._pending: collections.deque[asyncio.Future[None]] = collections.deque()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self.failure: str | None = None
        self.responses = 0

    async def start(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._task = asyncio.get_running_loop().create_task(self._read_responses())

    async def _read_responses(self) -> None:
        reader = self._reader
        assert reader is not None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                body = await reader.readexactly(int(match.group(1))) if match else b""
                self.responses += 1
                if status >= 300 and self.failure is None:
                    self.failure = f"publish answered {status}: {body[:300]!r}"
                fut = self._pending.popleft()
                if not fut.done():
                    fut.set_result(None)
                self._slots.release()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError) as exc:
            if self.failure is None:
                self.failure = f"publish connection failed: {exc!r}"
            while self._pending:
                fut = self._pending.popleft()
                if not fut.done():
                    fut.set_result(None)
                self._slots.release()

    async def acquire(self) -> None:
        """Wait for a free slot (fewer than `inflight` requests unanswered)."""
        if self.failure:
            raise BenchError(self.failure)
        await self._slots.acquire()
        if self.failure:
            self._slots.release()
            raise BenchError(self.failure)

    def post(self, body: bytes) -> None:
        """Send one request; a slot must have been acquired."""
        assert self._writer is not None
        self._pending.append(asyncio.get_running_loop().create_future())
        self._writer.write(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)

    async def wait_all(self, timeout: float) -> None:
        if self._pending:
            await asyncio.wait_for(asyncio.gather(*list(self._pending)), timeout)
        if self.failure:
            raise BenchError(self.failure)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
