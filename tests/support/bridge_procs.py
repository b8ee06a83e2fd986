"""Helpers for bridge integration tests: tradeagg subprocesses, producing, reading streams."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from tradeagg.contract import keys
from tradeagg.contract.trade import Trade
from tradeagg.devtools.synthetic import to_message


def env_for(redis_url: str, bootstrap: str, topic: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "REDIS_URL": redis_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "TRADEAGG_KAFKA_TOPIC": topic,
            "TRADEAGG_KAFKA_GROUP": topic,
            "TRADEAGG_SHARDS": "4",
            "LOG_LEVEL": "INFO",
            "GEVENT_MONITOR_THREAD_ENABLE": "1",
            "GEVENT_MAX_BLOCKING_TIME": "0.1",
        }
    )
    env.update(extra)
    return env


#: set in a worker's environment, the worker runs through tests/support/crashing_worker.py
#: (which must not be imported by the test process: it patches the standard library)
CRASH_ENV = "TRADEAGG_TEST_CRASH_AFTER_APPLY"


class Proc:
    """``python -m tradeagg COMMAND`` with its output in a file.

    A worker whose env sets ``TRADEAGG_TEST_CRASH_AFTER_APPLY`` runs through
    ``tests.support.crashing_worker``, which injects that fault.
    """

    def __init__(self, command: str, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.fh = open(log, "ab")  # closed in wait()/kill()
        module = "tests.support.crashing_worker" if CRASH_ENV in env else "tradeagg"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, command],
            env=env,
            stdout=self.fh,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self, timeout: float = 30.0, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` (SIGTERM or SIGINT: both stop gracefully) and return the exit code."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.fh.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.fh.close()


@contextmanager
def running(proc: Proc, timeout: float = 30.0, sig: int = signal.SIGTERM) -> Iterator[Proc]:
    """Stop ``proc`` when the block ends, and check it stopped cleanly only if the block passed.

    A ``finally: assert proc.terminate() == 0`` would replace the block's own
    failure by the exit-code assertion; here a failing block kills the process
    and its error propagates unchanged. A passing block sends ``sig`` (SIGTERM
    or SIGINT), and the process must exit 0 within ``timeout`` (CONTRACT §4).
    """
    try:
        yield proc
    except BaseException:
        proc.kill()
        raise
    try:
        code = proc.terminate(timeout, sig)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(
            f"{proc.log.name} still running {timeout}s after signal {sig}\n{proc.text()[-3000:]}"
        ) from None
    assert code == 0, f"{proc.log.name} exited {code}\n{proc.text()[-3000:]}"


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def produce(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]]
) -> dict[int, int]:
    """Send and flush; returns the end offset (last + 1) of each partition written to."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "message.max.bytes": 10_000_000})
    ends: dict[int, int] = {}

    def done(err: Any, msg: Any) -> None:
        assert err is None, err
        ends[msg.partition()] = max(ends.get(msg.partition(), 0), msg.offset() + 1)

    for n, (key, value) in enumerate(messages):
        p.produce(topic, value=value, key=key, on_delivery=done)
        if n % 1000 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    return ends


def listed(client: Any, tokens: Iterable[str]) -> int:
    """Trades in the lists of ``tokens`` (one pipeline)."""
    pipe = client.pipeline(transaction=False)
    for token in tokens:
        pipe.llen(keys.TokenKeys(token).trades)
    return sum(pipe.execute())


def trade_message(t: Trade) -> tuple[bytes, bytes]:
    return t.token.encode(), json.dumps(to_message(t)).encode()


def stream_records(client: Any, shards: int) -> list[tuple[int, str, str]]:
    """``(shard, entry id, record)`` of every record in every shard stream."""
    out = []
    for shard in range(shards):
        for eid, fields in client.xrange(keys.stream(shard)):
            for record in fields[b"t"].decode().split("\n"):
                out.append((shard, eid.decode(), record))
    return out


def dead_letters(client: Any, shards: int) -> list[dict[str, str]]:
    out = []
    for shard in range(shards):
        for _eid, fields in client.xrange(keys.dead(shard)):
            out.append({k.decode(): v.decode() for k, v in fields.items()})
    return out


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 6000})
    try:
        parts = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in parts}
    finally:
        c.close()


def read_back(bootstrap: str, topic: str, ends: dict[int, int]) -> dict[tuple[int, int], bytes]:
    """Every message of ``topic`` below ``ends``, by ``(partition, offset)`` (no group offsets)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-read-back",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    out: dict[tuple[int, int], bytes] = {}
    try:
        c.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.monotonic() + 60
        while len(out) < sum(ends.values()):
            if time.monotonic() > deadline:
                raise AssertionError(f"read back {len(out)} of {sum(ends.values())} messages")
            for msg in c.consume(1000, 1.0):
                assert msg.error() is None, msg.error()
                out[(msg.partition(), msg.offset())] = msg.value()
    finally:
        c.close()
    return out
