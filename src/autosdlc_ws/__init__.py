"""AutoSDLC WebSocket Event System: a real-time gateway for typed events."""

__version__ = "0.2.0"
PROTOCOL_VERSION = "1.1"
