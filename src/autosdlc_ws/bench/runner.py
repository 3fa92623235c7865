"""Sessions: one server (pinned to core 0) and one load generator process (core 1).

A session starts the target, runs `python -m autosdlc_ws.bench.loadgen` against
it with a list of phases, and returns the load generator's result with the
server's details. A matrix runs sessions for every (repeat, N, target),
targets interleaved within a repeat so that slow drifts of a shared machine
hit them alike.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from autosdlc_ws.bench.loadgen import LoadConfig, Phase, raise_nofile_limit
from autosdlc_ws.bench.procstat import system_busy_seconds
from autosdlc_ws.bench.targets import LOADGEN_CPU, SERVER_CPU, cpus_available, pin, start_server


def wait_quiet(max_wait: float, *, threshold: float = 0.25, window: float = 0.5) -> float:
    """Wait (at most `max_wait` s) until the machine's busy CPU is below `threshold` cores.

    The machine is shared: a run that starts while something else is busy
    measures that too. Returns the busy cores last seen."""
    deadline = time.monotonic() + max_wait
    while True:
        b0 = system_busy_seconds()
        time.sleep(window)
        busy = (system_busy_seconds() - b0) / window
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def session_timeout(n: int, phases: Iterable[Phase], drain_timeout: float) -> float:
    return 90 + n / 100 + sum(p.duration + drain_timeout for p in phases)


def run_session(target: str, n: int, phases: list[Phase], *, event_size: int = 300,
                compression: bool = False, batch: bool = False, workers: int = 1, broker: str = "memory",
                server_env: Mapping[str, str] | None = None, client: str = "auto",
                stalled: int = 0, label: str = "", log_dir: Path, progress: bool = True,
                drain_timeout: float = 30.0, uvloop: bool = True, inflight: int = 2,
                subscribe: dict[str, Any] | None = None, quiet_wait: float = 0.0) -> dict[str, Any]:
    raise_nofile_limit()  # inherited by both children
    busy_before = wait_quiet(quiet_wait) if quiet_wait > 0 else None
    pinned = cpus_available() > 1
    if pinned:
        pin(LOADGEN_CPU)  # this process waits; keep it off the server's core
    server = start_server(target, log_dir=log_dir, workers=workers, broker=broker, extra_env=server_env,
                          cpu=SERVER_CPU if pinned else None)
    started = time.monotonic()
    try:
        cfg = LoadConfig(target=target, base_url=server.base_url, n=n, token=server.token,
                         event_size=event_size, compression=compression,
                         batch=batch and target == "gateway", phases=phases,  # peers have no batches
                         server_pid=server.pid, client=client, stalled=stalled,
                         label=label or target, progress=progress, drain_timeout=drain_timeout,
                         inflight=inflight, subscribe=subscribe)
        with tempfile.TemporaryDirectory(prefix="autosdlc-bench-") as tmp:
            cfg_path, out_path = Path(tmp, "config.json"), Path(tmp, "result.json")
            cfg_path.write_text(json.dumps(cfg.to_json()))
            cmd = [sys.executable, "-m", "autosdlc_ws.bench.loadgen", str(cfg_path), str(out_path)]
            if pinned:
                cmd += ["--cpu", str(LOADGEN_CPU)]
            if not uvloop:
                cmd.append("--no-uvloop")
            try:
                subprocess.run(cmd, timeout=session_timeout(n + stalled, phases, drain_timeout),
                               stdin=subprocess.DEVNULL, check=False)
            except subprocess.TimeoutExpired:
                return {"target": target, "n": n, "label": label, "ok": False,
                        "fatal": "load generator timed out", "server_log": server.log_tail()}
            if not out_path.exists():
                return {"target": target, "n": n, "label": label, "ok": False,
                        "fatal": "load generator wrote no result", "server_log": server.log_tail()}
            result: dict[str, Any] = json.loads(out_path.read_text())
    finally:
        server.stop()
    result["session_s"] = round(time.monotonic() - started, 1)
    result["busy_cores_before"] = busy_before
    result["pinned"] = pinned
    result["workers"] = workers
    result["broker"] = broker
    if not result.get("ok"):
        result["server_log"] = server.log_tail()
    return result


def run_matrix(*, targets: list[str], ns: list[int], phases_for: Callable[[str, int], list[Phase]],
               repeat: int, log_dir: Path, on_result: Callable[[dict[str, Any]], None] | None = None,
               skip: Callable[[str, int], bool] | None = None, **session_kw: Any) -> list[dict[str, Any]]:
    sessions = []
    total = repeat * sum(1 for n in ns for t in targets if not (skip and skip(t, n)))
    done = 0
    for rep in range(repeat):
        for n in ns:
            for target in targets:
                if skip and skip(target, n):
                    continue
                done += 1
                label = f"{target} [{done}/{total}]"
                result = run_session(target, n, phases_for(target, n), label=label, log_dir=log_dir,
                                     **session_kw)
                result["repeat"] = rep
                result["label"] = target
                sessions.append(result)
                if on_result:
                    on_result(result)
    return sessions
