"""The soak run's faults: its own Redis (which it restarts) and a worker killed with SIGKILL.

Redis runs by default with an append-only file fsynced on every write
(`appendfsync always`) and is stopped with SIGTERM, so a restart keeps the event history,
the sessions and the epoch: clients that resume afterwards must get every
event, which is what the soak checks. (Without persistence the gateway would
answer resumes with `subscription_update {status: "reset"}` instead, a
different contract.) The server is always on 127.0.0.1 and a free port, never
the shared 6379.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from autosdlc_ws.bench.local_processes import redis_ping, terminate
from autosdlc_ws.bench.procstat import worker_pids
from autosdlc_ws.bench.targets import free_port

#: `--redis-persistence`: appendfsync policy of the append-only file, or "none" (a restart loses
#: everything: resumes after it are answered with resets, which the verdict counts as loss).
PERSISTENCE = ("always", "everysec", "none")


class RedisProcess:
    """A private `redis-server` that can be stopped and started again on the same port and data."""

    def __init__(self, workdir: Path, log_path: Path, persistence: str = "always") -> None:
        if persistence not in PERSISTENCE:
            raise ValueError(f"persistence must be one of {', '.join(PERSISTENCE)}")
        self.persistence = persistence
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.workdir = workdir
        self.log_path = log_path
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self, timeout: float = 15.0) -> None:
        if not os.path.exists(self.binary):
            raise RuntimeError("redis-server not found (apt-get install -y redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
               "--dir", str(self.workdir), "--logfile", str(Path(self.log_path).resolve())]  # redis chdirs to --dir
        if self.persistence == "none":
            cmd += ["--appendonly", "no"]
        else:
            cmd += ["--appendonly", "yes", "--appendfsync", self.persistence]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}; see {self.log_path}")
            if self.ping():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer PING")

    def ping(self) -> bool:
        return redis_ping(self.port)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM: Redis flushes the append-only file and exits."""
        if self.proc is not None:
            terminate(self.proc, timeout)

    def restart(self, down_s: float) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()
        self.restarts += 1


def kill_worker(supervisor_pid: int) -> int | None:
    """SIGKILL one worker of the `serve --workers N` process; its pid, or None if none."""
    workers = sorted(worker_pids(supervisor_pid))
    if not workers:
        return None
    pid = workers[0]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return pid


def wait_workers(supervisor_pid: int, count: int, timeout: float) -> bool:
    """Until the supervisor has `count` live workers again (it restarts killed ones)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(worker_pids(supervisor_pid)) >= count:
            return True
        time.sleep(0.1)
    return False
