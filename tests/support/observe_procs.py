"""Helpers for process tests of observability: tradeagg children, env, polling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def env_for(redis_url: str, statsd_port: int | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STATSD_", "TRADEAGG_"))}
    env.update(
        REDIS_URL=redis_url,
        TRADEAGG_SHARDS="2",
        TRADEAGG_HEARTBEAT_INTERVAL="0.2",
        TRADEAGG_METRICS_INTERVAL="0.2",
        LOG_LEVEL="INFO",
        PYTHONPATH=str(ROOT),
    )
    if statsd_port is not None:
        env.update(STATSD_HOST="127.0.0.1", STATSD_PORT=str(statsd_port), STATSD_PREFIX="ta")
    env.update(extra)
    return env


class Proc:
    """A child process whose stderr goes to a file we can poll."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, *args], env=env, cwd=ROOT, stderr=log.open("w"), stdout=subprocess.PIPE
        )

    def text(self) -> str:
        return self.log.read_text()

    def wait_log(self, needle: str, timeout: float = 20.0) -> None:
        wait(lambda: needle in self.text(), timeout, f"{needle!r} in the log:\n{self.text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(30)


def wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def tradeagg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tradeagg", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
