"""Real processes: metric lines over UDP, warnings in the log, ``tradeagg health`` and ``stats``.

The observed process is ``tests/support/observed_process.py`` (Service + observe.start
+ a counting feed), started with ``python -m`` like the real commands.
"""

from __future__ import annotations

import json
import signal

import pytest

from tests.support.observe_procs import Proc, env_for, tradeagg, wait
from tests.support.statsd_listener import StatsdListener
from tradeagg.contract import keys


@pytest.fixture
def listener():
    lst = StatsdListener()
    yield lst
    lst.close()


@pytest.fixture
def procs(tmp_path):
    started: list[Proc] = []

    def start(*args: str, env: dict[str, str]) -> Proc:
        p = Proc(list(args), env, tmp_path / f"proc{len(started)}.log")
        started.append(p)
        return p

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait(10)


def observed(procs, env, kind="worker", name="w1", *more: str) -> Proc:
    return procs("-m", "tests.support.observed_process", kind, name, *more, env=env)


def test_a_process_sends_its_figures_to_statsd(redis_server, redis_client, listener, procs):
    env = env_for(redis_server.url, listener.port, TRADEAGG_PROCESS_NAME="worker.1")
    p = observed(procs, env, "worker", "w1", "--feed", "5000")
    listener.wait_for(lambda: listener.counter("ta.trades.received") == 5000)

    def timed() -> float:  # a flush's timers follow its counters, in later packets
        return round(sum(1 / s.rate for s in listener.named("ta.apply.latency")))

    listener.wait_for(lambda: timed() >= 5000)
    timers = listener.named("ta.apply.latency")
    assert {s.type for s in timers} == {"ms"}
    assert timed() == 5000  # sampled, rate restores the count
    assert all(0 <= s.value <= 9 for s in timers)
    listener.wait_for(lambda: listener.named("ta.loop.block_ms.worker_1"))
    gauges = {s.name: s for s in listener.stats() if s.type == "g"}
    for name in (
        "ta.stream.backlog.s0",
        "ta.stream.backlog.s1",
        "ta.stream.pending.s1",
        "ta.stream.pending_age_ms.s0",
        "ta.tokens.active",
        "ta.deadletters.stored",
        "ta.redis.memory.used",
        "ta.loop.block_ms.worker_1",
    ):
        assert name in gauges, name
    assert gauges["ta.stream.backlog.s0"].value == 0 and gauges["ta.redis.memory.used"].value > 0
    # one packet per flush, not one per trade
    assert len(listener.packets) < 200
    assert p.stop() == 0
    assert redis_client.exists(keys.heartbeat("worker", "w1")) == 0  # a clean stop forgets it


def test_the_last_figures_are_flushed_on_stop(redis_server, listener, procs):
    env = env_for(redis_server.url, listener.port, TRADEAGG_METRICS_INTERVAL="3600")
    p = observed(procs, env, "bridge", "b1", "--feed", "777")
    p.wait_log('msg="fed" count=777')
    assert listener.counter("ta.trades.received") == 0  # the interval has not elapsed
    assert p.stop() == 0
    listener.wait_for(lambda: listener.counter("ta.trades.received") == 777)


def test_backlog_warning_fires_with_no_worker_and_clears(
    redis_server, redis_client, listener, procs
):
    env = env_for(redis_server.url, listener.port, TRADEAGG_WARN_BACKLOG="3")
    p = observed(procs, env, "bridge", "b1")
    p.wait_log("observing")
    stream = keys.stream(1)
    for i in range(5):
        redis_client.xadd(stream, {"v": "1", "t": f"r{i}"})
    p.wait_log("warning=backlog")
    line = next(ln for ln in p.text().splitlines() if "warning=backlog" in ln)
    assert "level=WARNING" in line and "shards=s1:5" in line and "threshold=3" in line
    listener.wait_for(lambda: listener.counter("ta.warnings.backlog") >= 1)
    # a worker catches up: read and acknowledge everything
    redis_client.xgroup_create(stream, keys.STREAM_GROUP, id="0")
    got = redis_client.xreadgroup(keys.STREAM_GROUP, "c", {stream: ">"})
    redis_client.xack(stream, keys.STREAM_GROUP, *[i for i, _ in got[0][1]])
    p.wait_log('msg="warning cleared" warning=backlog')
    text = p.text()
    assert text.count("warning=backlog") == 2  # one on (rate-limited), one cleared
    assert p.stop() == 0


