"""Logging: one line per event, ``key=value`` context, level from LOG_LEVEL."""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

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


def setup(level: str = "INFO", process: str = "") -> None:
    """Configure the root logger once, to stderr (Heroku-style platforms collect it)."""
    fmt = (
        "%(asctime)s level=%(levelname)s logger=%(name)s "
        + (f"process={process} " if process else "")
        + "%(message)s"
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
