"""Progress of long work on stderr: a ``rich`` progress bar on a terminal, else a plain
line every ``every_s`` seconds (log collectors get readable lines, not control codes)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich import progress as bar
from rich.console import Console

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
        self.every_s = every_s
        self.started = self.shown_at = time.monotonic()
        self.done = 0
        self.bar: bar.Progress | None = None
        if self.out.isatty():
            self.bar = bar.Progress(
                bar.TextColumn("{task.description}"),
                bar.BarColumn(),
                bar.MofNCompleteColumn(),
                bar.TaskProgressColumn(),
                bar.TimeElapsedColumn(),
                console=Console(file=self.out),
                auto_refresh=False,  # no refresh thread: redrawn from update(), gevent or not
            )
            self.task = self.bar.add_task(label, total=self.total or None)
            self.bar.start()

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if self.bar is not None:
            redraw = now - self.shown_at >= TTY_EVERY_S
            self.shown_at = now if redraw else self.shown_at
            self.bar.update(self.task, completed=done, refresh=redraw)
        elif now - self.shown_at >= self.every_s:
            self.shown_at = now
            self._line(now)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, refresh=True)
            self.bar.stop()

    def _line(self, now: float) -> None:
        rate = self.done / max(now - self.started, 1e-6)
        if self.total:
            share = min(self.done / self.total, 1.0)
            figures = f"{self.done}/{self.total} ({share:.0%}) {rate:,.0f}/s"
        else:
            figures = f"{self.done} {rate:,.0f}/s"
        self.out.write(f"{self.label}: {figures}\n")
        self.out.flush()
