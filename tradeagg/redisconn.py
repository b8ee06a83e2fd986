"""Redis clients built from Settings: one Redis, or a Redis Cluster.

``REDIS_URL`` with a ``redis+cluster://`` (or ``rediss+cluster://``) scheme, or
``TRADEAGG_REDIS_CLUSTER=1``, selects redis-py's cluster client. Blocking
readers (XREADGROUP ... BLOCK) get a client of their own whose socket timeout
exceeds the block time.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.cluster import RedisCluster

from tradeagg.settings import Settings


def _plain_url(url: str) -> str:
    return url.replace("redis+cluster://", "redis://").replace("rediss+cluster://", "rediss://")


def connect(settings: Settings, *, block_ms: int = 0, max_connections: int = 64) -> Any:
    """A client for ``settings.redis_url``; ``block_ms`` raises the socket timeout above it."""
    timeout = max(10.0, block_ms / 1000.0 + 5.0)
    url = _plain_url(settings.redis_url)
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": 5.0,
        "health_check_interval": 30,
    }
    if settings.redis_cluster:
        return RedisCluster.from_url(url, max_connections=max_connections, **options)
    return redis.Redis.from_url(url, max_connections=max_connections, **options)


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)
