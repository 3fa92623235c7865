"""When a replacement worker has taken back its part of the deployment's clients.

A worker restarted after a crash or a `kill -9` starts empty while its
siblings hold everything; its old clients come back within a second or two
(`server.refill_steering` asks the kernel to hand it every new connection
meanwhile). It is done once it holds as many connections as its least loaded
live sibling, or after `MAX_STEER_S` whatever the counts say: a sibling that
never reports, or clients that do not come back, must not leave every new
connection of the deployment on one worker for long.

Plain values only; the caller reads the siblings' counts from their metrics
snapshots (`StatsCollector.sibling_connection_counts`).
"""

from __future__ import annotations

from collections.abc import Sequence

#: The longest a replacement keeps every new connection to itself.
MAX_STEER_S = 30.0


def refilled(elapsed_s: float, own: int, siblings: Sequence[int]) -> bool:
    """Has a replacement holding `own` connections, `elapsed_s` after it began to steer,
    caught up with its live siblings' counts (`siblings`; empty when none reported yet)?"""
    if elapsed_s >= MAX_STEER_S:
        return True
    return bool(siblings) and own >= min(siblings)
