"""Real trades through Kafka and ``tradeagg bridge``: metric lines, backlog warning, health.

No worker runs, so the shard streams fill: the bridge's probes must warn about
the backlog, ``tradeagg health`` must fail, and both must recover once the
entries are consumed (here by the test acting as a worker).
"""

from __future__ import annotations

import json
import time

from tests.observe_procs import Proc, env_for, tradeagg, wait
from tests.statsd_listener import StatsdListener
from tradeagg import keys

TOKENS = ["So11111111111111111111111111111111111111112", "0x" + "ab" * 20]
VALID = 300


def trade(i: int, now: int) -> dict:
    return {
        "id": f"tx{i}:0",
        "token": TOKENS[i % 2],
        "side": "buy" if i % 3 else "sell",
        "amount": "2.5",
        "quote": "0.125",
        "price": "0.05",
        "ts": now - 10_000 + i,
        "trader": TOKENS[0],
    }


def test_bridge_metrics_backlog_warning_and_health(
    redis_server, redis_client, kafka_broker, kafka_topic, tmp_path
):
    now = int(time.time() * 1000)
    lines = [json.dumps(trade(i, now)) for i in range(VALID)]
    lines += ["not json", "{broken", json.dumps({**trade(9999, now), "side": "hold"})]
    feed = tmp_path / "trades.jsonl"
    feed.write_text("\n".join(lines) + "\n")
    listener = StatsdListener()
    env = env_for(
        redis_server.url,
        listener.port,
        KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap,
        TRADEAGG_KAFKA_TOPIC=kafka_topic,
        TRADEAGG_KAFKA_GROUP=kafka_topic,
        TRADEAGG_ENTRY_TRADES="10",
        TRADEAGG_WARN_BACKLOG="5",
    )
    bridge = Proc(["-m", "tradeagg", "bridge"], env, tmp_path / "bridge.log")
    try:
        sent = tradeagg(env, "produce", str(feed))
        assert sent.returncode == 0, sent.stderr
        listener.wait_for(lambda: listener.counter("ta.trades.valid") == VALID, timeout=60)
        listener.wait_for(lambda: listener.counter("ta.messages.invalid") == 2)
        listener.wait_for(lambda: listener.counter("ta.trades.invalid") == 1)
        assert listener.counter("ta.trades.received") == VALID + 1
        assert listener.counter("ta.deadletters") == 3
        entries = sum(redis_client.xlen(keys.stream(s)) for s in range(2))
        assert entries >= VALID // 10
        listener.wait_for(lambda: listener.counter("ta.entries.written") == entries)

        def backlog_gauges() -> float:
            last = {}
            for s in listener.stats():
                if s.name.startswith("ta.stream.backlog.s") and s.type == "g":
                    last[s.name] = s.value
            return sum(last.values())

        listener.wait_for(lambda: backlog_gauges() == entries)
        bridge.wait_log("warning=backlog")
        assert listener.counter("ta.warnings.backlog") >= 1
        sick = tradeagg(env, "health", "--expect", "bridge")
        assert sick.returncode == 1 and "FAIL backlog" in sick.stdout, sick.stdout
        assert tradeagg(env, "health", "--expect", "worker").returncode == 1

        for s in range(2):  # act as the worker: read and acknowledge everything
            stream = keys.stream(s)
            redis_client.xgroup_create(stream, keys.STREAM_GROUP, id="0", mkstream=True)
            got = redis_client.xreadgroup(keys.STREAM_GROUP, "t", {stream: ">"})
            if got:
                redis_client.xack(stream, keys.STREAM_GROUP, *[i for i, _ in got[0][1]])
        bridge.wait_log("warning cleared warning=backlog")
        listener.wait_for(lambda: backlog_gauges() == 0)
        healthy = tradeagg(env, "health", "--expect", "bridge")
        assert healthy.returncode == 0, healthy.stdout
        stats = json.loads(tradeagg(env, "stats", "--json").stdout)
        assert stats["totals"]["deadletters"] == 3 and stats["totals"]["backlog"] == 0
        bridge_beat = stats["processes"][0]
        assert bridge_beat["kind"] == "bridge" and bridge_beat["totals"]["trades.valid"] == VALID
        assert bridge.stop() == 0
    finally:
        if bridge.proc.poll() is None:
            bridge.proc.kill()
        listener.close()
    wait(lambda: bridge.proc.poll() is not None, 10, "the bridge to exit")
