"""`serve --workers N`: a parent process running N gateway workers on one port.

Each worker is its own Python process running the ordinary single-process
`serve()`; every worker binds the same port with SO_REUSEPORT and the kernel
spreads new connections over them. Workers are forked by a `multiprocessing`
fork server that imported the gateway once (`PRELOAD`): a worker (re)starts
in milliseconds instead of the second a fresh interpreter takes to import it,
so a killed worker's slot listens again before most of its clients return,
and the workers share the imported code's pages until they write to them.
Workers share events, history and sessions through the Redis broker, so a
client can land on (and resume on) any of them.

The parent binds nothing and serves nothing. It
- starts the workers and hands each its `Settings` (pickled over the fork
  server's socket: no secrets in argv or the environment);
- forwards SIGTERM/SIGINT to every worker, waits while they drain, and exits
  when all have exited (SIGKILL for any still alive after the grace time);
- restarts a worker that exits unexpectedly (a crash, `kill -9`): at once the
  first time, with a growing delay if it keeps dying young, and gives up
  (stopping the others, exit status 1) after `MAX_FAST_FAILURES` in a row;
- points the workers at a shared directory (`AUTOSDLC_WS_STATS_DIR`) where
  each leaves a snapshot of its metrics, so `/metrics` on any worker
  describes the whole server.

Workers ask the kernel to SIGTERM them if their parent (the fork server) dies,
and the fork server asks the same of the supervisor (Linux `PR_SET_PDEATHSIG`,
`server.fork_server`), so a supervisor killed with -9 leaves no orphans serving. Each worker
names itself `WORKER_NAME_PREFIX` + index (`ps`, `top`, /proc/PID/comm).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
from typing import TYPE_CHECKING

from autosdlc_ws.broker.urls import redact_url
from autosdlc_ws.config import Settings
from autosdlc_ws.errors import GatewayError
from autosdlc_ws.server.worker_settings import settings_for_worker

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

log = logging.getLogger("autosdlc_ws.workers")

#: Set in a worker's environment to its index; its presence means "I am a worker".
WORKER_ENV = "AUTOSDLC_WS__WORKER"
STATS_DIR_ENV = "AUTOSDLC_WS_STATS_DIR"
#: The worker's entry point (`run_worker`); named, not imported: it imports `serve`, which imports this.
WORKER_MODULE = "autosdlc_ws.server.worker_process"
#: What the fork server imports before it forks any worker: the worker's code (and see its docstring).
PRELOAD = ["autosdlc_ws.server.fork_server"]
#: A worker's process name (/proc/PID/comm, at most 15 bytes) is this plus its index.
WORKER_NAME_PREFIX = "autosdlc-ws-w"
#: A worker that dies within this many seconds of starting died young.
YOUNG_S = 5.0
MAX_FAST_FAILURES = 5


def worker_index() -> int | None:
    """This process's worker index under a multi-worker parent, else None."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value is not None and value.isdigit() else None


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        if settings.port == 0:  # every worker must bind the same port: pick one now
            with socket.socket() as s:
                s.bind((settings.host, 0))
                settings = settings.replace(port=s.getsockname()[1])
        self.settings = settings
        self.procs: dict[int, WorkerProcess] = {}
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(PRELOAD)
        self.restarts = 0
        self._stopping = asyncio.Event()
        self._failed: str | None = None
        self._stats_dir: str | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        own_stats_dir = STATS_DIR_ENV not in os.environ
        self._stats_dir = os.environ.get(STATS_DIR_ENV) or tempfile.mkdtemp(prefix="autosdlc-ws-stats-")
        s = self.settings
        print(f"autosdlc-ws: supervisor pid {os.getpid()} starting {s.workers} workers on "
              f"{s.host}:{s.port} (broker {redact_url(s.broker)})", flush=True)
        try:
            slots = [loop.create_task(self._slot(i)) for i in range(s.workers)]
            await self._stopping.wait()
            await self._terminate_all()
            await asyncio.gather(*slots, return_exceptions=True)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            if own_stats_dir and self._stats_dir:
                shutil.rmtree(self._stats_dir, ignore_errors=True)
        if self._failed:
            raise GatewayError(self._failed)
        print("autosdlc-ws: all workers exited", flush=True)

    def stop(self) -> None:
        if not self._stopping.is_set():
            log.info("supervisor stopping %d workers", len(self.procs))
            self._stopping.set()

    def _spawn(self, index: int, replacement: bool) -> WorkerProcess:
        """Start worker `index`; a `replacement` (for one that died) steers new connections to
        itself until it has caught up with its siblings (`server.refill_steering`)."""
        proc = self._context.Process(target=run_worker, name=f"{WORKER_NAME_PREFIX}{index}",
                                     args=(index, self._stats_dir, settings_for_worker(self.settings),
                                           replacement))
        proc.start()
        return WorkerProcess(proc)

    async def _slot(self, index: int) -> None:
        """Keep worker `index` running until the supervisor stops."""
        loop = asyncio.get_running_loop()
        fast_failures = 0
        replacement = False
        while not self._stopping.is_set():
            started = loop.time()
            proc = self._spawn(index, replacement)
            replacement = True
            self.procs[index] = proc
            code = await proc.wait()
            del self.procs[index]
            if self._stopping.is_set():
                if code not in (0, -signal.SIGTERM, -signal.SIGINT):
                    log.warning("worker %d (pid %d) exited with %s while draining", index, proc.pid, code)
                return
            lived = loop.time() - started
            fast_failures = fast_failures + 1 if lived < YOUNG_S else 0
            how = f"signal {-code}" if code < 0 else f"status {code}"
            if fast_failures >= MAX_FAST_FAILURES:
                self._failed = (f"worker {index} exited {fast_failures} times in a row within "
                                f"{YOUNG_S:.0f} s of starting (last: {how}); giving up")
                log.error("%s", self._failed)
                self.stop()
                return
            delay = 0.0 if fast_failures <= 1 else min(10.0, 0.25 * 2 ** fast_failures)
            log.warning("worker %d (pid %d) exited unexpectedly with %s after %.1f s; restarting in %.1f s",
                        index, proc.pid, how, lived, delay)
            print(f"autosdlc-ws: worker {index} (pid {proc.pid}) exited with {how}; restarting",
                  file=sys.stderr, flush=True)
            self.restarts += 1
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)

    async def _terminate_all(self) -> None:
        for proc in list(self.procs.values()):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        grace = self.settings.shutdown_grace_s * 2 + 5
        procs = list(self.procs.values())
        if not procs:
            return
        _, pending = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in procs], timeout=grace)
        if pending:
            for proc in procs:
                if proc.returncode is None:
                    log.warning("worker pid %d did not drain within %.0f s; killing it", proc.pid, grace)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*(p.wait() for p in procs))


def run_worker(index: int, stats_dir: str | None, settings_blob: bytes, replacement: bool = False) -> None:
    """The fork server's target (picklable by name): worker `index`'s entry point."""
    importlib.import_module(WORKER_MODULE).run_worker(index, stats_dir, settings_blob, replacement)


class WorkerProcess:
    """A started worker seen the way `asyncio.subprocess.Process` is: `await wait()` for
    its exit status (-N for signal N) without blocking the loop; several may wait."""

    def __init__(self, proc: BaseProcess) -> None:
        self.proc = proc
        self.pid: int = proc.pid  # type: ignore[assignment]  # started
        self._loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = self._loop.create_future()
        self._loop.add_reader(proc.sentinel, self._on_exit)

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    def _on_exit(self) -> None:
        self._loop.remove_reader(self.proc.sentinel)
        self.proc.join()
        self._exited.set_result(self.proc.exitcode if self.proc.exitcode is not None else -1)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


async def supervise(settings: Settings) -> None:
    await Supervisor(settings).run()
