"""Small helpers for the local servers the benchmarks and tests start and stop
(redis-server, the gateway): stop one politely, talk RESP to a Redis by hand."""

from __future__ import annotations

import signal
import socket
import subprocess


def terminate(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM (Redis flushes its append-only file, the gateway drains), SIGKILL
    if it is still there after `timeout`."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def resp_command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """One command to the Redis on 127.0.0.1:`port` over a raw socket, outside any
    event loop (CLIENT KILL, CLUSTER ..., DEBUG ...); b"" when it cannot be reached."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"".join(parts))
            return s.recv(1 << 20)
    except OSError:
        return b""


def redis_ping(port: int) -> bool:
    return resp_command(port, "PING", timeout=0.5).startswith(b"+PONG")
