"""Which asyncio event loop the gateway runs on: `serve --loop`, config `event_loop`.

uvloop (libuv underneath) runs the same code with a cheaper loop and cheaper
transports; "auto" uses it when it is installed (the `bench` extra) and the
standard loop otherwise, so a plain install behaves as before. Asking for
uvloop explicitly when it is missing is a configuration error, said before
anything binds, never a silent fallback. Workers (`--workers`) get the
setting with the rest of their settings and choose the same way.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from autosdlc_ws.errors import ConfigError

T = TypeVar("T")

LOOP_CHOICES = ("auto", "asyncio", "uvloop")


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def resolve_loop(choice: str, *, uvloop_available: bool | None = None) -> str:
    """The loop `choice` means here: "asyncio" or "uvloop"."""
    available = uvloop_installed() if uvloop_available is None else uvloop_available
    if choice == "asyncio":
        return "asyncio"
    if choice == "uvloop":
        if not available:
            raise ConfigError("event_loop 'uvloop' asked for, but uvloop is not installed "
                              "(pip install 'autosdlc-ws[bench]' or pip install uvloop; or use --loop asyncio)")
        return "uvloop"
    if choice == "auto":
        return "uvloop" if available else "asyncio"
    raise ConfigError(f"event_loop must be one of {', '.join(LOOP_CHOICES)}, not {choice!r}")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory `asyncio.Runner` takes for a resolved loop name (None: the standard one)."""
    if name == "uvloop":
        import uvloop  # type: ignore[import-not-found,unused-ignore]

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    return None


def run(main: Coroutine[Any, Any, T], choice: str) -> T:
    """`asyncio.run(main)` on the loop `choice` resolves to."""
    with asyncio.Runner(loop_factory=loop_factory(resolve_loop(choice))) as runner:
        return runner.run(main)
