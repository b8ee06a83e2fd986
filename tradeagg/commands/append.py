"""`tradeagg append`: write trades straight into the shard streams, without Kafka.

The same validation and the same stream entries as the bridge, for tests,
benchmarks, backfills and debugging on a machine without a broker. Each
invalid line is reported on stderr in one line (line number, how many
elements it rejected, the first reason), the first ``SHOWN_LINES`` of them and
then a count; the valid trades of a line still go in. Lines are read as bytes
and at most 1 MiB of a line is held: whatever the input, no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import BinaryIO

from tradeagg.clock import now_ms
from tradeagg.commands.summary import add_json_flag, emit
from tradeagg.contract.trade import Trade
from tradeagg.contract.validation import MAX_MESSAGE_BYTES, parse
from tradeagg.devtools.synthetic import past_trades
from tradeagg.errors import InvalidTrade, UsageError
from tradeagg.runtime.intake import clean
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
SHOWN_LINES = 20  # invalid lines reported one by one; the rest only counted


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "append",
        help="write trades straight into the shard streams (no Kafka).",
        description="Validates each line of FILE (- for stdin) as a trade message, exactly as "
        "the bridge does, and appends the valid trades to their shard streams; or appends "
        "--synthetic N trades stamped over the last minutes. Prints how many were appended and "
        "rejected (appended=N invalid=N invalid_lines=N); exit 1 if any line was invalid.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", nargs="?", metavar="FILE|-", help="JSON lines to append")
    p.add_argument("--synthetic", type=int, metavar="N", help="append N synthetic trades")
    p.add_argument(
        "--tokens",
        type=int,
        default=200,
        metavar="K",
        help="synthetic tokens (default %(default)s)",
    )
    p.add_argument("--seed", type=int, default=1, help="synthetic feed seed (default 1)")
    add_json_flag(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if (args.file is None) == (args.synthetic is None):
        raise UsageError("give FILE (or -) or --synthetic N, not both")
    client = connect(settings)
    now = now_ms()
    appended = invalid = bad_lines = 0
    if args.synthetic is not None:
        if args.synthetic < 1 or args.tokens < 1:
            raise UsageError("--synthetic and --tokens must be positive")
        # stamped in the past (newest ~1 s ago): a feed's bursts must not run ahead of now
        trades = past_trades(args.synthetic, args.tokens, args.seed, now)
        for i in range(0, len(trades), CHUNK):
            append(client, settings, trades[i : i + CHUNK], src="append")
        appended = len(trades)
    else:
        try:
            source = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
        batch: list[Trade] = []
        with source:
            for number, line in _lines(source):
                if line is not None and not line.strip():
                    continue
                rejected, reason, good = _check(line, now, settings.max_skew_ms)
                if rejected:
                    invalid += rejected
                    bad_lines += 1
                    if bad_lines <= SHOWN_LINES:
                        print(f"line {number}: {reason}", file=sys.stderr)
                batch.extend(good)
                if len(batch) >= CHUNK:
                    append(client, settings, batch, src="append")
                    appended, batch = appended + len(batch), []
        if batch:
            append(client, settings, batch, src="append")
            appended += len(batch)
        if bad_lines > SHOWN_LINES:
            print(f"... and {bad_lines - SHOWN_LINES} more invalid lines", file=sys.stderr)
    emit(
        "append",
        not invalid,
        args.json,
        appended=appended,
        invalid=invalid,
        invalid_lines=bad_lines,
    )
    return 1 if invalid else 0


def _check(line: bytes | None, now: int, skew: int) -> tuple[int, str, list[Trade]]:
    """(rejected count, one-line reason, valid trades) of one line."""
    if line is None:
        return 1, f"message: over {MAX_MESSAGE_BYTES} bytes", []
    try:
        got = parse(line, now, skew)
    except InvalidTrade as exc:
        return 1, _printable(exc.reason), []
    if not got.rejected:
        return 0, "", got.trades
    index, first = got.reasons[0]
    more = f" (+{got.rejected - 1} more)" if got.rejected > 1 else ""
    text = f"{got.rejected} of {got.elements} elements invalid; element {index}: {first}{more}"
    return got.rejected, _printable(text), got.trades


def _printable(text: str) -> str:
    return clean(text)[:300]


def _lines(source: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) with at most 1 MiB of a line held; a longer one is None."""
    limit = MAX_MESSAGE_BYTES + 2  # the value plus "\r\n"
    number = 0
    while line := source.readline(limit):
        number += 1
        if len(line) < limit or line.endswith(b"\n"):
            yield number, line
            continue
        while (rest := source.readline(limit)) and not rest.endswith(b"\n"):
            pass  # the rest of an over-long line, dropped as it is read
        yield number, None
