"""`serve --loop` / config `event_loop`: which loop runs, and a clear refusal."""

from __future__ import annotations

import asyncio

import pytest

from autosdlc_ws.config import Settings
from autosdlc_ws.errors import ConfigError
from autosdlc_ws.server.event_loop import loop_factory, resolve_loop, run, uvloop_installed


@pytest.mark.parametrize(("choice", "available", "expected"), [
    ("auto", True, "uvloop"), ("auto", False, "asyncio"),
    ("asyncio", True, "asyncio"), ("asyncio", False, "asyncio"),
    ("uvloop", True, "uvloop"),
])
def test_resolve_loop(choice: str, available: bool, expected: str) -> None:
    assert resolve_loop(choice, uvloop_available=available) == expected


def test_uvloop_asked_for_but_missing_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        resolve_loop("uvloop", uvloop_available=False)
    with pytest.raises(ConfigError, match="event_loop must be one of"):
        resolve_loop("trio", uvloop_available=True)


def test_config_refuses_an_unknown_loop() -> None:
    with pytest.raises(ConfigError, match="event_loop"):
        Settings(event_loop="tokio")


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_run_uses_the_chosen_loop() -> None:
    assert loop_factory("asyncio") is None
    assert run(_loop_module(), "asyncio").startswith("asyncio")
    if uvloop_installed():
        assert run(_loop_module(), "uvloop").startswith("uvloop")
        assert run(_loop_module(), "auto").startswith("uvloop")
    else:
        assert run(_loop_module(), "auto").startswith("asyncio")
