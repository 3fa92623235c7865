"""Brokers by URL scheme: the built-in ones, a new one in one line, unknown ones refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from autosdlc_ws.broker import registry
from autosdlc_ws.broker.backend import Backend
from autosdlc_ws.broker.memory import MemoryEventLog, memory_backend
from autosdlc_ws.broker.partitioned_log import PartitionedEventLog
from autosdlc_ws.broker.redis_log import RedisEventLog
from autosdlc_ws.broker.redis_target import cluster_seeds
from autosdlc_ws.broker.urls import redact_url, url_scheme
from autosdlc_ws.config import Settings
from autosdlc_ws.errors import ConfigError

BUILT = memory_backend()


def build_test_backend(settings: Settings) -> Backend:
    """The factory of the `test-only://` scheme registered below."""
    return BUILT


@pytest.fixture
def test_scheme() -> Iterator[str]:
    registry.register_backend("test-only", f"{__name__}:build_test_backend")
    yield "test-only"
    del registry._REGISTRY["test-only"]


def test_builtin_schemes_build_their_backends() -> None:
    assert registry.known_schemes() == ["memory", "redis", "redis-cluster", "rediss", "rediss-cluster"]
    memory = registry.make_backend(Settings())
    assert memory.name == "memory" and isinstance(memory.log, MemoryEventLog)
    redis = registry.make_backend(Settings(broker="rediss://:secret@cache:6380/1"))
    assert redis.name == "redis" and isinstance(redis.log, RedisEventLog)
    cluster = registry.make_backend(Settings(broker="redis-cluster://r1:7000,r2:7001", redis_partitions=8))
    assert cluster.name == "redis-cluster" and isinstance(cluster.log, PartitionedEventLog)
    assert cluster.log.partitions == 8


def test_cluster_urls_name_every_seed_and_refuse_nonsense() -> None:
    seeds, options = cluster_seeds("redis-cluster://u:p%40ss@r1:7000, r2:7001,[::1]:7002")
    assert seeds == [("r1", 7000), ("r2", 7001), ("::1", 7002)]
    assert options == {"username": "u", "password": "p@ss"}
    assert cluster_seeds("rediss-cluster://r1:7000")[1] == {"ssl": True}
    for url in ("redis-cluster://r1", "redis-cluster://r1:x", "redis-cluster://"):
        with pytest.raises(ConfigError):
            cluster_seeds(url)


def test_a_new_scheme_is_one_registration(test_scheme: str) -> None:
    settings = Settings(broker=f"{test_scheme}://somewhere", workers=2)
    assert registry.make_backend(settings) is BUILT


def test_unknown_schemes_are_refused_with_the_known_ones() -> None:
    for url in ("nats://n:4222", "memory://", "redis", "redis-cluster"):
        with pytest.raises(ConfigError, match=r"known brokers: memory, redis://, redis-cluster://, rediss://"):
            registry.check_broker_url(url)
    with pytest.raises(ConfigError, match="shared broker"):
        registry.check_broker_url("memory", workers=2)
    with pytest.raises(ValueError):
        registry.register_backend("x", "no_colon_here")


def test_urls() -> None:
    assert url_scheme("REDIS://h:1/0") == "redis" and url_scheme("memory") == "memory"
    assert redact_url("redis://user:pw@host:6379/0") == "redis://***@host:6379/0"
    assert redact_url("redis://host:6379/0") == "redis://host:6379/0"
