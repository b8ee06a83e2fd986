"""The shipped dashboard against a real metrics pipeline.

Real ``tradeagg bridge`` and ``tradeagg worker`` processes take trades from
the Kafka-protocol broker and send their metrics to Etsy StatsD, configured by
``ops/statsd-config.js`` as shipped (10 s flushes), which feeds carbon-cache
with ``ops/graphite/storage-*.conf``. Then every target of every panel of
``ops/grafana-dashboard.json`` is evaluated by graphite-web's render API with
the dashboard's template variables substituted: each must return at least one
non-null point, and the main series must carry the figures the run produced.

Needs Debian's graphite-carbon and graphite-web, Node.js and the npm package
statsd (``.ci/install-ops.sh``); where they are missing the test is skipped
locally and fails under CI.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.support.bridge_procs import Proc, env_for, produce, wait_for
from tests.support.graphite_stack import GraphiteStack, missing
from tests.support.servers import RedisServer

DASHBOARD = Path(__file__).resolve().parents[2] / "ops" / "grafana-dashboard.json"
PREFIX = "tradeagg"
TOKENS = ["So11111111111111111111111111111111111111112", "0x" + "cd" * 20, "0x" + "ef" * 20]
VALID = 600


def panel_targets() -> list[tuple[str, str]]:
    """``(panel title, target)`` for every target of every panel, variables substituted."""
    board = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v.get("query", "") for v in board["templating"]["list"]}
    out = []

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                if target.get("hide"):
                    continue
                text = target["target"]
                for name, value in variables.items():
                    text = text.replace(f"${{{name}}}", value).replace(f"${name}", value)
                out.append((panel["title"], text))

    walk(board["panels"])
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    lacking = missing()
    if lacking:
        message = "metrics pipeline needs " + ", ".join(lacking) + " (.ci/install-ops.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    s = GraphiteStack(tmp_path_factory.mktemp("graphite"), flush_ms=10_000)
    s.start()
    yield s
    s.stop()


def trade(i: int, now: int, **change) -> bytes:
    body = {
        "id": f"pipe{i}:0",
        "token": TOKENS[i % len(TOKENS)],
        "side": "buy" if i % 3 else "sell",
        "amount": "2.5",
        "quote": "0.125",
        "price": str(0.05 + (i % 7) / 1000),
        "ts": now - 30_000 + i * 10,
        "trader": TOKENS[0],
    }
    body.update(change)
    return json.dumps(body).encode()


def test_every_dashboard_panel_draws_from_a_real_pipeline(stack, kafka_broker, kafka_topic, tmp_path):
    targets = panel_targets()
    assert len(targets) >= 25, "the dashboard lost panels"
    (tmp_path / "redis").mkdir()
    redis_server = RedisServer(tmp_path / "redis", extra=["--maxmemory", "1gb"])
    redis_server.start()
    now = int(time.time() * 1000)
    messages = [(TOKENS[i % len(TOKENS)].encode(), trade(i, now)) for i in range(VALID)]
    messages.append((b"x", trade(1, now)))  # a duplicate id
    messages.append((b"x", trade(VALID, now, ts=now - 3 * 3_600_000)))  # older than every window
    messages.append((b"x", b"not json"))  # an invalid message
    env = env_for(
        redis_server.url,
        kafka_broker.bootstrap,
        kafka_topic,
        STATSD_HOST="127.0.0.1",
        STATSD_PORT=str(stack.statsd_port),
        STATSD_PREFIX=PREFIX,
        TRADEAGG_METRICS_INTERVAL="1",
        TRADEAGG_HEARTBEAT_INTERVAL="1",
        TRADEAGG_MAINTENANCE_INTERVAL="1",
        TRADEAGG_ENTRY_TRADES="20",
    )
    bridge = Proc("bridge", env, tmp_path / "bridge.log")
    worker = Proc("worker", env, tmp_path / "worker.log")
    client = redis_server.client()
    try:
        produce(kafka_broker.bootstrap, kafka_topic, messages)

        # the pipeline's own figures: what the processes did must reach Graphite
        def counted(name: str) -> float:
            series = stack.render(f"stats.counters.{PREFIX}.{name}.count")
            return sum(v for s in series for v, _ in s["datapoints"] if v)

        def most(name: str) -> float:
            series = stack.render(f"stats.gauges.{PREFIX}.{name}")
            return max((v for s in series for v, _ in s["datapoints"] if v is not None), default=0)

        expected = {
            "trades.valid": lambda: counted("trades.valid") >= VALID + 1,  # + the duplicate
            "trades.applied": lambda: counted("trades.applied") == VALID,
            "trades.late": lambda: counted("trades.late") >= 1,
            "trades.duplicate": lambda: counted("trades.duplicate") >= 1,
            "messages.invalid": lambda: counted("messages.invalid") >= 1,
            "tokens.active": lambda: most("tokens.active") == len(TOKENS),
        }
        unmet: list[str] = []

        def figures_arrived() -> bool:
            unmet[:] = [name for name, check in expected.items() if not check()]
            return not unmet

        try:
            wait_for(figures_arrived, timeout=120, what="the run's figures in Graphite")
        except AssertionError:
            raise AssertionError(f"figures not in Graphite: {unmet}") from None
        shards = stack.find(f"stats.gauges.{PREFIX}.stream.backlog.*")
        assert len(shards) == 4, shards  # TRADEAGG_SHARDS=4 in env_for

        empty: list[tuple[str, str]] = []

        def all_drawn() -> bool:
            empty.clear()
            empty.extend((t, q) for t, q in targets if not stack.points(stack.render(q)))
            return not empty

        try:
            wait_for(all_drawn, timeout=60, what="every panel target to return a point")
        except AssertionError:
            raise AssertionError(f"panel targets with no data: {empty}") from None
    finally:
        bridge.kill()
        worker.kill()
        client.close()
        redis_server.stop()
