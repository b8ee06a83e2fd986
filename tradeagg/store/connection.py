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

import logging
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import ClusterError, NoScriptError, RedisClusterException

from tradeagg.errors import ConfigError, StoreError, TradeaggError
from tradeagg.logs import kv
from tradeagg.settings import Settings, mask
from tradeagg.store.refusal import refused
from tradeagg.store.tls import TLSConnection, TLSSetupError, tls_options

log = logging.getLogger("tradeagg.redis")


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
    """A Redis failure as tradeagg's error: ``RefusedWrite`` when Redis refused the work
    (``tradeagg.store.refusal``); a cluster node used as one Redis is a config error."""
    if isinstance(exc, redis.exceptions.MovedError) or str(exc).startswith("MOVED"):
        return ConfigError(CLUSTER_HINT)
    return refused(what, exc) or StoreError(f"{what}: {exc}")


def text(value: Any) -> str:
    """A Redis reply (bytes, or anything else) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _plain_url(url: str) -> str:
    return url.replace("redis+cluster://", "redis://").replace("rediss+cluster://", "rediss://")


POOL_WAIT_S = 20.0  # a greenlet waits this long for a free connection, then the call fails


def _pool_class(tls: bool) -> type[redis.BlockingConnectionPool]:
    """A bounded pool that waits for a free connection; ``TLSConnection`` for rediss://."""

    class Pool(redis.BlockingConnectionPool):
        def __init__(self, connection_class: Any = redis.Connection, **kwargs: Any) -> None:
            super().__init__(connection_class=TLSConnection if tls else connection_class, **kwargs)

    return Pool


def connect(
    settings: Settings,
    *,
    block_ms: int = 0,
    max_connections: int | None = None,
    name: str = "",
) -> Any:
    """A client for ``settings.redis_url`` holding at most ``max_connections`` connections.

    ``max_connections`` is capped by ``TRADEAGG_REDIS_MAX_CONNECTIONS`` (per node on a
    cluster); a caller beyond the bound waits for a free connection. ``block_ms``
    raises the socket timeout above it; ``name`` is the ``CLIENT SETNAME``
    (``tradeagg-NAME``), so ``CLIENT LIST`` shows who holds what.
    """
    timeout = max(10.0, block_ms / 1000.0 + 5.0)
    url = _plain_url(settings.redis_url)
    tls = url.startswith("rediss://")
    bound = min(max_connections or settings.redis_max_connections, settings.redis_max_connections)
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": 5.0,
        "health_check_interval": 30,
        "max_connections": bound,
        "timeout": POOL_WAIT_S,
    }
    if name:
        options["client_name"] = f"tradeagg-{name}"
    if tls:
        options.update(tls_options(settings))
    pool_class = _pool_class(tls)
    if "+sentinel://" in settings.redis_url:
        from tradeagg.store import sentinel

        return sentinel.connect(settings.redis_url, options)
    if settings.redis_cluster:
        try:
            return Cluster.from_url(url, connection_pool_class=pool_class, **options)
        except (RedisClusterException, redis.RedisError) as exc:
            raise StoreError(cluster_failure(settings, exc)) from None
    return redis.Redis(connection_pool=pool_class.from_url(url, **options))


BRIDGE_CONNECTIONS = 4  # XADD pipeline, backlog check, heartbeat, probe
WORKER_SPARE = 3  # janitor, heartbeat, probe: beside the shard readers and the Lua pool


def worker_clients(settings: Settings) -> tuple[Any, Any]:
    """A worker's two clients within TRADEAGG_REDIS_MAX_CONNECTIONS.

    Each shard reader holds a connection through its XREADGROUP BLOCK, so the
    blocking client gets exactly one per shard; the rest serve the Lua pool,
    the janitor and the heartbeat (a Lua call beyond them waits for one).
    """
    total = settings.redis_max_connections
    if total < settings.shards + WORKER_SPARE:
        raise ConfigError(
            f"TRADEAGG_REDIS_MAX_CONNECTIONS={total} is too few for a worker: it needs "
            f"TRADEAGG_SHARDS ({settings.shards}) blocking readers + {WORKER_SPARE}"
        )
    reader = connect(
        settings, block_ms=settings.block_ms, max_connections=settings.shards, name="worker-read"
    )
    return reader, connect(settings, max_connections=total - settings.shards, name="worker")


def cluster_failure(settings: Settings, exc: Exception) -> str:
    """One line for a cluster client that could not start."""
    where = mask(settings.redis_url)
    detail = " ".join(str(exc).split())
    if "cluster mode is not enabled" in detail.lower() or "cluster support disabled" in detail:
        return f"{where} is not a Redis Cluster: use redis:// (and TRADEAGG_REDIS_CLUSTER=0)"
    return f"Redis Cluster at {where} unreachable: {detail[:200]}"


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


def check(client: Any) -> None:
    """PING once at start: fail now on what no retry can fix (TLS, cluster mode).

    A Redis that is merely down is not fatal: long-running processes retry.
    """
    try:
        client.ping()
    except TLSSetupError as exc:
        raise StoreError(str(exc)) from None
    except redis.RedisError as exc:
        if isinstance(exc, redis.exceptions.MovedError) or str(exc).startswith("MOVED"):
            raise ConfigError(CLUSTER_HINT) from None
        log.warning("redis not reachable yet, retrying %s", kv(error=" ".join(str(exc).split())))
