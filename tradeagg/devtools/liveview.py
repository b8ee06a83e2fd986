"""The demo's screen: pure functions from figures to lines, plus plain ANSI output.

Rendering is separated from the terminal so that the same figures give the
refreshing table (a TTY) and the periodic one-line summaries (``--no-ui``,
CI logs). No curses: cursor-home, clear-to-end and the alternate screen are
enough, and they behave under tmux, ssh and a pseudo-terminal alike.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from tradeagg.commands import humanize
from tradeagg.engine.rank import Ranking

ENTER = "\x1b[?1049h\x1b[?25l"  # alternate screen, hide cursor
LEAVE = "\x1b[?25h\x1b[?1049l"
HOME = "\x1b[H"
CLEAR_LINE = "\x1b[K"
CLEAR_BELOW = "\x1b[J"
BOLD, DIM, GREEN, RED, RESET = "\x1b[1m", "\x1b[2m", "\x1b[32m", "\x1b[31m", "\x1b[0m"


@dataclass(frozen=True)
class Snapshot:
    """What one refresh shows; every figure read from Redis or counted by the feed."""

    elapsed_s: float
    fed: int  # trades delivered to Kafka
    fed_rate: float  # trades/s delivered over the last refresh
    applied_rate: float  # trades/s in the shortest window, per second of it
    in_flight: int  # delivered, not yet in the windows
    backlog: int  # shard stream entries not yet acknowledged by a worker
    active: int  # tokens with a trade in the longest window
    applied: int  # trades in the longest window
    read_ms: float  # how long the exact read of every active token took
    ranking: Ranking
    columns: tuple[str, ...]  # window labels shown per token


def header(s: Snapshot) -> list[str]:
    when = datetime.fromtimestamp(s.ranking.at / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return [
        f"fed {humanize.count(s.fed)} trades ({humanize.rate(s.fed_rate)})  "
        f"applied {humanize.rate(s.applied_rate)}  in flight {humanize.count(s.in_flight)}  "
        f"stream backlog {humanize.count(s.backlog)}  active tokens {s.active}",
        f"top by {s.ranking.window} {s.ranking.by}, exact as of {when.replace('+00:00', 'Z')}"
        f" (all {s.ranking.candidates} tokens read in {s.read_ms:.0f} ms)",
    ]


def _cells(s: Snapshot) -> list[list[str]]:
    rows = [["#", "token"]]
    for label in s.columns:
        rows[0] += [f"{label} buys", "sells", "volume", "change"]
    for r in s.ranking.rows:
        row = [str(r.rank), humanize.address(r.token, 13)]
        for label in s.columns:
            w = r.window(label)
            row += [
                humanize.count(w.buys),
                humanize.count(w.sells),
                humanize.number(w.volume),
                humanize.percent(w.price_change_pct),
            ]
        rows.append(row)
    return rows


def table(s: Snapshot, width: int, color: bool) -> list[str]:
    """The ranked table, dropping whole windows from the right until it fits ``width``."""
    columns = s.columns
    while True:
        rows = _cells(Snapshot(**{**s.__dict__, "columns": columns}))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        total = sum(widths) + 2 * len(widths)
        if total <= width or len(columns) == 1:
            break
        columns = columns[:-1]
    out = []
    for n, row in enumerate(rows):
        cells = []
        for i, c in enumerate(row):
            text = c.ljust(widths[i]) if i == 1 else c.rjust(widths[i])
            if color and n and i >= 2 and (i - 2) % 4 == 3 and c != "-":
                text = (GREEN if c.startswith("+") else RED) + text + RESET
            cells.append(text)
        line = "  ".join(cells)
        out.append(BOLD + line + RESET if color and n == 0 else line)
    if not s.ranking.rows:
        out.append("waiting for the first trades to be applied…")
    return out


def screen(s: Snapshot, title: str, width: int, height: int, color: bool = True) -> list[str]:
    """Every line of one refresh, cut to the terminal's size."""
    lines = [BOLD + title + RESET if color else title, *header(s), ""]
    lines += table(s, width, color)
    lines = lines[: max(1, height - 1)]
    return [line if _visible(line) <= width else _cut(line, width) for line in lines]


def summary(s: Snapshot) -> str:
    """One line for ``--no-ui``."""
    lead = ""
    if s.ranking.rows:
        r = s.ranking.rows[0]
        w = r.window(s.ranking.window)
        lead = (
            f" top={humanize.address(r.token, 13)} {s.ranking.window}_volume="
            f"{humanize.number(w.volume)}"
        )
    return (
        f"[{s.elapsed_s:5.0f}s] fed={s.fed} fed_rate={s.fed_rate:.0f}/s "
        f"applied_rate={s.applied_rate:.0f}/s in_flight={s.in_flight} backlog={s.backlog} "
        f"active_tokens={s.active} read_ms={s.read_ms:.0f}{lead}"
    )


def _visible(line: str) -> int:
    return len(_strip(line))


def _strip(line: str) -> str:
    out, i = [], 0
    while i < len(line):
        if line[i] == "\x1b":
            j = line.find("m", i)
            i = j + 1 if j != -1 else len(line)
            continue
        out.append(line[i])
        i += 1
    return "".join(out)


def _cut(line: str, width: int) -> str:
    return _strip(line)[:width]


class Terminal:
    """Draws whole screens in place on a TTY, in the alternate screen buffer."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.entered = False

    def enter(self) -> None:
        self.out.write(ENTER)
        self.out.flush()
        self.entered = True

    def draw(self, lines: list[str]) -> None:
        body = HOME + "".join(line + CLEAR_LINE + "\r\n" for line in lines) + CLEAR_BELOW
        self.out.write(body)
        self.out.flush()

    def leave(self) -> None:
        if self.entered:
            self.out.write(LEAVE)
            self.out.flush()
            self.entered = False
