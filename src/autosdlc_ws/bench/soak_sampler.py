"""What the soak run samples: the server's memory and open files, its responsiveness, its counters.

- Memory and open files come from /proc (`bench.procstat`) for the whole
  `serve --workers N` tree (supervisor + workers), per process too, so a
  restarted worker shows as a new pid.
- The gateway has no event-loop lag metric, so lag is measured from outside:
  `LagProbe` times `GET /healthz` (a handler that does nothing) once a second
  on a fresh connection, from a thread (so the soak's own loop does not add to
  it); with several workers the kernel spreads the probes over them. Each
  sample reports the median and the worst of the probes since the previous
  one. It includes the TCP connect and the HTTP parsing: on an idle server
  about a millisecond; what rises above that is time the request waited for
  a busy loop.
- Deliveries: the gateway's `autosdlc_ws_events_delivered_total` (summed
  over the workers' snapshots by whichever worker answers; a killed worker's
  counts leave the sum when its snapshot goes stale), and the clients' own
  count, which the orchestrator adds.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import re
import statistics
import time
from typing import Any

from autosdlc_ws.bench.procstat import comm, open_fds, pss_bytes, rss_bytes, tree

_METRIC = re.compile(r"^(autosdlc_ws_[a-z_]+?)(?:\{[^}]*\})? ([0-9.eE+-]+)$", re.M)
WANTED = ("autosdlc_ws_events_delivered_total", "autosdlc_ws_events_published_total",
          "autosdlc_ws_connections_active", "autosdlc_ws_slow_consumer_disconnects_total")


def process_figures(pid: int) -> dict[str, Any]:
    """RSS, PSS and open files of `pid`'s tree, in all and per process (with its name)."""
    per = {p: {"rss_bytes": rss_bytes(p, with_children=False), "pss_bytes": pss_bytes(p),
               "fds": open_fds(p, with_children=False), "name": comm(p)}
           for p in tree(pid)}
    return {"rss_bytes": sum(v["rss_bytes"] for v in per.values()),
            "pss_bytes": sum(v["pss_bytes"] for v in per.values()),
            "fds": sum(v["fds"] for v in per.values()), "per_pid": {str(p): v for p, v in per.items()}}


def _get(port: int, path: str, timeout: float) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def parse_metrics(text: str) -> dict[str, float]:
    """The `WANTED` metrics of a Prometheus text page, labelled series summed."""
    found: dict[str, float] = {}
    for name, value in _METRIC.findall(text):
        if name in WANTED:
            found[name] = found.get(name, 0.0) + float(value)
    return found


def scrape_metrics(port: int, timeout: float = 5.0) -> dict[str, float] | None:
    try:
        status, body = _get(port, "/metrics", timeout)
    except (OSError, http.client.HTTPException):
        return None
    return parse_metrics(body.decode(errors="replace")) if status == 200 else None


class LagProbe:
    """`GET /healthz` once a second; `take()` returns the figures since the last call."""

    def __init__(self, port: int, interval: float = 1.0, timeout: float = 5.0) -> None:
        self.port = port
        self.interval = interval
        self.timeout = timeout
        self._ms: list[float] = []
        self._failed = 0
        self._task: asyncio.Task[None] | None = None

    def _probe(self) -> float | None:
        t0 = time.perf_counter()
        try:
            status, _ = _get(self.port, "/healthz", self.timeout)
        except (OSError, http.client.HTTPException):
            return None
        return (time.perf_counter() - t0) * 1000 if status == 200 else None

    async def _run(self) -> None:
        while True:
            ms = await asyncio.to_thread(self._probe)
            if ms is None:
                self._failed += 1
            else:
                self._ms.append(ms)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def take(self) -> dict[str, Any]:
        ms, failed = self._ms, self._failed
        self._ms, self._failed = [], 0
        return {"healthz_ms_p50": statistics.median(ms) if ms else None,
                "healthz_ms_max": max(ms) if ms else None, "healthz_probes": len(ms),
                "healthz_failed": failed}
