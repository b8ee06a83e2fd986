"""`tradeagg append`: write trades straight into the shard streams, without Kafka.

The same validation and the same stream entries as the bridge, for tests,
benchmarks, backfills and debugging on a machine without a broker. Invalid
lines are reported on stderr (line number and reason) and skipped.
"""

from __future__ import annotations

import argparse
import sys
import time

from tradeagg.commands.summary import add_json_flag, emit
from tradeagg.contract.trade import Trade
from tradeagg.contract.validation import parse_message
from tradeagg.devtools.synthetic import SyntheticFeed
from tradeagg.errors import InvalidTrade, UsageError
from tradeagg.settings import Settings
from tradeagg.store.connection import connect
from tradeagg.store.streams import append

EXAMPLES = """examples:
  tradeagg append trades.jsonl          # one JSON trade (or array) per line
  cat trades.jsonl | tradeagg append -
  tradeagg append --synthetic 10000 --tokens 200

trade message (what the bridge reads from Kafka too): UTF-8 JSON, one object or an
array of them, at most 1 MiB; unknown fields are ignored:
  id      string, 1-128 printable ASCII, no whitespace; the same id twice is one trade
  token   base58 [1-9A-HJ-NP-Za-km-z]{32,44} or 0x + 40 hex
  side    "buy" or "sell" (trader's view)
  amount, quote, price   number or decimal string, finite, > 0 (quote is the volume,
          rounded half-even to 9 decimals; quote <= 1e9, price <= 1e15, amount <= 1e40)
  ts      integer epoch ms (at most TRADEAGG_MAX_SKEW_MS in the future)
  seq     integer, optional (0): order among trades with the same ts
  trader  wallet, same rule as token
  block   integer, optional
windows: TRADEAGG_WINDOWS labels are digits + ms, s, m, h or d (30s, 5m, 4h, 1d).
"""
CHUNK = 10_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "append",
        help="write trades straight into the shard streams (no Kafka).",
        description="Validates each line of FILE (- for stdin) as a trade message, exactly as "
        "the bridge does, and appends the valid trades to their shard streams; or appends "
        "--synthetic N trades stamped over the last minutes. Prints how many were appended; "
        "exit 1 if any line was invalid.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", nargs="?", metavar="FILE|-", help="JSON lines to append")
    p.add_argument("--synthetic", type=int, metavar="N", help="append N synthetic trades")
    p.add_argument("--tokens", type=int, default=200, metavar="K", help="synthetic tokens")
    p.add_argument("--seed", type=int, default=1, help="synthetic feed seed (default 1)")
    add_json_flag(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if (args.file is None) == (args.synthetic is None):
        raise UsageError("give FILE (or -) or --synthetic N, not both")
    client = connect(settings)
    now = int(time.time() * 1000)
    appended = invalid = 0
    if args.synthetic is not None:
        if args.synthetic < 1 or args.tokens < 1:
            raise UsageError("--synthetic and --tokens must be positive")
        feed = SyntheticFeed(tokens=args.tokens, seed=args.seed)
        trades = feed.trades(args.synthetic, now - 600_000, rate=max(1.0, args.synthetic / 590))
        for i in range(0, len(trades), CHUNK):
            append(client, settings, trades[i : i + CHUNK], src="append")
        appended = len(trades)
    else:
        try:
            source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
        batch: list[Trade] = []
        with source:
            for number, line in enumerate(source, 1):
                if not line.strip():
                    continue
                try:
                    good, bad = parse_message(line, now, settings.max_skew_ms)
                except InvalidTrade as exc:
                    good, bad = [], [(0, None, exc.reason)]
                for index, _element, reason in bad:
                    print(f"line {number} element {index}: {reason}", file=sys.stderr)
                invalid += len(bad)
                batch.extend(good)
                if len(batch) >= CHUNK:
                    append(client, settings, batch, src="append")
                    appended, batch = appended + len(batch), []
        if batch:
            append(client, settings, batch, src="append")
            appended += len(batch)
    emit("append", not invalid, args.json, appended=appended, invalid=invalid)
    return 1 if invalid else 0
