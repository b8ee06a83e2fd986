"""Durability before commit: wait until N replicas hold what this process wrote.

Redis replication is asynchronous. A bridge that commits Kafka offsets, or a
worker that acknowledges stream entries, as soon as the *primary* answered
can lose trades when that primary dies before its replicas received the
writes and a replica is promoted. With ``TRADEAGG_REDIS_WAIT_REPLICAS`` = N > 0
the bridge and the worker call ``confirm()`` between their writes and their
commit: a write of a marker key followed by ``WAIT N timeout`` on the same
connection. The marker's replication offset is at or past that of every write
this process has completed, so when N replicas acknowledged the marker they
hold every one of those writes too (whatever connection made them). On a
cluster this is done on every primary. Fewer than N acknowledgements within
the timeout raise ``ReplicationLag``, a ``redis.RedisError``: callers retry, as
for any Redis failure, and commit nothing meanwhile.

Marker keys: ``tradeagg:{wT}:mark`` (a string ``1`` with a one-hour TTL), one per
cluster primary (``T`` picked so the key hashes to a slot of that primary), one
in all on a single Redis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from tradeagg.contract import keys
from tradeagg.store.connection import is_cluster

MARK_TTL_MS = 3_600_000


class ReplicationLag(redis.RedisError):
    """Fewer replicas than required acknowledged the writes in time (retry, commit nothing)."""


class Replication:
    """``confirm()``: return once ``replicas`` replicas hold this process's writes so far."""

    def __init__(self, client: Any, replicas: int, timeout_ms: int) -> None:
        self.client = client
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self._tags: dict[str, str] = {}  # cluster primary name -> a hash tag it owns

    def confirm(self) -> None:
        if not self.replicas:
            return
        if not is_cluster(self.client):
            self._wait(self.client, "w")
            return
        for node in self.client.get_primaries():
            conn = self.client.get_redis_connection(node)
            try:
                self._wait(conn, self._tag(node))
            except redis.ResponseError as exc:  # MOVED/ASK: topology changed, look again
                self._tags.clear()
                raise ReplicationLag(f"cluster topology changed: {exc}") from None

    def confirm_patiently(
        self,
        stopping: Callable[[], bool],
        sleep: Callable[[float], None],
        on_lag: Callable[[ReplicationLag], None],
    ) -> bool:
        """``confirm()``, a ``ReplicationLag`` retried in place with backoff (0.05 s to 2 s).

        The writes are on this primary and its replicas are catching up, so
        nothing is re-sent meanwhile. False when ``stopping()`` turns true first;
        any other Redis error propagates (the primary may have changed: the
        caller decides what to send again).
        """
        pause = 0.05
        while True:
            try:
                self.confirm()
                return True
            except ReplicationLag as exc:
                on_lag(exc)
                if stopping():
                    return False
                sleep(pause)
                pause = min(2.0, pause * 2)

    def _tag(self, node: Any) -> str:
        tag = self._tags.get(node.name)
        if tag is None:
            for i in range(100_000):
                slot = self.client.keyslot(keys.replication_mark(f"w{i}"))
                owner = self.client.nodes_manager.get_node_from_slot(slot)
                if owner is not None and owner.name == node.name:
                    tag = self._tags[node.name] = f"w{i}"
                    break
            else:
                raise ReplicationLag(f"no slot found on {node.name}")
        return tag

    def _wait(self, conn: Any, tag: str) -> None:
        pipe = conn.pipeline(transaction=False)  # one connection: WAIT covers the marker
        pipe.set(keys.replication_mark(tag), "1", px=MARK_TTL_MS)
        pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
        acked = int(pipe.execute()[-1])
        if acked < self.replicas:
            raise ReplicationLag(
                f"{acked} of {self.replicas} replicas acknowledged within {self.timeout_ms} ms"
            )


__all__ = ["Replication", "ReplicationLag"]
