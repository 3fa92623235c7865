"""The benchmarks' private Redis: now `autosdlc_ws.bench.private_redis` (the harness uses it too)."""

from autosdlc_ws.bench.private_redis import free_port, private_redis, private_redis_server

__all__ = ["free_port", "private_redis", "private_redis_server"]
