"""Brokers by URL scheme: `memory`, `redis://`, `rediss://`, `redis-cluster://`, and whatever registers.

A new broker is one module with a factory plus one `register_backend` line
(see docs/architecture.md). Factories are named by module and attribute and
imported on first use, so validating a configuration never imports a client
library the process will not use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autosdlc_ws.broker.urls import url_scheme
from autosdlc_ws.errors import ConfigError

if TYPE_CHECKING:
    from autosdlc_ws.broker.backend import Backend
    from autosdlc_ws.config import Settings

BackendFactory = Callable[["Settings"], "Backend"]


@dataclass(frozen=True, slots=True)
class _Registration:
    module: str
    attribute: str
    shared: bool  # several gateway processes can share it (`--workers` > 1)
    bare: bool  # named without a URL (`memory`), not `scheme://...`

    def load(self) -> BackendFactory:
        factory: BackendFactory = getattr(importlib.import_module(self.module), self.attribute)
        return factory


_REGISTRY: dict[str, _Registration] = {}


def register_backend(scheme: str, factory: str, *, shared: bool = True, bare: bool = False) -> None:
    """Serve broker URLs `scheme://...` (or the bare name `scheme` when `bare`)
    with `factory` ("package.module:function", a function taking `Settings`
    and returning a `Backend`)."""
    module, sep, attribute = factory.partition(":")
    if not sep or not module or not attribute:
        raise ValueError(f"factory {factory!r}: expected 'package.module:function'")
    _REGISTRY[scheme.lower()] = _Registration(module, attribute, shared, bare)


def known_schemes() -> list[str]:
    return sorted(_REGISTRY)


def _registration(url: str) -> _Registration:
    registration = _REGISTRY.get(url_scheme(url))
    if registration is None or registration.bare != ("://" not in url):
        known = ", ".join(s if r.bare else f"{s}://" for s, r in sorted(_REGISTRY.items()))
        raise ConfigError(f"broker {url!r}: unknown scheme; known brokers: {known}")
    return registration


def check_broker_url(url: str, *, workers: int = 1) -> None:
    """Refuse an unknown scheme, or one process's broker for several workers."""
    registration = _registration(url)
    if workers > 1 and not registration.shared:
        raise ConfigError(
            f"--workers > 1 needs a shared broker: the {url_scheme(url)} broker lives inside one "
            "process, so workers would not see each other's events. "
            "Use --broker redis://HOST:6379/0")


def make_backend(settings: Settings) -> Backend:
    """The backend for `settings.broker`, built by its scheme's factory."""
    return _registration(settings.broker).load()(settings)


register_backend("memory", "autosdlc_ws.broker.memory:backend_from_settings", shared=False, bare=True)
register_backend("redis", "autosdlc_ws.broker.redis_backend:backend_from_settings")
register_backend("rediss", "autosdlc_ws.broker.redis_backend:backend_from_settings")
register_backend("redis-cluster", "autosdlc_ws.broker.redis_cluster_backend:backend_from_settings")
register_backend("rediss-cluster", "autosdlc_ws.broker.redis_cluster_backend:backend_from_settings")
