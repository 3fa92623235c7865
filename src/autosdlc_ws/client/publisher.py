"""`Publisher`: publish events over the HTTP API, for backend services.

`POST {base}/api/v1/events` with one envelope or an array; 202 `{"ids": [...]}`.
Event ids are assigned here, before the first attempt, so a retry after a
lost answer publishes nothing twice (the gateway drops an id it already has).
Retries, with full-jitter backoff and at least `Retry-After`, on 5xx, 429 and
network errors; never on other 4xx (`PublishRejected` with `code`/`path`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
import orjson
from yarl import URL

from autosdlc_ws.client.backoff import full_jitter, parse_retry_after
from autosdlc_ws.client.credentials import Credentials, TokenProvider
from autosdlc_ws.client.errors import AutoSDLCError, PublishFailed, PublishRejected, QueueFull
from autosdlc_ws.client.events import new_id, now_ms
from autosdlc_ws.client.handlers import Handler, Listeners

log = logging.getLogger("autosdlc_ws.client.publisher")

#: The gateway's cap on events per request.
MAX_BATCH = 1000
EVENTS_PATH = "/api/v1/events"


def events_url(url: str) -> str:
    """`http://host:port` (or the `ws://host:port/ws` URL of the same gateway) -> the events URL."""
    parsed = URL(url)
    scheme = {"ws": "http", "wss": "https"}.get(parsed.scheme, parsed.scheme)
    path = parsed.path.rstrip("/")
    if path.endswith("/ws"):
        path = path[:-3]
    if not path.endswith(EVENTS_PATH):
        path += EVENTS_PATH
    return str(parsed.with_scheme(scheme).with_path(path).with_query(None))


class Publisher:
    """Publish events over HTTP with idempotent retries, singly, in batches or auto-batched.

        async with Publisher("http://127.0.0.1:8765", api_key=KEY) as pub:
            await pub.publish("agent_status", {"agentId": "coder-001", "status": "busy"})
            pub.enqueue("agent_log", {...})   # sent in batches of `batch_size` or every `flush_interval` s
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        token_provider: TokenProvider | None = None,
        max_attempts: int = 6,
        backoff_base: float = 0.1,
        backoff_cap: float = 5.0,
        timeout: float = 10.0,
        batch_size: int = 100,
        flush_interval: float = 0.05,
        max_pending: int = 10_000,
        source: str | None = None,
        on_error: Handler | None = None,
        http_session: aiohttp.ClientSession | None = None,
    ) -> None:
        if not (api_key or token or token_provider):
            raise ValueError("Publisher needs api_key, token or token_provider")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be within 1..{MAX_BATCH}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.url = events_url(url)
        self._credentials = Credentials(token, api_key, token_provider)
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_pending = max_pending
        self._source = source
        self._http = http_session
        self._owns_http = http_session is None
        self._errors = Listeners()
        if on_error is not None:
            self._errors.add(on_error)
        # auto-batching state
        self._buffer: list[dict[str, Any]] = []
        self._inflight = 0
        self._has_items = asyncio.Event()
        self._batch_ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._urgent = False
        self._failures: list[AutoSDLCError] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self.attempts = 0  # HTTP requests made, retries included (for tests and metrics)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Publisher:
        self._ensure_flusher()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Flush what `enqueue` buffered (raising its first failure), then release the session."""
        if self._closed:
            return
        try:
            await self.flush()
        finally:
            self._closed = True
            if self._flusher is not None:
                self._flusher.cancel()
                with contextlib.suppress(BaseException):
                    await self._flusher
            if self._owns_http and self._http is not None and not self._http.closed:
                await self._http.close()

    # ------------------------------------------------------------------ publishing

    def event(self, type_: str, data: Mapping[str, Any], *, id: str | None = None,
              metadata: Mapping[str, Any] | None = None, timestamp: int | None = None) -> dict[str, Any]:
        """The envelope `publish` would send, with its id assigned now."""
        envelope: dict[str, Any] = {"id": id or new_id("evt"), "type": type_,
                                    "timestamp": timestamp if timestamp is not None else now_ms(),
                                    "data": dict(data)}
        meta = dict(metadata or {})
        if self._source and "source" not in meta:
            meta["source"] = self._source
        if meta:
            envelope["metadata"] = meta
        return envelope

    async def publish(self, type_: str, data: Mapping[str, Any], *, id: str | None = None,
                      metadata: Mapping[str, Any] | None = None, timestamp: int | None = None) -> str:
        """Publish one event; returns its id once the gateway accepted it (202)."""
        self._check_open()
        envelope = self.event(type_, data, id=id, metadata=metadata, timestamp=timestamp)
        ids = await self._post(envelope, 1)
        return ids[0] if ids else str(envelope["id"])

    async def publish_many(self, events: Iterable[Mapping[str, Any]]) -> list[str]:
        """Publish envelopes (each with `type` and `data`; `id`/`timestamp` filled in when absent)
        in requests of at most 1000; returns the ids in order."""
        self._check_open()
        envelopes = [self._complete(e) for e in events]
        ids: list[str] = []
        for start in range(0, len(envelopes), MAX_BATCH):
            chunk = envelopes[start:start + MAX_BATCH]
            ids += await self._post(chunk, len(chunk))
        return ids

    def enqueue(self, type_: str, data: Mapping[str, Any], *, id: str | None = None,
                metadata: Mapping[str, Any] | None = None) -> str:
        """Buffer an event for the background flusher (needs a running event loop); it sends
        `batch_size` events at once, or what it has `flush_interval` s after the first.
        Returns the event id. `QueueFull` past `max_pending` buffered events."""
        self._check_open()
        if len(self._buffer) >= self._max_pending:
            raise QueueFull(f"{self._max_pending} events are waiting to be published")
        envelope = self.event(type_, data, id=id, metadata=metadata)
        self._buffer.append(envelope)
        self._idle.clear()
        self._has_items.set()
        if len(self._buffer) >= self._batch_size:
            self._batch_ready.set()
        self._ensure_flusher()
        return str(envelope["id"])

    async def flush(self) -> None:
        """Send everything buffered now; raise the first failure since the last flush."""
        if self._buffer or self._inflight:
            self._urgent = True
            self._batch_ready.set()
            self._ensure_flusher()
            await self._idle.wait()
        if self._failures:
            first, self._failures = self._failures[0], []
            raise first

    @property
    def pending(self) -> int:
        """Events buffered by `enqueue` and not yet accepted."""
        return len(self._buffer) + self._inflight

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise AutoSDLCError("the publisher is closed")

    def _complete(self, event: Mapping[str, Any]) -> dict[str, Any]:
        if "type" not in event or "data" not in event:
            raise ValueError("an event needs type and data")
        out = dict(event)
        out.setdefault("id", new_id("evt"))
        out.setdefault("timestamp", now_ms())
        if self._source:
            meta = dict(out.get("metadata") or {})
            meta.setdefault("source", self._source)
            out["metadata"] = meta
        return out

    def _ensure_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop(),
                                                                   name="autosdlc-publisher-flush")

    async def _flush_loop(self) -> None:
        while True:
            await self._has_items.wait()
            if not self._batch_ready.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._batch_ready.wait(), self._flush_interval)
            batch = self._buffer[:self._batch_size]
            del self._buffer[:self._batch_size]
            self._inflight = len(batch)
            if len(self._buffer) < self._batch_size and not self._urgent:
                self._batch_ready.clear()
            if not self._buffer:
                self._has_items.clear()
            try:
                if batch:
                    await self._post(batch, len(batch))
            except AutoSDLCError as exc:
                log.warning("dropping %d buffered events: %s", len(batch), exc)
                self._failures.append(exc)
                self._errors.fire(exc)
            finally:
                self._inflight = 0
            if not self._buffer:
                self._urgent = False
                self._batch_ready.clear()
                self._idle.set()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
            self._owns_http = True
        return self._http

    async def _headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", **await self._credentials.headers()}

    async def _post(self, body: dict[str, Any] | list[dict[str, Any]], count: int) -> list[str]:
        payload = orjson.dumps(body)
        event_ids = [str(e.get("id")) for e in (body if isinstance(body, list) else [body])]
        attempt = 0
        while True:
            attempt += 1
            self.attempts += 1
            status: int | None = None
            retry_after: float | None = None
            try:
                async with self._session().post(self.url, data=payload, headers=await self._headers(),
                                                timeout=self._timeout) as resp:
                    status = resp.status
                    raw = await resp.read()
                    if status == 202:
                        ids = orjson.loads(raw).get("ids", [])
                        return [str(i) for i in ids]
                    code, message, path = _error_fields(raw, status)
                    if status != 429 and status < 500:
                        raise PublishRejected(status, code, message, path, event_ids)
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    problem = f"HTTP {status} {code}: {message}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt >= self._max_attempts:
                raise PublishFailed(attempt, status, problem, event_ids)
            delay = full_jitter(attempt - 1, self._backoff_base, self._backoff_cap)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self._backoff_cap * 4))
            log.info("publish of %d events failed (%s); retry %d in %.2f s", count, problem, attempt, delay)
            await asyncio.sleep(delay)


def _error_fields(raw: bytes, status: int) -> tuple[str, str, str | None]:
    try:
        error = orjson.loads(raw).get("error") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return f"http_{status}", raw[:200].decode(errors="replace"), None
    path = error.get("path")
    return (str(error.get("code", f"http_{status}")), str(error.get("message", "")),
            path if isinstance(path, str) else None)
