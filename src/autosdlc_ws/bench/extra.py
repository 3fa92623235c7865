"""The benchmarks beyond fan-out: slow consumers, resume replay, subscription index."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from autosdlc_ws.bench.loadgen import Phase
from autosdlc_ws.bench.protocol import EventFactory, new_run_id
from autosdlc_ws.bench.report import spread
from autosdlc_ws.bench.runner import run_session
from autosdlc_ws.bench.targets import SERVER_CPU, cpus_available, pin, repo_root, start_server

# --- slow consumers ------------------------------------------------------------------------------


def slow_consumer(*, n: int = 1000, stalled: int = 10, rate: float = 50_000, event_size: int = 4096,
                  duration: float = 4.0, burst_s: float = 6.0, outgoing_buffer: int = 1024 * 1024,
                  repeat: int = 1, log_dir: Path, progress: bool = True,
                  client: str = "auto") -> dict[str, Any]:
    """N readers, then the same with `stalled` of them never reading.

    The stalled readers are raw sockets with a small receive buffer that upgrade
    and subscribe like any client, then never read. Three phases: `rate`
    deliveries/s while the stalled readers fill their kernel buffers (the
    others' p99), a burst that pushes them past `outgoing_buffer` bytes owed
    (the server must close them with 4008 and free what they held), and `rate`
    again. Server RSS is sampled all along. The same phases without stalled
    readers are the reference."""
    env = {"AUTOSDLC_WS_OUTGOING_BUFFER_BYTES": str(outgoing_buffer)}
    events_per_s = rate / n
    runs = []
    for rep in range(repeat):
        for label, readers, stall in (("all reading", n, 0), (f"{stalled} stalled", n - stalled, stalled)):
            phases = [Phase("steady", rate=events_per_s * readers, duration=duration),
                      Phase("burst", batch=20, duration=burst_s),
                      Phase("after", rate=events_per_s * readers, duration=duration)]
            result = run_session("gateway", readers, phases, event_size=event_size, server_env=env,
                                 stalled=stall, log_dir=log_dir, progress=progress, client=client,
                                 label=f"slow consumer: {label} [{rep + 1}/{repeat}]")
            result["repeat"] = rep
            result["case"] = label
            runs.append(result)
    base = [r for r in runs if r["case"] == "all reading"]
    slow = [r for r in runs if r["case"] != "all reading"]

    def phase(r: dict[str, Any], label: str) -> dict[str, Any] | None:
        return next((p for p in r.get("phases", []) if p["label"] == label), None)

    def p99(r: dict[str, Any], label: str) -> float | None:
        ph = phase(r, label)
        value = ph["latency_ms"]["p99"] if ph else None
        return float(value) if value is not None else None

    def rss_peak_growth(r: dict[str, Any]) -> float | None:
        samples = [s for p in r.get("phases", []) for s in p["rss_samples"]]
        if not samples:
            return None
        return float(max(b for _, b in samples) - samples[0][1]) / 2**20

    def rss_end_growth(r: dict[str, Any]) -> float | None:
        samples = [s for p in r.get("phases", []) for s in p["rss_samples"]]
        return float(samples[-1][1] - samples[0][1]) / 2**20 if samples else None

    out: dict[str, Any] = {
        "n": n, "stalled": stalled, "rate": rate, "event_size": event_size, "duration_s": duration,
        "burst_s": burst_s, "outgoing_buffer_bytes": outgoing_buffer,
        "rss_peak_growth_mib_all_reading": spread(rss_peak_growth(r) for r in base),
        "rss_peak_growth_mib_with_stalled": spread(rss_peak_growth(r) for r in slow),
        "rss_end_growth_mib_all_reading": spread(rss_end_growth(r) for r in base),
        "rss_end_growth_mib_with_stalled": spread(rss_end_growth(r) for r in slow),
        "slow_consumer_disconnects": [(phase(r, "after") or {}).get("slow_consumer_disconnects")
                                      for r in slow],
        "ok": all(r.get("ok") for r in runs),
        "runs": runs,
    }
    for label in ("steady", "burst", "after"):
        out[f"p99_{label}_all_reading_ms"] = spread(p99(r, label) for r in base)
        out[f"p99_{label}_with_stalled_ms"] = spread(p99(r, label) for r in slow)
        out[f"p99_{label}_ratio"] = spread(p99(s, label) / p99(b, label)  # type: ignore[operator]
                                           for b, s in zip(base, slow, strict=True)
                                           if p99(s, label) and p99(b, label))
    return out


def plot_slow(result: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for run in result["runs"]:
        if not run.get("phases"):
            continue
        samples = [s for p in run["phases"] for s in p["rss_samples"]]
        if not samples:
            continue
        t0 = samples[0][0]
        p99s = "/".join(f"{p['latency_ms']['p99']:.0f}" for p in run["phases"])
        ax.plot([t - t0 for t, _ in samples], [b / 2**20 for _, b in samples],
                color="tab:red" if run["stalled"] else "tab:blue", alpha=0.8,
                label=f"{run['case']} (others' p99 steady/burst/after {p99s} ms)")
    ax.set_xlabel("seconds")
    ax.set_ylabel("server RSS, MiB")
    ax.set_title(f"{result['n']:,} readers of {result['event_size']} B events: {result['rate']:,.0f} "
                 f"deliveries/s, a burst, {result['rate']:,.0f}/s again; {result['stalled']} of them "
                 f"stop reading (outgoing limit {result['outgoing_buffer_bytes'] // 1024} KiB)", fontsize=8)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- resume ------------------------------------------------------------------------------------


async def _resume_once(base_url: str, token: str, events: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    ws_url = base_url.replace("http://", "ws://") + "/ws"
    factory = EventFactory(new_run_id(), 300)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(ws_url, headers=headers)
        session_id = None
        while True:
            msg = orjson.loads((await ws.receive(timeout=10)).data)
            if msg["type"] == "connect":
                session_id = msg["data"]["sessionId"]
            elif msg["type"] == "auth_success":
                await ws.send_str(orjson.dumps({"id": "s", "type": "subscribe", "timestamp": 0,
                                                "data": {"events": ["agent_log"]}}).decode())
            elif msg["type"] == "subscription_update":
                break
        await ws.close()
        await asyncio.sleep(0.2)
        for start in range(0, events, 1000):
            batch = [factory.make(i, 0) for i in range(start, min(events, start + 1000))]
            async with http.post(base_url + "/api/v1/events", data=orjson.dumps(batch),
                                 headers={**headers, "Content-Type": "application/json"}) as resp:
                if resp.status != 202:
                    raise RuntimeError(f"publish answered {resp.status}: {await resp.text()}")
        t0 = time.monotonic()
        ws = await http.ws_connect(f"{ws_url}?session_id={session_id}", headers=headers, max_msg_size=0)
        expected, resumed, errors = 0, None, 0
        try:
            while expected < events:
                raw = await ws.receive(timeout=30)
                if raw.type is not aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"connection ended during the replay: {raw.type}")
                msg = orjson.loads(raw.data)
                if msg["type"] == "connect":
                    resumed = msg["data"]["resumed"]
                elif msg["type"] == "agent_log":
                    if msg["data"]["seq"] != expected:
                        errors += 1
                    expected = msg["data"]["seq"] + 1
        finally:
            elapsed = time.monotonic() - t0
            await ws.close()
    return {"events": events, "replay_s": elapsed, "resumed": resumed, "order_errors": errors,
            "ok": resumed is True and errors == 0 and expected == events}


def resume_replay(*, events: int = 10_000, repeat: int = 3, log_dir: Path) -> dict[str, Any]:
    """Time from reconnecting with `session_id` to the last of `events` missed events received."""
    pinned = cpus_available() > 1
    runs = []
    for _ in range(repeat):
        server = start_server("gateway", log_dir=log_dir, cpu=SERVER_CPU if pinned else None)
        try:
            runs.append(asyncio.run(_resume_once(server.base_url, server.token or "", events)))
        finally:
            server.stop()
    return {"events": events, "replay_s": spread(r["replay_s"] for r in runs),
            "ok": all(r["ok"] for r in runs), "runs": runs}


# --- subscription index -----------------------------------------------------------------------


def index_benchmark(*, out_dir: Path, iterations: int = 50_000, runs: int = 5,
                    timeout: float = 300.0) -> dict[str, Any]:
    """Runs benchmarks/bench_index.py (pinned to the server's core) and reads its JSON."""
    script = repo_root() / "benchmarks" / "bench_index.py"
    if not script.is_file():
        return {"ok": False, "error": f"{script} not found"}
    output = out_dir / "index-latest.json"
    cmd = [sys.executable, str(script), "--iterations", str(iterations), "--runs", str(runs),
           "--output", str(output)]
    if cpus_available() > 1:
        cmd += ["--cpu", str(SERVER_CPU)]
        pin(1)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"bench_index.py did not finish in {timeout:.0f} s"}
    if not output.exists():
        return {"ok": False, "error": (proc.stderr or proc.stdout)[-2000:]}
    result: dict[str, Any] = json.loads(output.read_text())
    result["stdout"] = proc.stdout
    result["ok"] = proc.returncode in (0, 1)
    return result
