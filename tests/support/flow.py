"""A trade feed produced to Kafka through real processes, and the checks around it."""

from __future__ import annotations

from typing import Any

from tests.support.bridge_procs import Proc, committed, produce, trade_message
from tests.support.fault_procs import Feed, caught_up

PARTITIONS = 4


class Flow:
    """Produces the feed's trades to one topic and remembers each partition's end offset."""

    def __init__(self, bootstrap: str, topic: str, feed: Feed) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.feed = feed
        self.ends: dict[int, int] = {}

    def send(self, n: int) -> None:
        ends = produce(self.bootstrap, self.topic, map(trade_message, self.feed.batch(n)))
        for p, end in ends.items():
            self.ends[p] = max(self.ends.get(p, 0), end)

    def committed(self) -> bool:
        """The bridge committed every message sent (group = topic name)."""
        done = committed(self.bootstrap, self.topic, self.topic, PARTITIONS)
        return all(done.get(p, -1) >= end for p, end in self.ends.items())

    def all_in(self, client: Any, shards: int) -> bool:
        """Every message sent is committed by the bridge, and every entry applied and acked."""
        return self.committed() and caught_up(client, shards)


def assert_alive(*procs: Proc) -> None:
    for p in procs:
        assert p.proc.poll() is None, (
            f"{p.log.name} exited {p.proc.returncode}:\n{p.text()[-3000:]}"
        )
