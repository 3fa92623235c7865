"""The system monitor's readings for the whole deployment, from every node's figures: no I/O.

Every node's registry entry carries its connection count, its error-frame
counter and its memory (`Gateway.node_gauges`, refreshed by each heartbeat);
the monitor adds its own live figures and reduces them here to one reading
per alert condition, so every node sees (nearly) the same values and the one
that publishes (`SystemMonitor`, the holder of the monitor lease) speaks for
the deployment:

- `error_rate`: error frames per minute summed over nodes. Each node's rate
  comes from its own counter's growth, so a node joining or leaving changes
  the sum by its rate, never by its whole counter;
- `connections`: open connections summed over nodes;
- `memory`: the largest node's resident memory in MB (memory is per process:
  one bloated worker matters even when the sum looks fine).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from autosdlc_ws.broker.control import NodeInfo
from autosdlc_ws.sources.alerts import RateWindow

#: The `NodeInfo.gauges` names these readings use (written by `Gateway.node_gauges`).
ERRORS_TOTAL = "errors_total"
MEMORY_RSS_BYTES = "memory_rss_bytes"


@dataclass(frozen=True, slots=True)
class NodeFigures:
    node_id: str
    connections: int
    errors_total: float
    memory_bytes: float

    @classmethod
    def from_info(cls, node: NodeInfo) -> NodeFigures:
        return cls(node.node_id, node.connections, node.gauges.get(ERRORS_TOTAL, 0.0),
                   node.gauges.get(MEMORY_RSS_BYTES, 0.0))


class DeploymentReadings:
    """Reduces the nodes' figures to readings; keeps one rate window per node."""

    def __init__(self) -> None:
        self._windows: dict[str, RateWindow] = {}

    def read(self, nodes: Iterable[NodeFigures], now_s: float) -> dict[str, float]:
        figures = list(nodes)
        present = {n.node_id for n in figures}
        for gone in set(self._windows) - present:
            del self._windows[gone]
        error_rate = 0.0
        for node in figures:
            window = self._windows.setdefault(node.node_id, RateWindow())
            error_rate += window.rate_per_min(int(node.errors_total), now_s)
        return {
            "error_rate": error_rate,
            "connections": float(sum(n.connections for n in figures)),
            "memory": max((n.memory_bytes for n in figures), default=0.0) / 1e6,
        }


def merge_own(own: NodeFigures, registry: Iterable[NodeInfo]) -> list[NodeFigures]:
    """This node's live figures plus every other live node's last heartbeat."""
    return [own, *(NodeFigures.from_info(n) for n in registry if n.node_id != own.node_id)]
