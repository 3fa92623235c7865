"""Shared helpers of the security tests: what the contract allows the server to
say, and a `python -m autosdlc_ws serve` subprocess on a free port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from autosdlc_ws.core import messages
from autosdlc_ws.errors import CloseCode, ErrorCode
from tests.conftest import JWT_SECRET, REPO, free_port, timeout

#: `error` codes of CONTRACT.md section 6.
ERROR_CODES = frozenset(c.value for c in ErrorCode)
#: Close codes of CONTRACT.md section 6, plus 1007 (RFC 6455: a text frame that
#: is not UTF-8; aiohttp fails the connection with it, documented in protocol.md).
CLOSE_CODES = frozenset(int(c) for c in CloseCode) | {1007}
#: What a client sees when the TCP connection ends without a close frame.
ABNORMAL = 1006
#: Control types only the server sends (a client must never see a request type).
SERVER_TYPES = frozenset({"connect", "disconnect", "pong", "error", "auth_success", "auth_failure",
                          "subscription_update"})


def check_server_message(msg: Any) -> None:
    """`msg` is a valid server frame: schema-valid, encodable, and an `error`
    carries a contract code and no stack trace."""
    assert isinstance(msg, dict), msg
    messages.validate_message(msg)
    orjson.dumps(msg)
    type_ = msg["type"]
    assert type_ in SERVER_TYPES or type_ in messages.EVENT_TYPES, type_
    if type_ == "error":
        assert msg["data"]["code"] in ERROR_CODES, msg
    if type_ in ("error", "auth_failure"):
        text = msg["data"]["message"]
        assert "Traceback" not in text and 'File "' not in text, text
        assert len(text) < 4096, len(text)


@dataclass
class ServeProcess:
    proc: subprocess.Popen[bytes]
    port: int
    scheme: str
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.scheme == 'https' else 'ws'}://127.0.0.1:{self.port}/ws"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout(5))


def start_serve(tmp: Path, *, args: tuple[str, ...] = (), env: Mapping[str, str] | None = None,
                scheme: str = "http", ready_s: float = 20.0) -> ServeProcess:
    """`python -m autosdlc_ws serve` on a free 127.0.0.1 port; returns once it listens."""
    port = free_port()
    log_path = tmp / f"serve-{port}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOSDLC_WS_")}
    full_env.update({
        "AUTOSDLC_WS_JWT_SECRET": JWT_SECRET,
        "AUTOSDLC_WS_MONITOR_INTERVAL_S": "0",
        "AUTOSDLC_WS_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO / "src"),
        **(env or {}),
    })
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "autosdlc_ws", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=full_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp)
    server = ServeProcess(proc, port, scheme, log_path)
    deadline = time.monotonic() + timeout(ready_s)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}:\n{server.log()}")
        if "listening on" in server.log():
            return server
        time.sleep(0.05)
    server.stop()
    raise AssertionError(f"serve did not start within {ready_s} s:\n{server.log()}")


def publish_http(base_url: str, events: Any, *, api_key: str | None = None, token: str | None = None,
                 context: Any = None) -> tuple[int, dict[str, Any]]:
    """POST /api/v1/events with the standard library (no event loop needed)."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["X-API-Key"] = api_key
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{base_url}/api/v1/events", data=json.dumps(events).encode(),
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout(10), context=context) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
