"""Logging in logfmt, one line per event, level from LOG_LEVEL.

A line reads ``ts=2026-01-02T03:04:05.678Z level=INFO logger=tradeagg.worker
process=worker.worker.1 msg="worker started" consumer=worker.1 shards=8``, the
form Heroku log drains and most log tools parse. Code logs
``log.info("worker started %s", kv(consumer=..., shards=...))``: the formatter
splits the text from the trailing ``key=value`` pairs, so ``msg`` holds the
words and the pairs stay keys. An exception becomes an escaped ``exc="..."``
on the same line. Every line, traceback included, goes through
``settings.mask``: whatever a message or a library's exception text holds, no
credential reaches the logs.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from tradeagg.settings import mask

PROCESS = f"{socket.gethostname()}.{os.getpid()}"

_PAIRS = re.compile(r'[A-Za-z_][\w.]*=(?:"(?:[^"\\]|\\.)*"|[^\s"]*)(?:\s+|$)')
_KEY = re.compile(r"(?:^|(?<=\s))[A-Za-z_][\w.]*=")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def quote(text: str) -> str:
    """``text`` as a logfmt value: bare when it can be, else double-quoted and escaped."""
    if text and not any(c in text for c in ' "=\n\\'):
        return text
    return f'"{_escape(text)}"'


def kv(**context: Any) -> str:
    """``key=value`` pairs for a log line; values with spaces are quoted."""
    return " ".join(f"{key}={quote(str(value))}" for key, value in context.items())


def split_message(text: str) -> tuple[str, str]:
    """``("worker started", "consumer=a shards=8")`` from ``"worker started consumer=a shards=8"``.

    The pairs are the longest tail that is nothing but ``key=value`` pairs;
    a message without such a tail is all text.
    """
    for match in _KEY.finditer(text):
        tail = text[match.start() :]
        if _fully_pairs(tail):
            return text[: match.start()].rstrip(), tail.rstrip()
    return text, ""


def _fully_pairs(tail: str) -> bool:
    pos = 0
    while pos < len(tail):
        match = _PAIRS.match(tail, pos)
        if not match or match.end() == pos:
            return False
        pos = match.end()
    return True


class LogfmtFormatter(logging.Formatter):
    """``ts= level= logger= [process=] msg="..." key=value... [exc="..."]`` on one line."""

    def __init__(self, process: str = "") -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        text, pairs = split_message(record.getMessage())
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [f"ts={stamp}.{int(record.msecs):03d}Z", f"level={record.levelname}"]
        parts.append(f"logger={quote(record.name)}")
        if self.process:
            parts.append(f"process={quote(self.process)}")
        parts.append(f'msg="{_escape(text)}"')
        if pairs:
            parts.append(pairs)
        if record.exc_info:
            parts.append(f"exc={quote(self.formatException(record.exc_info))}")
        return mask(" ".join(parts))


def process_name(configured: str = "") -> str:
    """This process's name: DYNO or TRADEAGG_PROCESS_NAME when set, else host-pid."""
    return configured or f"{socket.gethostname()}-{os.getpid()}"


def metric_segment(name: str) -> str:
    """``name`` as one metric path segment (``worker.1`` -> ``worker_1``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "unnamed"


def setup(level: str = "INFO", process: str = "") -> None:
    """Configure the root logger once, to stderr (Heroku-style platforms collect it)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter(process))
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
