"""The new limits' settings: validation, environment parsing, client address."""

from __future__ import annotations

import pytest

from autosdlc_ws.broker.memory import memory_backend
from autosdlc_ws.config import Settings, load_settings
from autosdlc_ws.errors import ConfigError
from autosdlc_ws.server.gateway import Gateway


@pytest.mark.parametrize("changes", [
    {"max_json_depth": 0}, {"max_json_depth": 201}, {"http_idle_timeout_s": 0},
    {"trusted_proxies": ("10.0.0.0/8", "not-an-ip")},
])
def test_bad_limits_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Settings(**changes)  # type: ignore[arg-type]


def test_limits_from_the_environment() -> None:
    settings = load_settings(env={
        "AUTOSDLC_WS_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16",
        "AUTOSDLC_WS_MAX_JSON_DEPTH": "12",
        "AUTOSDLC_WS_MAX_CONNECTIONS_PER_IP": "0",
        "AUTOSDLC_WS_RATE_CONNECT_PER_IP_PER_S": "0",
        "AUTOSDLC_WS_RATE_IDENTITY_PUBLISH_PER_S": "0",
        "AUTOSDLC_WS_HTTP_IDLE_TIMEOUT_S": "2.5",
    })
    assert settings.trusted_proxies == ("10.0.0.1", "192.168.0.0/16")
    assert settings.max_json_depth == 12 and settings.http_idle_timeout_s == 2.5
    gateway = Gateway(settings, backend=memory_backend())
    # 0 turns a limit off
    assert gateway.connect_limiter is None and gateway.identity_publish_limiter is None
    assert all(gateway.claim_address("1.2.3.4") for _ in range(10_000))


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    ("10.0.0.1", "203.0.113.9", "203.0.113.9"),
    ("10.0.0.1", "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # the right-most hop the proxy saw
    ("10.0.0.1", "203.0.113.9, 192.168.1.5", "203.0.113.9"),  # trusted hops are skipped
    ("10.0.0.1", "192.168.1.5", "192.168.1.5"),  # only trusted hops: the left-most one
    ("10.0.0.1", None, "10.0.0.1"),
    ("10.0.0.1", "", "10.0.0.1"),
    ("203.0.113.50", "198.51.100.1", "203.0.113.50"),  # untrusted peer: the header is ignored
    ("::1", "2001:db8::7", "::1"),
    ("10.0.0.1", "2001:db8::7", "2001:db8::7"),
    (None, "198.51.100.1", ""),
])
def test_client_address(peer: str | None, forwarded: str | None, expected: str) -> None:
    gateway = Gateway(Settings(trusted_proxies=("10.0.0.1", "192.168.0.0/16")), backend=memory_backend())
    assert gateway.client_address(peer, forwarded) == expected


def test_address_claims_are_counted_and_released() -> None:
    gateway = Gateway(Settings(max_connections_per_ip=2), backend=memory_backend())
    assert gateway.claim_address("a") and gateway.claim_address("a")
    assert not gateway.claim_address("a")
    assert gateway.claim_address("b")
    gateway.release_address("a")
    assert gateway.claim_address("a")
    for address in ("a", "a", "b"):
        gateway.release_address(address)
    assert gateway.per_ip == {}
