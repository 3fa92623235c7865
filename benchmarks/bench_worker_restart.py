"""How long a killed worker's slot stays empty: fork server vs a fresh interpreter.

`serve --workers 2` on a private `redis-server`; worker 0 is killed with
SIGKILL `--kills` times (each after the last replacement has lived past
`YOUNG_S`, so the supervisor restarts at once) and the time from the kill to
the replacement's "listening" line is taken. Beside it, in the same run, a
single-process `serve` started `--kills` times from a fresh interpreter, the
time from its exec to its "listening" line: what every restart cost before
workers were forked by a preloaded fork server (the supervisor then ran
`python -m autosdlc_ws.server.worker_process`, which imports the same code).

    .venv/bin/python benchmarks/bench_worker_restart.py [--kills 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from autosdlc_ws.server.workers import YOUNG_S

sys.path.insert(0, str(Path(__file__).resolve().parent))
from private_redis import free_port, private_redis

RESULTS = Path(__file__).resolve().parent / "results" / "worker-restart-latest.json"
LISTENING = re.compile(r"(?:worker (\d+) \(pid (\d+)\) )?listening on")


class Serve:
    """`python -m autosdlc_ws serve ARGS` with each output line's arrival time."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "AUTOSDLC_WS_JWT_SECRET": "bench-" + "x" * 40, "AUTOSDLC_WS_MONITOR_INTERVAL_S": "0"}
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "autosdlc_ws", "serve", "--port", str(free_port()),
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.lines: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append((time.monotonic(), raw.decode(errors="replace")))

    def listening(self, since: int = 0, timeout: float = 30.0) -> list[tuple[float, int | None, int | None]]:
        """(time, worker index, pid) of every "listening" line from line `since` on."""
        found = []
        for t, line in self.lines[since:]:
            if m := LISTENING.search(line):
                found.append((t, int(m[1]) if m[1] else None, int(m[2]) if m[2] else None))
        return found

    def wait(self, count: int, since: int = 0, timeout: float = 30.0) -> list[tuple[float, int | None, int | None]]:
        deadline = time.monotonic() + timeout
        while len(found := self.listening(since)) < count:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("the server did not come up:\n" + "".join(line for _, line in self.lines[-20:]))
            time.sleep(0.002)
        return found

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def restarts(url: str, kills: int) -> list[float]:
    server = Serve("--workers", "2", "--broker", url)
    try:
        listening = server.wait(2)
        pid = next(p for _, i, p in listening if i == 0)
        took = []
        for _ in range(kills):
            time.sleep(YOUNG_S + 1)
            since = len(server.lines)
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            t, _, pid = next(w for w in server.wait(1, since) if w[1] == 0)
            took.append(t - killed)
        return took
    finally:
        server.stop()


def fresh_starts(url: str, count: int) -> list[float]:
    took = []
    for _ in range(count):
        server = Serve("--broker", url)
        try:
            took.append(server.wait(1)[0][0] - server.started)
        finally:
            server.stop()
    return took


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    async with private_redis() as url:
        forked = await asyncio.to_thread(restarts, url, args.kills)
        fresh = await asyncio.to_thread(fresh_starts, url, args.kills)
    result = {"kills": args.kills, "fork_server_s": forked, "fresh_interpreter_s": fresh,
              "median_fork_server_s": statistics.median(forked),
              "median_fresh_interpreter_s": statistics.median(fresh),
              "ratio": statistics.median(fresh) / statistics.median(forked)}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"kill -> replacement listening (fork server): {', '.join(f'{s * 1000:.0f}' for s in forked)} ms; "
          f"median {result['median_fork_server_s'] * 1000:.0f} ms")
    print(f"exec -> listening (fresh interpreter, the old restart): {', '.join(f'{s * 1000:.0f}' for s in fresh)} "
          f"ms; median {result['median_fresh_interpreter_s'] * 1000:.0f} ms")
    print(f"fresh / fork server: {result['ratio']:.1f}x   ({RESULTS})")


if __name__ == "__main__":
    asyncio.run(main())
