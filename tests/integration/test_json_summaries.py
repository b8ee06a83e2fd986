"""``--json`` on append, reclaim, health and produce: one object, one format for all."""

from __future__ import annotations

import json

from tests.support.cli import clean_env, cli


def summary(done) -> dict:
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout + done.stderr
    doc = json.loads(lines[0])
    assert isinstance(doc["command"], str) and isinstance(doc["ok"], bool)
    return doc


def test_append_reclaim_and_health_summaries(redis_server, redis_client) -> None:
    env = clean_env(REDIS_URL=redis_server.url, TRADEAGG_SHARDS="2")
    done = cli(env, "append", "--json", "-", stdin='{"id": "x"}\n')
    assert done.returncode == 1 and "line 1" in done.stderr
    assert summary(done) == {
        "command": "append",
        "ok": False,
        "appended": 0,
        "invalid": 1,
        "invalid_lines": 1,
    }
    done = cli(env, "append", "--synthetic", "50", "--tokens", "5", "--json")
    assert done.returncode == 0, done.stderr
    assert summary(done) == {
        "command": "append",
        "ok": True,
        "appended": 50,
        "invalid": 0,
        "invalid_lines": 0,
    }
    done = cli(env, "reclaim", "--json", "--min-idle-ms", "0")
    assert done.returncode == 0, done.stderr
    doc = summary(done)
    assert doc["command"] == "reclaim" and doc["ok"] and doc["claimed"] == 0
    assert doc["left_pending"] == 0
    done = cli(env, "health", "--json", "--max-lag", "1000000")
    assert done.returncode == 1  # no worker or bridge alive
    doc = summary(done)
    assert doc["command"] == "health" and doc["ok"] is False and doc["processes"] == []
    by_check = {c["check"]: c for c in doc["checks"]}
    assert by_check["worker_alive"] == {"check": "worker_alive", "ok": False, "alive": 0}
    assert by_check["backlog"]["ok"] and by_check["backlog"]["total"] > 0


def test_produce_summary(kafka_broker, kafka_topic, tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('[{"id": "a"}, {"id": "b"}]\n{"id": "c"}\n')
    env = clean_env(
        KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap, TRADEAGG_KAFKA_TOPIC=kafka_topic
    )
    done = cli(env, "produce", "--json", str(path))
    assert done.returncode == 0, done.stderr
    doc = summary(done)
    assert doc["command"] == "produce" and doc["ok"] and doc["topic"] == kafka_topic
    assert (doc["messages"], doc["trades"], doc["failed"]) == (2, 3, 0)


def test_paced_produce_summary(kafka_broker, kafka_topic) -> None:
    env = clean_env(
        KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap, TRADEAGG_KAFKA_TOPIC=kafka_topic
    )
    done = cli(env, "produce", "--json", "--synthetic", "40", "--rate", "200")
    assert done.returncode == 0, done.stderr
    doc = summary(done)
    assert (doc["messages"], doc["trades"], doc["failed"]) == (40, 40, 0)
