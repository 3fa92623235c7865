"""How a supervisor hands its `Settings` to a worker it starts (over the worker's
stdin, never argv or the environment: they hold secrets)."""

from __future__ import annotations

import dataclasses
import pickle

from autosdlc_ws.config import Settings


def settings_for_worker(settings: Settings) -> bytes:
    """The settings, by field name: a worker restarted after an upgrade (its
    code newer than its supervisor's) still reads them right, where a pickled
    slots dataclass is read by field position."""
    return pickle.dumps({f.name: getattr(settings, f.name) for f in dataclasses.fields(Settings)})


def settings_from_supervisor(data: bytes) -> Settings:
    """`settings_for_worker`'s output; fields this code does not know are dropped
    and the ones the supervisor did not know keep their defaults."""
    named = pickle.loads(data)
    if not isinstance(named, dict):
        raise ValueError("expected the settings by name")
    known = {f.name for f in dataclasses.fields(Settings)}
    return Settings(**{k: v for k, v in named.items() if k in known})