def test_a_blocked_event_loop_warns(redis_server, listener, procs):
    env = env_for(
        redis_server.url, listener.port, TRADEAGG_WARN_LOOP_BLOCK_MS="200", DYNO="worker.7"
    )
    p = observed(procs, env, "worker", "w1", "--block-ms", "600")
    p.wait_log("warning=loop_block")
    line = next(ln for ln in p.text().splitlines() if "warning=loop_block" in ln)
    worst = int(line.split("worst_ms=")[1].split()[0])
    assert worst >= 500
    p.wait_log('msg="warning cleared" warning=loop_block')
    listener.wait_for(lambda: any(s.value >= 500 for s in listener.named("ta.loop.block_ms.worker_7")))
    assert p.stop() == 0


def test_health_follows_the_worker_heartbeat(redis_server, redis_client, procs):
    env = env_for(redis_server.url)
    down = tradeagg(env, "health", "--expect", "worker")
    assert down.returncode == 1, down.stdout + down.stderr
    assert "FAIL worker no live heartbeat" in down.stdout
    assert down.stdout.strip().endswith("unhealthy")
    p = observed(procs, env, "worker", "w1")
    wait(lambda: redis_client.exists(keys.heartbeat("worker", "w1")), 20, "a heartbeat")
    up = tradeagg(env, "health", "--expect", "worker")
    assert up.returncode == 0, up.stdout + up.stderr
    assert up.stdout.splitlines()[0].startswith("ok worker w1 pid=")
    both = tradeagg(env, "health")  # the bridge is expected by default and missing
    assert both.returncode == 1 and "FAIL bridge no live heartbeat" in both.stdout
    assert p.stop() == 0
    again = tradeagg(env, "health", "--expect", "worker")
    assert again.returncode == 1


def test_health_fails_when_a_worker_dies_without_cleaning_up(redis_server, redis_client, procs):
    env = env_for(redis_server.url)
    p = observed(procs, env, "worker", "w9")
    wait(lambda: redis_client.exists(keys.heartbeat("worker", "w9")), 20, "a heartbeat")
    assert tradeagg(env, "health", "--expect", "worker").returncode == 0
    p.stop(signal.SIGKILL)
    wait(
        lambda: tradeagg(env, "health", "--expect", "worker").returncode == 1,
        20,
        "health to notice the dead worker",
    )


def test_health_checks_lag(redis_server, redis_client):
    env = env_for(redis_server.url)
    for i in range(4):
        redis_client.xadd(keys.stream(0), {"v": "1", "t": f"r{i}"})
    ok = tradeagg(env, "health", "--expect", "", "--max-lag", "4")
    assert ok.returncode == 0, ok.stdout
    bad = tradeagg(env, "health", "--expect", "", "--max-lag", "3")
    assert bad.returncode == 1
    assert "FAIL backlog max_shard=s0 entries=4 limit=3" in bad.stdout
    usage = tradeagg(env, "health", "--expect", "nope")
    assert usage.returncode == 2 and "nope" in usage.stderr


def test_stats_reports_processes_throughput_and_shards(redis_server, redis_client, procs):
    env = env_for(redis_server.url)
    redis_client.zadd(keys.active(1), {"A": 1})
    redis_client.xadd(keys.dead(0), {"reason": "bad"})
    p = observed(procs, env, "bridge", "b1", "--forever")
    wait(
        lambda: (
            json.loads(tradeagg(env, "stats", "--json").stdout)["throughput"].get(
                "trades.received", 0
            )
            > 0
        ),
        20,
        "a positive trades.received rate",
    )
    figures = json.loads(tradeagg(env, "stats", "--json").stdout)
    assert [(x["kind"], x["name"], x["live"]) for x in figures["processes"]] == [
        ("bridge", "b1", True)
    ]
    assert figures["totals"]["tokens_active"] == 1 and figures["totals"]["deadletters"] == 1
    assert [s["shard"] for s in figures["shards"]] == [0, 1]
    human = tradeagg(env, "stats")
    assert human.returncode == 0
    assert "bridge  b1  live" in human.stdout and "trades.received=" in human.stdout
    assert p.stop() == 0
