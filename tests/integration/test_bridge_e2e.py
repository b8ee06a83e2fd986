"""End to end: Kafka -> ``tradeagg bridge`` -> ``tradeagg worker`` -> exact aggregates.

Every token's windows must equal the brute-force reference over the distinct
valid trades, whatever the duplicates, invalid input and arrival order.
"""

from __future__ import annotations

import json
import random
import time

from tests.support.bridge_procs import Proc, env_for, listed, produce, trade_message, wait_for
from tests.support.checks import assert_matches_reference
from tradeagg.devtools.synthetic import SyntheticFeed
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings


def test_produce_bridge_worker_gives_exact_aggregates(
    redis_server, redis_client, kafka_broker, kafka_topic, tmp_path
):
    now = int(time.time() * 1000)
    trades = SyntheticFeed(tokens=40, seed=11).trades(3_000, now - 900_000, 10)  # ~300 s of trades
    messages = [trade_message(t) for t in trades]
    messages += [trade_message(t) for t in random.Random(3).sample(trades, 300)]  # duplicates
    random.Random(4).shuffle(messages)
    messages += [(None, b"{broken"), (None, json.dumps([{"id": "x"}, 1]).encode())]
    produce(kafka_broker.bootstrap, kafka_topic, messages)

    env = env_for(redis_server.url, kafka_broker.bootstrap, kafka_topic)
    bridge = Proc("bridge", env, tmp_path / "bridge.log")
    worker = Proc("worker", env, tmp_path / "worker.log")
    tokens = sorted({t.token for t in trades})
    try:
        wait_for(lambda: listed(redis_client, tokens) == len(trades), timeout=90, what="every trade applied")
        assert bridge.terminate() == 0
        assert worker.terminate() == 0
    finally:
        bridge.kill()
        worker.kill()

    settings = Settings()
    reader = Reader(redis_client, settings)
    at = int(time.time() * 1000)
    assert_matches_reference(reader, trades, at, settings.windows, tokens)
