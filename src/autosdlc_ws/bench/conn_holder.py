"""A process that holds idle gateway connections for `bench --max-connections`.

One process may have 20,000 open files and one source address ~28,000
ephemeral ports, so the capacity run starts several of these, each bound to
its own loopback address (127.0.0.2, 127.0.0.3, ...). Each opens connections
the way the load generator does (`LoadGen.connect_all`: upgrade, auth,
subscribe, ready), then only answers pings. The driver speaks JSON lines:

    stdin  {"grow": K, "timeout": S}  ->  stdout {"ready": ..., "open": ..., "error": ...}
    stdin  {"status": true}           ->  stdout {"ready": ..., "open": ..., ...}
    stdin  {"stop": true} or EOF      ->  close everything and exit

It also exits by itself after `--max-seconds`, so a lost driver leaves nothing.

    python -m autosdlc_ws.bench.conn_holder CONFIG.json --max-seconds 1800
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any

import orjson

from autosdlc_ws.bench.errors import BenchError
from autosdlc_ws.bench.loadgen import LoadConfig, LoadGen, raise_nofile_limit


def status(lg: LoadGen, asked: int) -> dict[str, Any]:
    """What this holder has: connections asked for, ready ever, still open now."""
    open_now = sum(1 for c in lg.conns if c.is_ready and c.close_code is None)
    return {"asked": asked, "ready": lg.ready_count, "open": open_now, "errors": dict(lg.errors),
            "cpu_s": round(time.process_time(), 3)}


async def _stdin() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _reply(obj: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj) + b"\n")
    sys.stdout.buffer.flush()


async def hold(cfg: LoadConfig, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    lg = LoadGen(cfg)
    if lg.client == "aiohttp":
        lg.open_ws_session()
    reader = await _stdin()
    deadline = loop.time() + max_seconds
    asked = 0
    try:
        while (remaining := deadline - loop.time()) > 0:
            try:
                line = await asyncio.wait_for(reader.readline(), remaining)
            except TimeoutError:
                break
            if not line:
                break
            cmd = orjson.loads(line)
            if "grow" in cmd:
                k = max(0, min(int(cmd["grow"]), cfg.n - asked))
                error = None
                t0 = time.monotonic()
                try:
                    # connect_all gives up at cfg.connect_timeout; this only bounds it
                    await asyncio.wait_for(lg.connect_all(asked, asked + k), float(cmd.get("timeout", 120)) + 15)
                except (BenchError, TimeoutError, OSError) as exc:
                    error = f"{type(exc).__name__}: {exc}"[:300]
                asked += k
                _reply({**status(lg, asked), "error": error, "connect_s": round(time.monotonic() - t0, 3)})
            elif "status" in cmd:
                _reply(status(lg, asked))
            else:
                break
    finally:
        lg.stopping = True
        for conn in lg.conns:
            conn.shutdown()
        await asyncio.sleep(0.5)
        await lg.close_ws_session()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    max_seconds = 1800.0
    if "--max-seconds" in args:
        i = args.index("--max-seconds")
        max_seconds = float(args[i + 1])
        del args[i:i + 2]
    cfg = LoadConfig.from_json(orjson.loads(open(args[0], "rb").read()))
    raise_nofile_limit()
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop  # type: ignore[import-not-found,unused-ignore]

        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(hold(cfg, max_seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
