"""Redis over TLS (``rediss://``) as Heroku Redis serves it: a self-signed certificate.

With the config vars ``app.json`` sets, a worker, ``append`` and ``show`` run
over TLS and give exactly the brute-force result; with verification on (the
default) every command stops with one line naming the setting; ``rediss://``
at a plaintext port says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.integration.test_worker import assert_exact, feed, show_json
from tests.support.bridge_procs import Proc, running, wait_for
from tests.support.cli import assert_one_line_failure, cli
from tests.support.tls_server import TLSRedis
from tradeagg.contract import keys
from tradeagg.devtools.bench import backlog
from tradeagg.devtools.synthetic import to_message
from tradeagg.engine.apply import now_ms
from tradeagg.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory):
    server = TLSRedis(tmp_path_factory.mktemp("tls-redis"))
    server.start()
    yield server
    server.stop()


def app_json_env(url: str, **extra: str) -> dict[str, str]:
    """This environment without tradeagg/Redis variables, plus app.json's values and ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEAGG_", "REDIS_"))}
    declared = json.loads((ROOT / "app.json").read_text())["env"]
    env.update({k: v["value"] for k, v in declared.items() if "value" in v})
    env.update({"REDIS_URL": url, "TRADEAGG_BLOCK_MS": "200", **extra})
    return env


def test_worker_append_and_show_over_tls_with_app_json_settings(tls_redis, tmp_path) -> None:
    env = app_json_env(tls_redis.url)
    assert env["TRADEAGG_REDIS_TLS_VERIFY"] == "none"
    s = Settings.from_env(env)
    client = tls_redis.client()
    client.flushall()
    trades = feed(2_000, seed=21)
    lines = "\n".join(json.dumps(to_message(t)) for t in trades) + "\n"
    appended = cli(env, "append", "-", stdin=lines)
    assert appended.returncode == 0, appended.stderr
    assert appended.stdout.strip() == f"appended={len(trades)} invalid=0 invalid_lines=0"
    with running(Proc("worker", env, tmp_path / "worker.log")):

        def drained() -> bool:
            ready = all(client.exists(keys.stream(i)) for i in range(s.shards))
            return (
                ready
                and bool(client.xinfo_groups(keys.stream(0)))
                and not backlog(client, s.shards)
            )

        wait_for(drained, 60, "worker to drain over TLS")
        names = [c["name"] for c in client.client_list() if c["name"].startswith("tradeagg-")]
        assert 0 < len(names) <= s.redis_max_connections, names
        at = now_ms() + 5_000
        tokens = sorted({t.token for t in trades})
        assert_exact(show_json(env, tokens, at), trades, at, s)


def test_a_trusted_ca_verifies(tls_redis) -> None:
    env = app_json_env(
        tls_redis.url,
        TRADEAGG_REDIS_TLS_VERIFY="required",
        TRADEAGG_REDIS_CA_CERT=str(tls_redis.cert),
    )
    done = cli(env, "show", "--json", "So11111111111111111111111111111111111111112")
    assert done.returncode == 0, done.stderr
    pem = tls_redis.cert.read_text()
    done = cli({**env, "TRADEAGG_REDIS_CA_CERT": pem}, "stats", "--json")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("command", [("show", "So11111111111111111111111111111111111111112"),
                                     ("append", "--synthetic", "10"), ("worker",)])  # fmt: skip
def test_verification_on_by_default_fails_in_one_line(tls_redis, command) -> None:
    env = app_json_env(tls_redis.url)
    del env["TRADEAGG_REDIS_TLS_VERIFY"]
    done = cli(env, *command)
    assert_one_line_failure(done, "TRADEAGG_REDIS_TLS_VERIFY", "self-signed")
    assert done.stdout == ""


def test_rediss_at_a_plaintext_port_says_so(redis_server) -> None:
    url = f"rediss://127.0.0.1:{redis_server.port}/0"
    done = cli(app_json_env(url), "show", "So11111111111111111111111111111111111111112")
    assert_one_line_failure(done, "TLS handshake failed: is this a TLS port?")
