"""`tradeagg show`: a token's aggregates exactly as of an instant."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from tradeagg.commands import humanize, render
from tradeagg.commands.coverage import add_strict_flag, check_windows
from tradeagg.commands.wording import as_flags
from tradeagg.contract.address import is_address
from tradeagg.contract.documents import token_document
from tradeagg.contract.exactjson import dumps
from tradeagg.engine.args import check_at
from tradeagg.engine.read import Reader, TokenView
from tradeagg.errors import UsageError
from tradeagg.settings import Settings
from tradeagg.store.connection import connect

EXAMPLES = """examples:
  tradeagg show So11111111111111111111111111111111111111112
  tradeagg show ADDR1 ADDR2 --json
  tradeagg show ADDR --at 1732550400000 --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "show",
        help="a token's aggregates exactly as of --at (default now).",
        description="Aggregates of each ADDR exactly as of --at (epoch ms; default now, or the "
        "token's last_update with TRADEAGG_CLOCK=event), whatever the janitor has or hasn't "
        "done. An unknown token shows empty windows. --at earlier than the token's "
        "last_update is an error (exit 2). The table rounds volumes and prices to three "
        "significant digits as `tradeagg top` does; --json gives the exact decimals.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("addr", nargs="+", metavar="ADDR", help="token (mint) address")
    p.add_argument("--at", type=int, metavar="MS", help="instant, epoch milliseconds")
    p.add_argument("--json", action="store_true", help="one JSON object per line per address")
    add_strict_flag(p)
    p.set_defaults(run=run)


HEAD = ("window", "buys", "sells", "buy_volume", "sell_volume", "volume", "open", "close")
HEAD += ("change",)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def table(view: TokenView) -> str:
    when = _iso(view.at)
    rows = [
        (
            f"{label}*" if w.partial else label,
            humanize.count(w.buys),
            humanize.count(w.sells),
            humanize.number(w.buy_volume),
            humanize.number(w.sell_volume),
            humanize.number(w.volume),
            humanize.number(w.open),
            humanize.number(w.close),
            humanize.percent(w.price_change_pct),
        )
        for label, w in view.windows.items()
    ]
    notes = "".join(
        f"\n* {label} is partial (the list was not kept that long): exact from "
        f"{w.complete_from} ({_iso(w.complete_from)})"
        for label, w in view.windows.items()
        if w.complete_from is not None
    )
    return f"{view.token}  at {view.at} ({when})\n" + render.text(render.table(HEAD, rows)) + notes


def run(args: argparse.Namespace, settings: Settings) -> int:
    with as_flags():
        check_at(args.at)
    bad = [a for a in args.addr if not is_address(a)]
    if bad:
        raise UsageError(f"not a token address (base58, or 0x + 40 hex): {bad[0][:60]!r}")
    client = connect(settings)
    check_windows(client, settings, "show", args.strict)
    reader = Reader(client, settings)
    for addr in args.addr:
        with as_flags():
            view = reader.read(addr, args.at)
        print(dumps(token_document(view)) if args.json else table(view), flush=True)
    return 0
