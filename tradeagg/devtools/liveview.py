"""The demo's screen: figures to rich renderables, drawn in place with ``rich.live``.

Rendering is separated from the terminal so that the same figures give the
refreshing table (a TTY: ``Terminal``, rich's alternate-screen ``Live``) and
the periodic one-line summaries (``--no-ui``, CI logs). ``screen`` and
``table`` give the same view as lines of text, for tests and logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tradeagg.commands import humanize, render
from tradeagg.engine.rank import Ranking

GREEN, RED = "\x1b[32m", "\x1b[31m"  # what rich writes for the change column's two colours
WAITING = "waiting for the first trades to be applied…"


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


def _table(s: Snapshot, columns: tuple[str, ...]) -> Table:
    headers = ["#", "token"]
    for label in columns:
        headers += [f"{label} buys", "sells", "volume", "change"]
    rows = []
    for r in s.ranking.rows:
        row: list[str | Text] = [str(r.rank), humanize.address(r.token, 13)]
        for label in columns:
            w = r.window(label)
            change = humanize.percent(w.price_change_pct)
            color = "" if change == "-" else "green" if change.startswith("+") else "red"
            row += [
                humanize.count(w.buys),
                humanize.count(w.sells),
                humanize.number(w.volume),
                Text(change, style=color),
            ]
        rows.append(row)
    return render.table(headers, rows, left=(1,))


def fitted(s: Snapshot, width: int) -> Table:
    """The ranked table, dropping whole windows from the right until it fits ``width``."""
    columns = s.columns
    while True:
        t = _table(s, columns)
        natural = max(len(line) for line in render.lines(t))
        if natural <= width or len(columns) == 1:
            return t
        columns = columns[:-1]


def view(s: Snapshot, title: str, width: int) -> RenderableType:
    """One refresh: title, figures, then the table (or a note that nothing ranks yet)."""
    crop = {"no_wrap": True, "overflow": "crop"}
    parts: list[RenderableType] = [Text(title, style="bold", **crop)]
    parts += [Text(line, **crop) for line in header(s)]
    parts.append(Text(""))
    parts.append(fitted(s, width) if s.ranking.rows else Text(WAITING, **crop))
    return Group(*parts)


def table(s: Snapshot, width: int, color: bool) -> list[str]:
    """The ranked table as lines (ANSI colours when ``color``)."""
    out = render.lines(fitted(s, width), width, color)
    if not s.ranking.rows:
        out.append(WAITING)
    return out


def screen(s: Snapshot, title: str, width: int, height: int, color: bool = True) -> list[str]:
    """Every line of one refresh, cut to the terminal's size."""
    return render.lines(view(s, title, width), width, color)[: max(1, height - 1)]


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


class Terminal:
    """Draws whole screens in place on a TTY, in the alternate screen buffer (rich's ``Live``)."""

    def __init__(self) -> None:
        self.live: Live | None = None

    def enter(self) -> None:
        self.live = Live(
            screen=True, auto_refresh=False, redirect_stdout=False, redirect_stderr=False
        )
        self.live.start()

    def draw(self, renderable: RenderableType) -> None:
        if self.live is not None:
            self.live.update(renderable, refresh=True)

    def leave(self) -> None:
        if self.live is not None:
            live, self.live = self.live, None
            live.stop()
