"""What the workers' fork server imports before it forks any worker (`workers.PRELOAD`).

It loads the worker's code once, so every worker forked afterwards starts
with it imported, and it ties the fork server's life to the supervisor's:
each worker holds the fork server's "parent alive" pipe open (multiprocessing
passes it on), so the fork server would never see a supervisor killed with
-9 go away; asked to get SIGTERM when its parent dies, it goes, and its
workers (asked the same of it) drain and follow.

Import it nowhere else: it changes how the importing process dies.
"""

from __future__ import annotations

import os
import signal

from autosdlc_ws.server import worker_process

worker_process.prctl(worker_process.PR_SET_PDEATHSIG, signal.SIGTERM)
if os.getppid() == 1:  # the supervisor died before we could ask
    raise SystemExit(1)
