"""A process that cannot finish its drain exits anyway (serve._exit_at_the_latest)."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.conftest import REPO, timeout


def test_a_stuck_shutdown_exits_after_its_deadline() -> None:
    code = ("import time; from autosdlc_ws.server.serve import _exit_at_the_latest; "
            "_exit_at_the_latest(0.3); time.sleep(60)")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=timeout(30))
    assert proc.returncode == 70
    assert b"still shutting down" in proc.stderr
    assert time.monotonic() - started < timeout(20)
