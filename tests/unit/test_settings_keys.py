"""Settings from the environment, window labels, key names, shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tradeagg.cli import COMMANDS
from tradeagg.contract import keys
from tradeagg.errors import ConfigError
from tradeagg.settings import Settings, parse_windows


def test_defaults_match_the_contract() -> None:
    s = Settings.from_env({})
    assert [w.label for w in s.windows] == ["1m", "5m", "15m", "30m", "1h"]
    assert [w.ms for w in s.windows] == [60_000, 300_000, 900_000, 1_800_000, 3_600_000]
    assert (s.redis_url, s.kafka_bootstrap_servers) == (
        "redis://127.0.0.1:6379/0",
        "127.0.0.1:9092",
    )
    assert (s.kafka_topic, s.maintenance_interval, s.stale_after, s.max_skew_ms) == (
        "trades",
        60.0,
        10.0,
        5000,
    )
    assert s.clock == "wall" and not s.redis_cluster


def test_windows_are_sorted_and_checked() -> None:
    assert [w.label for w in parse_windows("4h, 30s,5m")] == ["30s", "5m", "4h"]
    with pytest.raises(ValueError, match="repeats"):
        parse_windows("60s,1m")
    with pytest.raises(ValueError):
        parse_windows("5x")
    with pytest.raises(ValueError):
        parse_windows("")


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env(
            {
                "TRADEAGG_WINDOWS": "1x",
                "TRADEAGG_SHARDS": "0",
                "REDIS_URL": "http://x",
                "TRADEAGG_CLOCK": "moon",
            }
        )
    text = str(err.value)
    for name in ("TRADEAGG_WINDOWS", "TRADEAGG_SHARDS", "REDIS_URL", "TRADEAGG_CLOCK"):
        assert name in text
    assert "\n" not in text


def test_cluster_url_and_heroku_names() -> None:
    s = Settings.from_env(
        {"REDIS_URL": "redis+cluster://10.0.0.1:7000", "KAFKA_PREFIX": "p-", "DYNO": "worker.3"}
    )
    assert s.redis_cluster and s.topic == "p-trades" and s.group == "p-tradeagg"
    assert s.consumer_name == "worker.3"
    assert "***" in str(Settings.from_env({"REDIS_URL": "redis://u:secret@h:1/0"}).describe())


def test_token_keys_share_one_hash_tag() -> None:
    k = keys.TokenKeys("So11111111111111111111111111111111111111112")
    assert k.all() == [
        "token:{So11111111111111111111111111111111111111112}:trades",
        "token:{So11111111111111111111111111111111111111112}:indices",
        "token:{So11111111111111111111111111111111111111112}:aggregates",
        "token:{So11111111111111111111111111111111111111112}:last_update",
    ]
    assert keys.stream(3) == "tradeagg:{s3}:stream" and keys.active(3) == "tradeagg:{s3}:active"


# Frozen: a token's shard is part of the data layout (which stream its trades
# are in), so it may never change between versions, processes or machines.
FROZEN_SHARDS = {
    "So11111111111111111111111111111111111111112": {4: 0, 8: 4, 16: 12},
    "0x" + "ab" * 20: {4: 2, 8: 6, 16: 14},
    "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v": {4: 3, 8: 3, 16: 3},
    f"0x{1:040x}": {4: 1, 8: 5, 16: 5},
}


def test_shards_are_frozen() -> None:
    got = {t: {n: keys.shard_of(t, n) for n in want} for t, want in FROZEN_SHARDS.items()}
    assert got == FROZEN_SHARDS


@pytest.mark.parametrize("seed", ["0", "1", "4242", "random"])
def test_shards_do_not_depend_on_the_hash_seed(seed: str) -> None:
    """Another process with another str-hash seed puts every token on the same shard."""
    code = (
        "import json, sys; from tradeagg.contract import keys; "
        "tokens = json.loads(sys.argv[1]); "
        "print(json.dumps({t: {n: keys.shard_of(t, int(n)) for n in ns} for t, ns in tokens.items()}))"
    )
    arg = json.dumps({t: list(map(str, want)) for t, want in FROZEN_SHARDS.items()})
    out = subprocess.run(
        [sys.executable, "-c", code, arg],
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    got = {t: {int(n): v for n, v in ns.items()} for t, ns in json.loads(out.stdout).items()}
    assert got == FROZEN_SHARDS


def test_shards_are_spread() -> None:
    tokens = [f"0x{i:040x}" for i in range(4000)]
    shards = [keys.shard_of(t, 8) for t in tokens]
    counts = [shards.count(i) for i in range(8)]
    assert min(counts) > 400 and max(counts) < 600


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tradeagg", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_cli_exit_codes() -> None:
    assert run_cli("--version").stdout.startswith("tradeagg ")
    bad_usage = run_cli("show")
    assert bad_usage.returncode == 2 and len(bad_usage.stderr.strip().splitlines()) == 1
    bad_config = run_cli(
        "show",
        "So11111111111111111111111111111111111111112",
        env={"TRADEAGG_WINDOWS": "1x", "PATH": "/usr/bin:/bin"},
    )
    assert bad_config.returncode == 2 and "TRADEAGG_WINDOWS" in bad_config.stderr
    injected = run_cli("show", "abc}:x")
    assert injected.returncode == 2 and "not a token address" in injected.stderr
    for command in COMMANDS:
        out = run_cli(command, "--help")
        assert out.returncode == 0 and "usage: tradeagg " + command in out.stdout


def test_long_window_settings_are_checked_in_one_line_naming_the_variable():
    s = Settings.from_env({"TRADEAGG_WINDOWS": "1m,5m,1h,6h,24h"})
    assert [w.label for w in s.long_windows] == ["6h", "24h"]
    assert [w.label for w in s.exact_windows] == ["1m", "5m", "1h"]
    minute = 60_000
    at = 16_666_666 * minute  # a bucket's end: the window starts at at - w, then one ms later
    assert s.window_start(at, 6 * 3_600_000) == at - 6 * 3_600_000
    assert s.window_start(at + 1, 6 * 3_600_000) == at - 6 * 3_600_000 + minute
    assert s.window_start(at + 1, 3_600_000) == at + 1 - 3_600_000  # exact
    assert Settings.from_env({"TRADEAGG_WINDOWS": "30s,1h"}).long_windows == ()  # none: no check
    bad = {
        ("30s,24h", "1h", "1m"): "TRADEAGG_BUCKET is longer than the shortest window '30s'",
        ("1m,90s,24h", "1h", "1m"): "does not divide window '90s'",
        ("5m,6h", "1h", "7m"): "TRADEAGG_EXACT_HORIZON (3600000 ms) is not a multiple",
        ("6h,24h", "1h", "1m"): "at least one window must be exact",
        ("1m,6h", "soon", "1m"): "TRADEAGG_EXACT_HORIZON='soon'",
    }
    for (windows, horizon, bucket), needle in bad.items():
        env = {"TRADEAGG_WINDOWS": windows, "TRADEAGG_EXACT_HORIZON": horizon,
               "TRADEAGG_BUCKET": bucket}
        with pytest.raises(ConfigError) as caught:
            Settings.from_env(env)
        assert needle in str(caught.value) and "\n" not in str(caught.value), env
