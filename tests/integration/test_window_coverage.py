"""A reader asking for windows longer than the workers keep says so (and --strict refuses)."""

from __future__ import annotations

from tests.support.cli import assert_one_line_failure, cli
from tests.support.observe_procs import Proc, env_for, wait
from tradeagg.contract import keys

TOKEN = "So11111111111111111111111111111111111111112"


def test_windows_longer_than_the_workers_keep(redis_server, redis_client, tmp_path) -> None:
    worker_env = env_for(redis_server.url, TRADEAGG_WINDOWS="1m,1h")
    p = Proc(["-m", "tests.support.observed_process", "worker", "w1"], worker_env, tmp_path / "w")
    try:
        wait(lambda: redis_client.exists(keys.heartbeat("worker", "w1")), 20, "a heartbeat")
        reader = env_for(redis_server.url, TRADEAGG_WINDOWS="1m,1h,1d")
        for args in (("show", TOKEN), ("top", "--window", "1m")):
            done = cli(reader, *args)
            assert done.returncode == 0, done.stderr
            warning = done.stderr.strip().splitlines()
            assert len(warning) == 1 and "warning" in warning[0], done.stderr
            assert "asks for 1d" in warning[0] and "keep at most 1h" in warning[0]
            strict = cli(reader, *args, "--strict")
            assert_one_line_failure(strict, "asks for 1d", code=2)
            assert strict.stdout == ""
        fine = cli(
            env_for(redis_server.url, TRADEAGG_WINDOWS="1m,5m,1h"), "show", "--strict", TOKEN
        )
        assert fine.returncode == 0 and fine.stderr == "", fine.stderr
    finally:
        assert p.stop() == 0
