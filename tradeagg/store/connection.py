"""Redis clients built from Settings: one Redis, or a Redis Cluster.

``REDIS_URL`` with a ``redis+cluster://`` (or ``rediss+cluster://``) scheme, or
``TRADEAGG_REDIS_CLUSTER=1``, selects redis-py's cluster client. Blocking
readers (XREADGROUP ... BLOCK) get a client of their own whose socket timeout
exceeds the block time.

redis-py's cluster pipeline refuses EVALSHA and cannot load scripts, yet the
engine pipelines a Lua call with ZADDs to other slots (grouped per node by
redis-py). ``Cluster.pipeline()`` therefore hands out a ``ScriptPipeline``
that queues EVALSHA like any keyed command (routed by its keys, which must
share one slot) and, on NOSCRIPT (a restarted or flushed node), loads every
registered script on all primaries and re-runs only the calls that failed:
a NOSCRIPT call never ran, so nothing runs twice.

redis-py raises ``RedisClusterException`` (not a ``RedisError``) for
client-side cluster failures such as keys of several slots in one call or
no reachable node; both classes here turn it into ``ClusterError`` so that
callers handle every Redis failure with ``except redis.RedisError``.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import ClusterError, NoScriptError, RedisClusterException

from tradeagg.errors import ConfigError, StoreError, TradeaggError
from tradeagg.settings import Settings


class Cluster(RedisCluster):
    """redis-py's cluster client whose pipelines can run registered Lua scripts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.script_sources: dict[str, str] = {}

    def register_script(self, script: str | bytes) -> Script:
        registered = super().register_script(script)
        source = registered.script
        self.script_sources[registered.sha] = (
            source.decode() if isinstance(source, bytes) else source
        )
        return registered

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        """A ScriptPipeline; a transaction keeps redis-py's own (re-running is not atomic)."""
        pipe = super().pipeline(transaction, shard_hint)
        return pipe if transaction else ScriptPipeline(pipe, self)

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute_command(*args, **kwargs)
        except RedisClusterException as exc:
            raise ClusterError(str(exc)) from None

    def load_scripts(self) -> None:
        """SCRIPT LOAD of every registered script on every primary."""
        for source in self.script_sources.values():
            self.script_load(source)


class ScriptPipeline:
    """A cluster pipeline (delegated to) that also queues EVALSHA."""

    def __init__(self, pipe: Any, cluster: Cluster) -> None:
        self._pipe = pipe
        self._cluster = cluster
        self._evals: dict[int, tuple[Any, ...]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)

    def __len__(self) -> int:
        return len(self._pipe)

    def __enter__(self) -> ScriptPipeline:
        return self

    def __exit__(self, *_: Any) -> None:
        self.reset()

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> ScriptPipeline:
        args = ("EVALSHA", sha, numkeys, *keys_and_args)
        self._evals[len(self._pipe)] = args
        self._pipe.execute_command(*args)
        return self

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        evals, self._evals = self._evals, {}
        try:
            results = self._pipe.execute(raise_on_error=False)
        except RedisClusterException as exc:
            raise ClusterError(str(exc)) from None
        missing = [i for i in evals if isinstance(results[i], NoScriptError)]
        if missing:
            self._cluster.load_scripts()
            for i in missing:
                try:
                    results[i] = self._cluster.execute_command(*evals[i])
                except redis.RedisError as exc:
                    results[i] = exc
        if raise_on_error:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results

    def reset(self) -> None:
        self._evals = {}
        self._pipe.reset()


CLUSTER_HINT = (
    "REDIS_URL points at a Redis Cluster node: use redis+cluster://host:port "
    "or set TRADEAGG_REDIS_CLUSTER=1"
)


def store_error(what: str, exc: Exception) -> TradeaggError:
    """A Redis failure as tradeagg's error; a cluster node used as one Redis is a config error."""
    if isinstance(exc, redis.exceptions.MovedError) or str(exc).startswith("MOVED"):
        return ConfigError(CLUSTER_HINT)
    return StoreError(f"{what}: {exc}")


def text(value: Any) -> str:
    """A Redis reply (bytes, or anything else) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


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
    if "+sentinel://" in settings.redis_url:
        from tradeagg.store import sentinel

        return sentinel.connect(settings.redis_url, options, max_connections)
    if settings.redis_cluster:
        return Cluster.from_url(url, max_connections=max_connections, **options)
    return redis.Redis.from_url(url, max_connections=max_connections, **options)


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)
