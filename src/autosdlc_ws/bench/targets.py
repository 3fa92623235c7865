"""Starting and stopping the servers under test, each pinned to its own core.

`gateway` is `python -m autosdlc_ws serve` with limits raised for benchmarking
(connections per identity, publish rate); the peers are the scripts in
`benchmarks/peers/` of the source tree, and the Node.js Socket.IO project there
(`node_peer`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from autosdlc_ws.bench import node_peer
from autosdlc_ws.bench.local_processes import terminate
from autosdlc_ws.bench.protocol import TARGETS
from autosdlc_ws.core.auth import mint_token

SERVER_CPU = 0
LOADGEN_CPU = 1

#: Settings raised so that the benchmark measures fan-out, not our own limits.
GATEWAY_BENCH_ENV = {
    "AUTOSDLC_WS_MAX_CONNECTIONS_PER_IDENTITY": "1000000",
    "AUTOSDLC_WS_MAX_CONNECTIONS_PER_IP": "0",  # every benchmark client connects from 127.0.0.1
    "AUTOSDLC_WS_RATE_CONNECT_PER_IP_PER_S": "0",
    "AUTOSDLC_WS_RATE_PUBLISH_PER_S": "1000000000",
    "AUTOSDLC_WS_RATE_PUBLISH_BURST": "1000000000",
    "AUTOSDLC_WS_LOG_LEVEL": "WARNING",
}


#: The Python peers: target -> script in the peers directory.
PEER_SCRIPTS = {"bare-aiohttp": "bare_aiohttp.py", "socketio": "socketio_server.py",
                "bare-picows": "bare_picows.py"}


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def peers_dir() -> Path:
    env = os.environ.get("AUTOSDLC_WS_BENCH_PEERS")
    return Path(env) if env else repo_root() / "benchmarks" / "peers"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def peer_command(target: str, host: str, port: int) -> list[str]:
    """How to start peer `target` (every target but the gateway) on host:port."""
    if target == node_peer.TARGET:
        return node_peer.command(node_peer.project_dir(peers_dir()), host, port)
    script = peers_dir() / PEER_SCRIPTS[target]
    if not script.is_file():
        raise FileNotFoundError(f"peer {script} not found: run from the source tree "
                                "or set AUTOSDLC_WS_BENCH_PEERS")
    return [sys.executable, str(script), "--host", host, "--port", str(port)]


def pin(cpu: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {cpu})


def _initial_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


#: CPUs this process could use when it started (before `pin` narrowed it to one).
_CPUS = _initial_cpus()


def cpus_available() -> int:
    return _CPUS


@dataclass
class Server:
    target: str
    proc: subprocess.Popen[bytes]
    port: int
    token: str | None
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        terminate(self.proc, timeout)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def parse_server_env(items: list[str]) -> dict[str, str]:
    """`--server-env KEY=VALUE` options (bench, soak) as a mapping."""
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--server-env wants KEY=VALUE, not {item!r}")
        env[key] = value
    return env


def start_server(target: str, *, log_dir: Path, workers: int = 1, broker: str = "memory",
                 extra_env: Mapping[str, str] | None = None, cpu: int | None = SERVER_CPU,
                 ready_timeout: float = 30.0) -> Server:
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; one of {', '.join(TARGETS)}")
    port = free_port()
    env = dict(os.environ)
    token = None
    if target == "gateway":
        secret = "bench-" + secrets.token_hex(24)
        env.update(GATEWAY_BENCH_ENV)
        env["AUTOSDLC_WS_JWT_SECRET"] = secret
        env.update(extra_env or {})
        token = mint_token(secret, "bench", ["read:*", "publish:*"], ttl_s=6 * 3600, now_s=int(time.time()))
        cmd = [sys.executable, "-m", "autosdlc_ws", "serve", "--host", "127.0.0.1", "--port", str(port)]
        if workers != 1:
            cmd += ["--workers", str(workers)]
        if broker != "memory":
            cmd += ["--broker", broker]
    else:
        env.update(extra_env or {})
        cmd = peer_command(target, "127.0.0.1", port)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"server-{target}-{port}.log"
    log: IO[bytes] = open(log_path, "wb")  # the child keeps its copy; ours is closed below
    preexec = (lambda: pin(cpu)) if cpu is not None else None
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            preexec_fn=preexec)
    log.close()
    server = Server(target, proc, port, token, log_path, env)
    if not _wait_ready(server.base_url + "/healthz", proc, ready_timeout):
        server.stop()
        raise RuntimeError(f"{target} did not start on port {port}:\n{server.log_tail()}")
    return server
