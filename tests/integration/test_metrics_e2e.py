"""Real trades through Kafka, ``tradeagg bridge`` and ``tradeagg worker``: metrics, warning, health.

At first no worker runs, so the shard streams fill: the bridge's probes must
warn about the backlog and ``tradeagg health`` must fail. Then a real worker
process consumes the entries: its counters reach StatsD (every valid trade
applied, every entry acknowledged), the warning clears, health passes with
both processes alive, and fails again once the worker is stopped (a clean
stop deletes its heartbeat).
"""

from __future__ import annotations

import json
import time

from tests.support.observe_procs import Proc, env_for, tradeagg, wait
from tests.support.statsd_listener import StatsdListener
from tradeagg.contract import keys
from tradeagg.observe import probes

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
    worker: Proc | None = None

    def beats() -> set[str]:
        return {b["kind"] for b in probes.heartbeats(redis_client)}

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

        worker = Proc(["-m", "tradeagg", "worker"], env, tmp_path / "worker.log")
        listener.wait_for(lambda: listener.counter("ta.trades.applied") == VALID, timeout=60)
        listener.wait_for(lambda: listener.counter("ta.entries.acked") == entries)
        assert listener.counter("ta.trades.duplicate") == 0
        assert listener.counter("ta.trades.late") == 0
        assert [s.value for s in listener.named("ta.batch.latency")], "no worker timer"
        bridge.wait_log('msg="warning cleared" warning=backlog')
        listener.wait_for(lambda: backlog_gauges() == 0)
        wait(lambda: beats() == {"bridge", "worker"}, 20, "both heartbeats")
        healthy = tradeagg(env, "health", "--expect", "worker,bridge")
        assert healthy.returncode == 0, healthy.stdout
        assert "ok worker " in healthy.stdout and "ok bridge " in healthy.stdout, healthy.stdout
        stats = json.loads(tradeagg(env, "stats", "--json").stdout)
        assert stats["totals"]["deadletters"] == 3 and stats["totals"]["backlog"] == 0
        by_kind = {p["kind"]: p for p in stats["processes"]}
        assert by_kind["bridge"]["totals"]["trades.valid"] == VALID
        assert by_kind["worker"]["totals"]["trades.applied"] == VALID
        assert worker.stop() == 0
        assert "worker stopped" in worker.text()
        assert beats() == {"bridge"}  # deleted on the clean stop, not left to expire
        down = tradeagg(env, "health", "--expect", "worker,bridge")
        assert down.returncode == 1 and "FAIL worker no live heartbeat" in down.stdout, down.stdout
        assert bridge.stop() == 0
    finally:
        for p in (bridge, worker):
            if p is not None and p.proc.poll() is None:
                p.proc.kill()
        listener.close()
    wait(lambda: bridge.proc.poll() is not None, 10, "the bridge to exit")
