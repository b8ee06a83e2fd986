"""``Bridge.handle`` on hostile input, in process, against a real redis-server.

The consumer is a stand-in that only records commits (Kafka itself is in
test_bridge_hostile_e2e.py); what is checked is what reached Redis.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from tests.support.bridge_procs import dead_letters, stream_records
from tradeagg.contract import validation
from tradeagg.devtools.synthetic import SyntheticFeed, to_message
from tradeagg.observe.metrics import NullMetrics
from tradeagg.runtime.bridge import Bridge
from tradeagg.settings import Settings

SHARDS = 4
HOSTILE = [
    b'[{"quote": 1e1000000}]',
    b'{"id":"a","quote":-1e1000000}',
    b"[" + b",".join([b"0"] * 300_000) + b"]",
    b"[" + b"9" * 100_000 + b"]",
    b"[" * 200_000 + b"]" * 200_000,
    b'["\\ud800", {"id": "\\udfff"}]',
    b"\xff\x00\xfe",
    b"",
]


class Msg:
    def __init__(self, value: bytes | None, offset: int, partition: int = 0) -> None:
        self._value, self._offset, self._partition = value, offset, partition

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value


class Consumer:
    def __init__(self) -> None:
        self.commits: list[dict[int, int]] = []

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.commits.append({tp.partition: tp.offset for tp in offsets})


def bridge(client: Any) -> tuple[Bridge, Consumer]:
    consumer = Consumer()
    settings = Settings(shards=SHARDS)
    b = Bridge(
        consumer, client, settings, NullMetrics(), lambda: False, lambda f, *a, **k: f(*a, **k)
    )
    return b, consumer


def valid_messages(n: int) -> list[bytes]:
    trades = SyntheticFeed(tokens=5, seed=2).trades(n, int(time.time() * 1000) - 60_000, 10)
    return [json.dumps(to_message(t)).encode() for t in trades]


def test_each_hostile_message_is_one_dead_letter_and_valid_ones_pass(redis_client, caplog):
    good = valid_messages(len(HOSTILE) + 1)
    values = [v for pair in zip(good[:-1], HOSTILE, strict=True) for v in pair] + [good[-1]]
    b, consumer = bridge(redis_client)
    with caplog.at_level(logging.WARNING, logger="tradeagg.bridge"):
        b.handle([Msg(v, off) for off, v in enumerate(values)])
    assert len(stream_records(redis_client, SHARDS)) == len(good)
    dead = dead_letters(redis_client, SHARDS)
    assert sorted(int(d["offset"]) for d in dead) == [2 * i + 1 for i in range(len(HOSTILE))]
    assert all(len(d["raw"]) <= 1_000 and d["source"] == "bridge" for d in dead)
    assert consumer.commits == [{0: len(values)}]
    lines = [r for r in caplog.records if r.getMessage().startswith("invalid input topic=")]
    assert 0 < len(lines) <= 5  # rate-limited, not one per message or element


def test_an_unexpected_exception_dead_letters_only_its_message(redis_client, caplog, monkeypatch):
    poison = b'{"poison": 1}'
    real = validation.parse

    def parse(value: Any, now_ms: int, skew: int) -> Any:
        if value == poison:
            raise RuntimeError("injected fault")
        return real(value, now_ms, skew)

    monkeypatch.setattr(validation, "parse", parse)  # the dependency fails, not the bridge
    good = valid_messages(4)
    b, consumer = bridge(redis_client)
    msgs = [Msg(good[0], 10, 1), Msg(good[1], 11, 1), Msg(poison, 12, 1), Msg(good[2], 13, 1)]
    msgs.append(Msg(good[3], 5, 2))
    with caplog.at_level(logging.ERROR, logger="tradeagg.bridge"):
        b.handle(msgs)
    assert len(stream_records(redis_client, SHARDS)) == 4
    (dead,) = dead_letters(redis_client, SHARDS)
    assert (dead["source"], dead["partition"], dead["offset"]) == ("bridge-failure", "1", "12")
    assert (
        dead["reason"] == "internal: RuntimeError: injected fault"
        and dead["raw"] == poison.decode()
    )
    assert consumer.commits == [{1: 14, 2: 6}]  # committed past it
    (line,) = [r.getMessage() for r in caplog.records if "handling failed" in r.getMessage()]
    assert "partition=1 offset=12 error=RuntimeError" in line and "injected fault" in line


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_nothing_raises_from_handle(redis_client, value):
    b, consumer = bridge(redis_client)
    b.handle([Msg(value, 0)])
    assert len(dead_letters(redis_client, SHARDS)) == 1
    assert consumer.commits == [{0: 1}]
