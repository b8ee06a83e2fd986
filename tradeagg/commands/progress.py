"""Progress of long work on stderr: a bar redrawn in place on a terminal, else a line
every ``every_s`` seconds (log collectors get readable lines, not carriage returns)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
TTY_EVERY_S = 0.2


class Progress:
    """``update(done)`` as work advances, ``close()`` at the end.

    ``total`` > 0 gives a bar and a share; 0 means unknown up front (count and rate only).
    """

    def __init__(
        self, label: str, total: int, out: TextIO | None = None, every_s: float = 5.0
    ) -> None:
        self.label, self.total = label, max(total, 0)
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.every_s = TTY_EVERY_S if self.tty else every_s
        self.started = self.shown_at = time.monotonic()
        self.done = 0

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self.shown_at >= self.every_s:
            self.shown_at = now
            self._show(now)

    def close(self) -> None:
        if self.tty:
            self._show(time.monotonic())
            self.out.write("\n")
            self.out.flush()

    def _show(self, now: float) -> None:
        rate = self.done / max(now - self.started, 1e-6)
        if self.total:
            share = min(self.done / self.total, 1.0)
            figures = f"{self.done}/{self.total} ({share:.0%}) {rate:,.0f}/s"
        else:
            share = 0.0
            figures = f"{self.done} {rate:,.0f}/s"
        if self.tty and self.total:
            bar = "#" * int(share * WIDTH)
            self.out.write(f"\r{self.label} [{bar:<{WIDTH}}] {figures}")
        elif self.tty:
            self.out.write(f"\r{self.label} {figures}")
        else:
            self.out.write(f"{self.label}: {figures}\n")
        self.out.flush()
