"""One worker process of `serve --workers N`, as the supervisor (`server.workers`)
starts it: forked by the fork server, its `Settings` pickled in the arguments
(no secrets in argv or the environment)."""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import sys

from autosdlc_ws.errors import ConfigError
from autosdlc_ws.server.event_loop import run as run_on_loop
from autosdlc_ws.server.logs import configure_logging
from autosdlc_ws.server.serve import serve
from autosdlc_ws.server.worker_settings import settings_from_supervisor
from autosdlc_ws.server.workers import STATS_DIR_ENV, WORKER_ENV, WORKER_NAME_PREFIX

PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


def prctl(option: int, value: int | bytes) -> None:
    """Linux `prctl`; elsewhere (or without libc) nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(option, value)
    except OSError:
        pass


def run_worker(index: int, stats_dir: str | None, settings_blob: bytes, replacement: bool = False) -> None:
    """Entry point of worker `index` (the fork server's target); exits with its status.
    `replacement`: it replaces one that died (see `serve`)."""
    try:
        settings = settings_from_supervisor(settings_blob)
    except (ValueError, TypeError, ConfigError, pickle.UnpicklingError) as exc:
        print(f"autosdlc-ws worker: unusable settings: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # SIGTERM this worker when its parent dies
    if os.getppid() == 1:  # the parent died before we could ask
        raise SystemExit(1)
    prctl(_PR_SET_NAME, f"{WORKER_NAME_PREFIX}{index}".encode()[:15])
    os.environ[WORKER_ENV] = str(index)
    if stats_dir:
        os.environ[STATS_DIR_ENV] = stats_dir
    configure_logging(settings.log_level, settings.log_format)
    try:
        run_on_loop(serve(settings, replacement=replacement), settings.event_loop)
    except KeyboardInterrupt:
        pass
