"""What an operator sees when a connection fails: one line, the right exit code, no
traceback, no secret. Every case runs the real CLI against real (or absent) servers."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import assert_one_line_failure, clean_env, cli
from tests.support.servers import free_port
from tradeagg.devtools.synthetic import SyntheticFeed, to_message

TOKEN = "So11111111111111111111111111111111111111112"
PASSWORD = "s3cret-Hunter2"


@pytest.mark.parametrize(
    "args", [("show", TOKEN), ("append", "--synthetic", "5"), ("reclaim",), ("stats",)]
)
def test_redis_down_is_one_line(args) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    done = cli(clean_env(REDIS_URL=url), *args)
    assert_one_line_failure(done, f"tradeagg {args[0]}:", "Connection refused", secrets=(PASSWORD,))


def test_unreachable_cluster_is_one_line() -> None:
    url = f"redis+cluster://:{PASSWORD}@127.0.0.1:{free_port()}"
    done = cli(clean_env(REDIS_URL=url), "show", TOKEN)
    assert_one_line_failure(done, "Redis Cluster", "unreachable", secrets=(PASSWORD,))


@pytest.mark.parametrize("args", [("show", TOKEN), ("worker",)])
def test_cluster_url_at_a_single_redis_is_one_line(redis_server, args) -> None:
    url = f"redis+cluster://127.0.0.1:{redis_server.port}"
    done = cli(clean_env(REDIS_URL=url), *args)
    assert_one_line_failure(done, "is not a Redis Cluster")


def test_produce_with_no_broker_fails_fast_in_one_line_without_the_password() -> None:
    env = clean_env(
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
        TRADEAGG_KAFKA_SECURITY_PROTOCOL="sasl_plaintext",
        TRADEAGG_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        TRADEAGG_KAFKA_SASL_USERNAME="svc",
        TRADEAGG_KAFKA_SASL_PASSWORD=PASSWORD,
    )
    done = cli(env, "produce", "--synthetic", "10")
    assert_one_line_failure(done, "tradeagg produce: Kafka at", "unreachable", secrets=(PASSWORD,))
    assert done.stdout == ""


def test_a_bad_passthrough_is_a_config_error_that_hides_its_value() -> None:
    env = clean_env(TRADEAGG_KAFKA_CONFIG='{"sasl.password": "' + PASSWORD)
    done = cli(env, "produce", "--synthetic", "1")
    assert_one_line_failure(done, "TRADEAGG_KAFKA_CONFIG", code=2, secrets=(PASSWORD,))


def test_produce_counts_messages_and_trades_not_lines(kafka_broker, kafka_topic, tmp_path) -> None:
    trades = [to_message(t) for t in SyntheticFeed(tokens=3, seed=5).trades(4, 0, 10.0)]
    lines = [json.dumps(trades[:3]), "", json.dumps(trades[3]), "not json"]
    path = tmp_path / "trades.jsonl"
    path.write_text("\n".join(lines) + "\n")
    env = clean_env(
        KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap, TRADEAGG_KAFKA_TOPIC=kafka_topic
    )
    done = cli(env, "produce", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"produced 3 messages (4 trades) to {kafka_topic} in "), (
        done.stdout
    )
    assert done.stdout.rstrip().endswith("failed 0")


def test_tradeagg_alone_prints_help() -> None:
    done = cli(clean_env())
    assert done.returncode == 0 and done.stdout.startswith("usage: tradeagg"), done.stderr
    assert "produce" in done.stdout and done.stderr == ""
