"""Exceptions raised by the client SDK.

    AutoSDLCError
    ├── ConnectError              the first connect() failed (unreachable, refused, bad answer)
    │   └── AuthenticationFailed  HTTP 401/403 at the upgrade: never retried
    ├── ConnectionClosed          the connection stopped for good (close 1008, 1009, 4001 ...)
    │   └── TokenExpired          close 4003 and no token_provider to get a fresh token
    ├── ReconnectFailed           reconnect attempts exhausted (ReconnectPolicy.max_attempts)
    ├── RequestError              a correlated `error` frame answered a request (has `code`)
    │   ├── ForbiddenError        code "forbidden"
    │   ├── NotFoundError         code "not_found"
    │   ├── RateLimitedError      code "rate_limited" (retry_after_ms)
    │   └── InvalidMessageError   code "invalid_message" / "invalid_json" / "unknown_type" (path)
    ├── RequestTimeout            no answer within request_timeout (also a TimeoutError)
    ├── QueueFull                 the bounded outgoing queue (or Publisher buffer) is full
    ├── MessageTooLarge           a frame over the server's maxFrameBytes (also a ValueError)
    ├── ClientClosed              the client was closed by the application
    ├── PublishRejected           Publisher: HTTP 4xx (validation, permission): not retried
    └── PublishFailed             Publisher: retries on 5xx/429/network errors exhausted
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AutoSDLCError(Exception):
    """Root of every exception the client SDK raises on purpose."""


class ConnectError(AutoSDLCError):
    """A connection attempt failed. `status` is the HTTP status when the upgrade was refused."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


class AuthenticationFailed(ConnectError):
    """The server refused the credentials at the upgrade (HTTP 401) or their permissions (403)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}", status=status)
        self.code = code
        self.reason = message


class ConnectionClosed(AutoSDLCError):
    """The server closed the connection with a code after which the client does not retry."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"connection closed with {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class TokenExpired(ConnectionClosed):
    """Close 4003 (token expired) and no `token_provider` to get a fresh token from."""


class ReconnectFailed(AutoSDLCError):
    """`ReconnectPolicy.max_attempts` reconnect attempts failed in a row."""

    def __init__(self, attempts: int, last_error: BaseException | None) -> None:
        super().__init__(f"gave up after {attempts} reconnect attempts: {last_error}")
        self.attempts = attempts
        self.last_error = last_error


class RequestError(AutoSDLCError):
    """The server answered a request with an `error` frame (`code`, `message`, maybe `path`)."""

    def __init__(self, code: str, message: str, *, path: str | None = None,
                 retry_after_ms: int | None = None, data: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" (at {path})" if path else ""))
        self.code = code
        self.message = message
        self.path = path
        self.retry_after_ms = retry_after_ms
        self.data: dict[str, Any] = dict(data or {})

    @staticmethod
    def from_data(data: Mapping[str, Any]) -> RequestError:
        """The exception for an `error` frame's data, of the subclass matching its code."""
        code = str(data.get("code", "internal"))
        cls = _BY_CODE.get(code, RequestError)
        retry = data.get("retryAfterMs")
        path = data.get("path")
        return cls(code, str(data.get("message", "")), path=path if isinstance(path, str) else None,
                   retry_after_ms=retry if isinstance(retry, int) else None, data=data)


class ForbiddenError(RequestError):
    """The credentials may not read (or publish) what the request names."""


class NotFoundError(RequestError):
    """The request named something the connection does not have (e.g. a subscription id)."""


class RateLimitedError(RequestError):
    """Too many requests of this kind; `retry_after_ms` says when to try again."""


class InvalidMessageError(RequestError):
    """The server found the request malformed; `path` names the failing field."""


_BY_CODE: dict[str, type[RequestError]] = {
    "forbidden": ForbiddenError,
    "not_found": NotFoundError,
    "rate_limited": RateLimitedError,
    "invalid_message": InvalidMessageError,
    "invalid_json": InvalidMessageError,
    "unknown_type": InvalidMessageError,
}


class RequestTimeout(AutoSDLCError, TimeoutError):
    """No answer to a request within the configured `request_timeout`."""


class QueueFull(AutoSDLCError):
    """A bounded queue is full: the outgoing queue while disconnected, or a Publisher's buffer."""


class MessageTooLarge(AutoSDLCError, ValueError):
    """The frame exceeds the server's `limits.maxFrameBytes`; sending it would close the connection."""


class ClientClosed(AutoSDLCError):
    """The operation needs a client that the application has not closed."""


class PublishRejected(AutoSDLCError):
    """The HTTP API refused events with a 4xx status; retrying would not help."""

    def __init__(self, status: int, code: str, message: str, path: str | None = None,
                 event_ids: list[str] | None = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}" + (f" (at {path})" if path else ""))
        self.status = status
        self.code = code
        self.message = message
        self.path = path
        self.event_ids = event_ids or []  # the ids of the refused request's events


class PublishFailed(AutoSDLCError):
    """Publishing kept failing with 5xx, 429 or network errors until the retries ran out."""

    def __init__(self, attempts: int, status: int | None, message: str,
                 event_ids: list[str] | None = None) -> None:
        super().__init__(f"publish failed after {attempts} attempts: {message}")
        self.attempts = attempts
        self.status = status
        self.message = message
        self.event_ids = event_ids or []  # retry them later with the same ids: still idempotent
