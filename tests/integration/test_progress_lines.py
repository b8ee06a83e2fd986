"""Long commands report progress on stderr as plain lines when it is a pipe (issue 12).

Each command runs as a subprocess with stdout and stderr on pipes and
TRADEAGG_PROGRESS_EVERY_S=0 (a line per step); the summary on stdout keeps
its format, and ``--json`` stays one JSON object.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys

from tests.integration.test_reclaim import deliver, make_trades, settings
from tests.support.cli import clean_env, cli
from tests.support.fault_procs import Feed
from tradeagg.clock import now_ms
from tradeagg.contract import keys
from tradeagg.devtools.synthetic import to_message
from tradeagg.store import streams


def progress_lines(stderr: str, label: str) -> list[str]:
    assert "\r" not in stderr, stderr[-500:]
    pattern = re.compile(rf"^{label}: \d+(/\d+ \(\d+%\))? [\d,]+/s$")
    return [line for line in stderr.splitlines() if pattern.match(line)]


def env_for(url: str, **extra: str) -> dict[str, str]:
    return clean_env(
        REDIS_URL=url,
        TRADEAGG_SHARDS="2",
        TRADEAGG_WINDOWS="5s,1m",
        TRADEAGG_READ_COUNT="2",
        TRADEAGG_PROGRESS_EVERY_S="0",
        **extra,
    )


def test_reclaim_shows_progress_lines_and_keeps_its_summary(redis_server, redis_client):
    s = settings()
    streams.append(redis_client, s, make_trades(30, now_ms()))
    held = deliver(redis_client, s, "dead-1")
    done = cli(env_for(redis_server.url), "reclaim", "--min-idle-ms", "0", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = progress_lines(done.stderr, "reclaim")
    assert len(lines) >= 2, done.stderr[-2000:]
    assert lines[-1].startswith(f"reclaim: {held} ")  # counts entries claimed, no total
    summary = json.loads(done.stdout)  # one JSON object, nothing else on stdout
    assert summary["claimed"] == held and summary["left_pending"] == 0


def test_dead_replay_shows_progress_lines_and_keeps_its_summary(redis_server, redis_client):
    s = settings()
    trades = Feed(seed=3, longest_ms=s.longest_ms).batch(6)
    for t in trades:
        redis_client.xadd(
            keys.dead(0), {"reason": "x", "source": "bridge", "raw": json.dumps(to_message(t))}
        )
    env = env_for(redis_server.url)
    done = cli(env, "dead", "replay")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = progress_lines(done.stderr, "replay")
    assert len(lines) >= 2 and lines[-1].startswith("replay: 6/6 (100%) "), done.stderr
    assert done.stdout.splitlines()[0].startswith("replay: letters=6 ")
    as_json = cli(env, "dead", "replay", "--json")
    assert as_json.returncode == 0, as_json.stderr[-2000:]
    assert json.loads(as_json.stdout)["letters"] == 6
    assert len(progress_lines(as_json.stderr, "replay")) >= 2


def test_bench_engine_shows_progress_lines_and_keeps_its_figures():
    env = clean_env(TRADEAGG_PROGRESS_EVERY_S="0")
    args = ("bench", "--trades", "6000", "--tokens", "50", "--verify", "5", "--json")
    done = cli(env, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = progress_lines(done.stderr, "bench")
    assert lines and all("/6000 (" in line for line in lines), done.stderr[-2000:]
    figures = json.loads(done.stdout)
    assert figures["mode"] == "engine" and figures["trades"] == 6000


def test_bench_e2e_shows_progress_lines_and_keeps_its_figures():
    env = clean_env(TRADEAGG_PROGRESS_EVERY_S="0")
    done = cli(env, "bench", "--mode", "e2e", "--trades", "3000", "--tokens", "30", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = progress_lines(done.stderr, "bench")
    assert len(lines) >= 2 and all("/3000 (" in line for line in lines), done.stderr[-2000:]
    figures = json.loads(done.stdout)
    assert figures["mode"] == "throughput" and figures["trades"] == 3000


def test_dead_replay_draws_a_bar_when_stderr_is_a_terminal(redis_server, redis_client):
    s = settings()
    for t in Feed(seed=4, longest_ms=s.longest_ms).batch(5):
        redis_client.xadd(
            keys.dead(1), {"reason": "x", "source": "bridge", "raw": json.dumps(to_message(t))}
        )
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tradeagg", "dead", "replay", "--json"],
            env=env_for(redis_server.url),
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=60,
        )
        os.close(follower)
        follower = -1
        drawn = b""
        while select.select([leader], [], [], 0.5)[0]:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert done.returncode == 0
    assert json.loads(done.stdout)["letters"] == 5
    text = drawn.decode(errors="replace")
    assert "5/5" in text and "100%" in text and "replay: 5/5" not in text, text


def test_paced_produce_shows_progress_lines_and_keeps_its_summary(kafka_broker, kafka_topic):
    env = clean_env(
        KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap,
        TRADEAGG_KAFKA_TOPIC=kafka_topic,
        TRADEAGG_PROGRESS_EVERY_S="0",
    )
    done = cli(env, "produce", "--json", "--synthetic", "60", "--rate", "200")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = progress_lines(done.stderr, "produce")
    assert len(lines) >= 2 and all("/60 (" in line for line in lines), done.stderr[-2000:]
    doc = json.loads(done.stdout)
    assert (doc["command"], doc["trades"], doc["failed"]) == ("produce", 60, 0)
