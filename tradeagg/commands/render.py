"""The one table renderer of the command line (show, top, stats, bench, the demo's view).

rich is imported when a table is drawn, not when the module is: every command
module is imported to build the parser, and ``worker`` or ``bridge`` should
not pay rich's import time at each start.

Tables are ``rich`` tables without borders: columns two spaces apart, the
first column(s) left-aligned, numbers right-aligned, a bold header when
colour is on. ``text`` turns any rich renderable into plain lines for
printing, tests and logs: width unbounded unless given (a table never wraps
in a pipe), colour only when asked for.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table

Cell = Any  # str, or a rich Text
UNBOUNDED = 10_000  # columns: wide enough that no table of ours wraps


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    left: Collection[int] = (0,),
    show_header: bool = True,
) -> Table:
    """Columns named ``headers``; those at the indices in ``left`` aligned left, others right."""
    from rich.table import Table

    t = Table(
        box=None,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        header_style="bold",
        show_header=show_header,
    )
    for i, name in enumerate(headers):
        t.add_column(name, justify="left" if i in left else "right", no_wrap=True)
    for row in rows:
        t.add_row(*row)
    return t


def console(
    width: int = UNBOUNDED, color: bool = False, file: io.TextIOBase | None = None
) -> Console:
    """A Console writing ``file`` (a buffer if None) at ``width`` columns, ANSI colour or none."""
    from rich.console import Console

    return Console(
        file=file or io.StringIO(),
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        highlight=False,
        emoji=False,
        markup=False,
        legacy_windows=False,
    )


def lines(renderable: RenderableType, width: int = UNBOUNDED, color: bool = False) -> list[str]:
    """``renderable`` as lines of text, trailing blanks removed."""
    out = console(width, color)
    out.print(renderable)
    return [line.rstrip() for line in out.file.getvalue().splitlines()]  # type: ignore[attr-defined]


def text(renderable: RenderableType, width: int = UNBOUNDED, color: bool = False) -> str:
    """``renderable`` as one string of lines."""
    return "\n".join(lines(renderable, width, color))
