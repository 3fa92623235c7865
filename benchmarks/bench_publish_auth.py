"""Server CPU per single-event `POST /api/v1/events` with a JWT: verified tokens kept or not.

A publisher that posts one event per request (an agent's status, a log line)
presents the same token every time. The gateway keeps a token it has
verified (`core.auth.Authenticator`, `VERIFIED_TOKENS_KEPT`), so later
requests skip the three JWT parses. This runs a single-process `serve`
(memory broker) twice per round, once as shipped and once with the kept
tokens forgotten after every request (the behaviour before), posts
`--posts` single events one after the other on a keep-alive connection with
the same token, and reads the server's CPU time from /proc before and
after. Rounds alternate the two, so drift hits both.

    .venv/bin/python benchmarks/bench_publish_auth.py [--posts 4000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from autosdlc_ws.bench.targets import GATEWAY_BENCH_ENV
from autosdlc_ws.core.auth import mint_token

sys.path.insert(0, str(Path(__file__).resolve().parent))
from private_redis import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "publish-auth-latest.json"
SECRET = "bench-" + "x" * 40
#: Runs `serve`; with "forget", the kept tokens are dropped after every verification.
SERVER = """
import sys
from autosdlc_ws.core import auth
if sys.argv[1] == "forget":
    verify = auth.Authenticator.verify_jwt
    def verify_without_keeping(self, token, now_ms):
        try:
            return verify(self, token, now_ms)
        finally:
            self._verified.clear()
    auth.Authenticator.verify_jwt = verify_without_keeping
from autosdlc_ws.cli import main
sys.exit(main(["serve", "--port", sys.argv[2], "--log-level", "WARNING"]))
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def post_all(port: int, token: str, posts: int) -> None:
    url = f"http://127.0.0.1:{port}/api/v1/events"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        else:
            raise SystemExit("the gateway did not start")
        for i in range(posts):
            body = json.dumps({"type": "agent_status", "data": {"agentId": "a1", "status": "busy"},
                               "metadata": {"source": "bench"}, "id": f"e-{i}"})
            async with session.post(url, data=body, headers=headers) as r:
                if r.status != 202:
                    raise SystemExit(f"publish answered {r.status}: {await r.text()}")


def one_run(mode: str, posts: int, token: str) -> float:
    """Microseconds of server CPU per POST."""
    port = free_port()
    env = {**os.environ, **GATEWAY_BENCH_ENV, "AUTOSDLC_WS_JWT_SECRET": SECRET,
           "AUTOSDLC_WS_MONITOR_INTERVAL_S": "0"}
    proc = subprocess.Popen([sys.executable, "-c", SERVER, mode, str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        asyncio.run(post_all(port, token, 50))  # warm-up: imports, first requests
        before = cpu_seconds(proc.pid)
        asyncio.run(post_all(port, token, posts))
        return (cpu_seconds(proc.pid) - before) / posts * 1e6
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    token = mint_token(SECRET, "publisher", ["publish:*", "read:*"], ttl_s=3600, now_s=int(time.time()))
    runs: dict[str, list[float]] = {"kept": [], "forget": []}
    for _ in range(args.rounds):
        for mode in ("forget", "kept"):
            runs[mode].append(one_run(mode, args.posts, token))
            print(f"{mode:>6}: {runs[mode][-1]:.0f} us of server CPU per POST", flush=True)
    kept, forget = statistics.median(runs["kept"]), statistics.median(runs["forget"])
    print(f"median: kept {kept:.0f} us, re-verified {forget:.0f} us per POST: {forget / kept:.2f}x less CPU")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"posts": args.posts, "runs_us_per_post": runs,
                                   "median_kept_us": kept, "median_reverified_us": forget}, indent=1))


if __name__ == "__main__":
    main()
