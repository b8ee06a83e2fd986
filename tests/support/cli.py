"""Running ``python -m tradeagg`` as an operator would, and what its failures must look like."""

from __future__ import annotations

import os
import subprocess
import sys


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without tradeagg, Redis or Kafka variables, plus ``extra``."""
    prefixes = ("TRADEAGG_", "REDIS_", "KAFKA_", "STATSD_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tradeagg", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
    )


def assert_one_line_failure(
    done: subprocess.CompletedProcess, *needles: str, code: int = 1, secrets: tuple[str, ...] = ()
) -> str:
    """Exit ``code``, exactly one stderr line holding every needle, no traceback, no secret."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, (done.returncode, done.stderr)
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    for secret in secrets:
        assert secret not in done.stderr + done.stdout
    return lines[0]
