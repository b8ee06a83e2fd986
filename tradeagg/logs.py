"""Logging: one line per event, ``key=value`` context, level from LOG_LEVEL.

Every line goes through ``settings.mask`` (``MaskingFormatter``): whatever a
message or a library's exception text holds, no credential reaches the logs.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from tradeagg.settings import mask

PROCESS = f"{socket.gethostname()}.{os.getpid()}"


def kv(**context: Any) -> str:
    """``key=value`` pairs for a log line; values with spaces are quoted."""
    parts = []
    for key, value in context.items():
        text = str(value)
        if not text or any(c in text for c in ' "=\n'):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)


class MaskingFormatter(logging.Formatter):
    """A formatter whose every line, traceback included, is passed through ``mask``."""

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def setup(level: str = "INFO", process: str = "") -> None:
    """Configure the root logger once, to stderr (Heroku-style platforms collect it)."""
    fmt = (
        "%(asctime)s level=%(levelname)s logger=%(name)s "
        + (f"process={process} " if process else "")
        + "%(message)s"
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Throttle:
    """At most ``burst`` log lines per ``window_s`` for one kind of event; the rest counted.

    ``admit()`` returns None to skip a line, else how many were skipped before
    it (to print with it); ``overdue()`` hands out (once) the count skipped in a
    window that has ended with nothing logged since, for one summary line.
    """

    def __init__(
        self, burst: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = burst
        self.window_s = window_s
        self.clock = clock
        self.start = float("-inf")
        self.used = 0
        self.suppressed = 0

    def admit(self) -> int | None:
        now = self.clock()
        if now - self.start >= self.window_s:
            self.start, self.used = now, 0
        if self.used >= self.burst:
            self.suppressed += 1
            return None
        self.used += 1
        skipped, self.suppressed = self.suppressed, 0
        return skipped

    def overdue(self) -> int:
        if self.suppressed and self.clock() - self.start >= self.window_s:
            skipped, self.suppressed = self.suppressed, 0
            return skipped
        return 0
