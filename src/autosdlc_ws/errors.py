"""Error codes, close codes and the one exception tree of the package.

Wire errors are values (`ErrorCode` in an `error` frame, `CloseCode` on close);
inside the process every failure a client can cause is a `GatewayError`
subclass carrying the code it maps to, so the I/O layer never has to guess.

    GatewayError
    ├── ProtocolError            -> error frame (connection stays open)
    │   ├── InvalidJSON          invalid_json
    │   ├── InvalidMessage       invalid_message (with path)
    │   ├── UnknownType          unknown_type
    │   ├── Unauthorized         unauthorized
    │   ├── Forbidden            forbidden
    │   ├── RateLimited          rate_limited (with retry_after_ms)
    │   ├── TooLarge             too_large
    │   └── NotFound             not_found
    ├── AuthenticationError      bad/expired credentials (HTTP 401, auth_failure)
    ├── BrokerUnavailable        the broker cannot take or deliver events now
    └── ConfigError              invalid configuration (operator error)
"""

from __future__ import annotations

from enum import Enum, IntEnum


class ErrorCode(str, Enum):
    INVALID_JSON = "invalid_json"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_TYPE = "unknown_type"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"
    NOT_FOUND = "not_found"
    INTERNAL = "internal"


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    INVALID_PAYLOAD = 1007  # a text frame that is not UTF-8 (sent by aiohttp)
    POLICY = 1008
    TOO_LARGE = 1009
    INTERNAL = 1011
    TRY_AGAIN_LATER = 1013
    UNAUTHORIZED = 4001
    TOKEN_EXPIRED = 4003
    SLOW_CONSUMER = 4008


#: Close codes after which clients reconnect (with backoff and resume).
RECONNECT_CODES = frozenset(
    {CloseCode.GOING_AWAY, 1006, CloseCode.INTERNAL, CloseCode.TRY_AGAIN_LATER,
     CloseCode.SLOW_CONSUMER}
)
#: Close codes after which clients stop and report instead of retrying.
FATAL_CODES = frozenset(
    {CloseCode.INVALID_PAYLOAD, CloseCode.POLICY, CloseCode.TOO_LARGE, CloseCode.UNAUTHORIZED}
)


class GatewayError(Exception):
    """Root of every exception this package raises on purpose."""


class ProtocolError(GatewayError):
    """A client message that gets an `error` frame; the connection stays open."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def to_data(self) -> dict[str, object]:
        data: dict[str, object] = {"code": self.code.value, "message": self.message}
        if self.path is not None:
            data["path"] = self.path
        return data


class InvalidJSON(ProtocolError):
    code = ErrorCode.INVALID_JSON


class InvalidMessage(ProtocolError):
    code = ErrorCode.INVALID_MESSAGE


class UnknownType(ProtocolError):
    code = ErrorCode.UNKNOWN_TYPE


class Unauthorized(ProtocolError):
    code = ErrorCode.UNAUTHORIZED


class Forbidden(ProtocolError):
    code = ErrorCode.FORBIDDEN


class TooLarge(ProtocolError):
    code = ErrorCode.TOO_LARGE


class NotFound(ProtocolError):
    code = ErrorCode.NOT_FOUND


class RateLimited(ProtocolError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms

    def to_data(self) -> dict[str, object]:
        data = super().to_data()
        data["retryAfterMs"] = self.retry_after_ms
        return data


class AuthenticationError(GatewayError):
    """Credentials that are malformed, unknown, badly signed or expired."""

    def __init__(self, message: str, *, code: str = "invalid_credentials") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class BrokerUnavailable(GatewayError):
    """The broker cannot accept or deliver events right now; retry later."""


class ConfigError(GatewayError):
    """The operator's configuration is invalid; the message says how to fix it."""
