"""One worker process of `serve --workers N` (`python -m autosdlc_ws.server.worker_process`).

The supervisor (`server.workers`) starts it and writes its `Settings`,
pickled, to its stdin: no secrets in argv or the environment.
"""

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


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this worker when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:
        pass


def worker_main() -> int:
    """Entry point of one worker process: settings arrive pickled on stdin."""
    try:
        settings = settings_from_supervisor(sys.stdin.buffer.read())
    except (ValueError, TypeError, ConfigError, pickle.UnpicklingError) as exc:
        print(f"autosdlc-ws worker: unusable settings on stdin: {exc}", file=sys.stderr)
        return 2
    _die_with_parent()
    if os.getppid() == 1:  # the parent died before we could ask
        return 1
    configure_logging(settings.log_level, settings.log_format)
    try:
        run_on_loop(serve(settings), settings.event_loop)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(worker_main())
