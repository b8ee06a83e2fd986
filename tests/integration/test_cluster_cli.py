"""The CLI on a Redis Cluster: the right URL works, a node URL as one Redis says how to fix it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tradeagg.clock import now_ms
from tradeagg.engine.apply import Engine
from tradeagg.settings import Settings
from tradeagg.store.connection import connect

TOKENS = [f"0x{i:040x}" for i in range(1, 9)]  # spread over the three nodes


def run(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEAGG_", "REDIS_"))}
    env["REDIS_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "tradeagg", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_show_on_a_cluster_and_a_node_url_mistake(redis_cluster, cluster_client) -> None:
    s = Settings(redis_url=redis_cluster.url, redis_cluster=True)
    now = now_ms()
    Engine(connect(s), s).apply_records(
        [f"{t} {now - 1000} 0 b 1000000000 2 id{i}" for i, t in enumerate(TOKENS)], now=now
    )
    ok = run(redis_cluster.url, "show", "--json", *TOKENS)
    assert ok.returncode == 0, ok.stderr
    assert [json.loads(line)["windows"]["1m"]["buys"] for line in ok.stdout.splitlines()] == [1] * 8
    node = f"redis://127.0.0.1:{redis_cluster.ports[0]}/0"
    for args in (("show", *TOKENS), ("stats",)):
        wrong = run(node, *args)
        assert wrong.returncode == 2, (args, wrong.stdout, wrong.stderr)
        assert "redis+cluster://" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
