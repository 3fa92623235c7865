"""A gateway node in a process of its own, for the SIGKILL test of test_control_redis.

    python -m tests.redis.control_node REDIS_URL PREFIX NODE_ID

Registers with the default heartbeat and ttl, prints `ready` once registered,
answers every command with its pid, and runs until it is killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from autosdlc_ws.broker.control import NodeInfo
from autosdlc_ws.broker.redis_control import RedisControlChannel


async def answer(command: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"pid": os.getpid(), "command": command}


async def main(url: str, prefix: str, node_id: str) -> None:
    now = int(time.time() * 1000)
    channel = RedisControlChannel(url, prefix=prefix)
    await channel.start(NodeInfo(node_id, "subprocess", os.getpid(), now, now, "0.1.0"), answer)
    print("ready" if channel.reachable else "unreachable", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
