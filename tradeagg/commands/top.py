"""`tradeagg top`: the trending tokens, ranked exactly at read time."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from tradeagg.commands import humanize, render
from tradeagg.commands.coverage import add_strict_flag, check_windows
from tradeagg.commands.wording import as_flags
from tradeagg.contract.documents import rank_json
from tradeagg.engine.args import parse_min_volume
from tradeagg.engine.rank import RANK_BY, Ranker, Ranking, default_window
from tradeagg.settings import Settings
from tradeagg.store.connection import connect

EXAMPLES = """examples:
  tradeagg top                                 top 20 by 5m volume, now
  tradeagg top --window 1m --by buys --limit 10
  tradeagg top --by price_change_pct --window 1h --min-volume 100
                                               biggest gainers of the hour among
                                               tokens that traded at least 100 in it
  tradeagg top --json | jq -r .token           one JSON object per line, for scripts
  tradeagg top --at 1732550400000              as of an instant (epoch ms)

Ranking is descending by --by; equal values are ordered by token address.
Tokens without a trade in the window, or with less volume in it than
--min-volume, are not listed. Exit codes: 0 ok,
1 Redis failure, 2 bad option (unknown window, --at before a token's update).
"""


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw} is not a positive integer")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "top",
        help="the trending tokens, ranked exactly at read time.",
        description="The trending tokens: every active token (from the per-shard active "
        "index, no key scan) read exactly as of one instant, ranked by a metric of one window.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--window",
        default=None,
        metavar="LABEL",
        help="a TRADEAGG_WINDOWS label: digits + ms, s, m, h or d (default 5m if kept, "
        "else the first window over 1m, else the longest)",
    )
    p.add_argument(
        "--by",
        default="volume",
        choices=RANK_BY,
        help="metric (default volume; makers, buyers, sellers: distinct traders, not with "
        "TRADEAGG_METRICS=seed)",
    )
    p.add_argument("--limit", type=_positive, default=20, metavar="N", help="rows (default 20)")
    p.add_argument(
        "--min-volume",
        default="0",
        metavar="QUOTE",
        help="leave out tokens with less volume than QUOTE in the window (default 0), so "
        "that one tiny trade does not top a %% ranking",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line, ranked")
    p.add_argument("--at", type=int, metavar="MS", help="instant, epoch milliseconds")
    add_strict_flag(p)
    p.set_defaults(run=run)


HEAD = ("#", "token", "trades", "buys", "sells", "makers", "volume", "buy vol", "close", "change")


def table(ranking: Ranking) -> str:
    """A human table with readable numbers."""
    when = datetime.fromtimestamp(ranking.at / 1000, tz=UTC).isoformat(timespec="seconds")
    label = ranking.window
    least = f" with volume >= {ranking.min_volume}" if ranking.min_volume else ""
    title = (
        f"top {len(ranking.rows)} of {ranking.candidates} active tokens{least} by {ranking.by} "
        f"in {label}, at {ranking.at} ({when})"
    )
    rows = []
    for r in ranking.rows:
        w = r.window(label)
        buy_share = f"{w.buy_volume / w.volume * 100:.0f}%" if w.volume else "-"
        rows.append(
            (
                str(r.rank),
                r.token,
                humanize.count(w.trades),
                humanize.count(w.buys),
                humanize.count(w.sells),
                humanize.count(w.makers) if w.makers is not None else "-",
                humanize.number(w.volume),
                buy_share,
                humanize.number(w.close),
                humanize.percent(w.price_change_pct),
            )
        )
    body = render.text(render.table(HEAD, rows, left=(1,)))
    if not ranking.rows:
        body += "\n(no token has a trade in this window)"
    return title + "\n" + body


def run(args: argparse.Namespace, settings: Settings) -> int:
    client = connect(settings)
    try:
        check_windows(client, settings, "top", args.strict)
        ranker = Ranker(client, settings)
        window = args.window or default_window(settings)
        with as_flags():
            least = parse_min_volume(args.min_volume)
            ranking = ranker.top(window, args.by, args.limit, args.at, min_volume=least)
    finally:
        client.close()
    if args.json:
        for r in ranking.rows:
            print(rank_json(r, ranking))
    else:
        print(table(ranking))
    return 0
