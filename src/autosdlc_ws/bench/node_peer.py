"""The Node.js Socket.IO peer: its small npm project, installed on first use, and its command.

It lives in `benchmarks/peers/node-socketio/` (package.json and a committed
package-lock.json). The benchmark setup installs it (`make bench`, or the
harness itself before it starts the peer: `npm ci` when `node_modules` is
missing or older than the lock file), never `make test`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

TARGET = "node-socketio"
PROJECT = "node-socketio"  # folder under the peers directory


class NodePeerUnavailable(RuntimeError):
    """node or npm is missing, or the peer's dependencies did not install."""


def project_dir(peers: Path) -> Path:
    return peers / PROJECT


def missing_tools() -> list[str]:
    """Which of node and npm are not on PATH."""
    return [tool for tool in ("node", "npm") if shutil.which(tool) is None]


def is_installed(project: Path) -> bool:
    """npm ci has run since the lock file last changed (npm writes node_modules/.package-lock.json)."""
    stamp, lock = project / "node_modules" / ".package-lock.json", project / "package-lock.json"
    return stamp.is_file() and stamp.stat().st_mtime >= lock.stat().st_mtime


def ensure_installed(project: Path, *, timeout: float = 300.0) -> None:
    if not (project / "package-lock.json").is_file():
        raise NodePeerUnavailable(f"{project}/package-lock.json not found: run from the source tree "
                                  "or set AUTOSDLC_WS_BENCH_PEERS")
    absent = missing_tools()
    if absent:
        raise NodePeerUnavailable(f"{' and '.join(absent)} not found: the node-socketio peer needs Node.js")
    if is_installed(project):
        return
    done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=project, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise NodePeerUnavailable(f"npm ci in {project} failed:\n{(done.stdout + done.stderr)[-2000:]}")


def command(project: Path, host: str, port: int) -> list[str]:
    """The command that starts the peer, its dependencies installed first."""
    ensure_installed(project)
    node = shutil.which("node") or "node"
    return [node, str(project / "server.js"), "--host", host, "--port", str(port)]


def versions(project: Path) -> dict[str, str]:
    """Node.js and socket.io versions for the results' metadata ("-" when absent)."""
    found = {"node": "-", "socket.io": "-"}
    node = shutil.which("node")
    if node:
        try:
            found["node"] = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10,
                                           check=False).stdout.strip().lstrip("v") or "-"
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        manifest = json.loads((project / "node_modules" / "socket.io" / "package.json").read_text())
        found["socket.io"] = str(manifest.get("version", "-"))
    except (OSError, ValueError):
        pass
    return found
