"""Python client SDK of the AutoSDLC WebSocket gateway (docs/python-sdk.md).

    async with AutoSDLCWebSocket("ws://127.0.0.1:8765/ws", token=TOKEN) as ws:
        ws.on("agent_status", show)                                  # or @ws.on("tdd_*")
        await ws.subscribe_to_agent("coder-001", ["agent_status", "agent_task_update"])
        async for event in ws:                                       # typed models, or ResetEvent
            ...
    async with Publisher("http://127.0.0.1:8765", api_key=KEY) as pub:
        await pub.publish("agent_status", {"agentId": "coder-001", "status": "busy"})
"""

from autosdlc_ws.client.backoff import Backoff, ReconnectPolicy, full_jitter
from autosdlc_ws.client.errors import (
    AuthenticationFailed,
    AutoSDLCError,
    ClientClosed,
    ConnectError,
    ConnectionClosed,
    ForbiddenError,
    InvalidMessageError,
    MessageTooLarge,
    NotFoundError,
    PublishFailed,
    PublishRejected,
    QueueFull,
    RateLimitedError,
    ReconnectFailed,
    RequestError,
    RequestTimeout,
    TokenExpired,
)
from autosdlc_ws.client.events import RESET_TYPE, ConnectionState, ResetData, ResetEvent, to_dict
from autosdlc_ws.client.publisher import Publisher
from autosdlc_ws.client.stats import ClientStats
from autosdlc_ws.client.subscriptions import SubscriptionInfo
from autosdlc_ws.client.websocket import AutoSDLCWebSocket

__all__ = [
    "RESET_TYPE",
    "AuthenticationFailed",
    "AutoSDLCError",
    "AutoSDLCWebSocket",
    "Backoff",
    "ClientClosed",
    "ClientStats",
    "ConnectError",
    "ConnectionClosed",
    "ConnectionState",
    "ForbiddenError",
    "InvalidMessageError",
    "MessageTooLarge",
    "NotFoundError",
    "PublishFailed",
    "PublishRejected",
    "Publisher",
    "QueueFull",
    "RateLimitedError",
    "ReconnectFailed",
    "ReconnectPolicy",
    "RequestError",
    "RequestTimeout",
    "ResetData",
    "ResetEvent",
    "SubscriptionInfo",
    "TokenExpired",
    "full_jitter",
    "to_dict",
]
