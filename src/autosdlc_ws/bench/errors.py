"""The benchmark harness's own failure."""

from __future__ import annotations


class BenchError(Exception):
    """The run could not be carried out (connections refused, publish failed, stall)."""
