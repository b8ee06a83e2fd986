"""`tradeagg produce`: publish JSON-lines trades (or a synthetic stream) to the Kafka topic.

For demos, benchmarks and backfills. Lines of a file are sent as they are
(invalid ones too: the bridge dead-letters them), keyed by their ``token``
when they have one. ``--synthetic N`` sends N trades of ``SyntheticFeed``:
paced in real time at ``--rate`` trades/s (each trade stamped when sent), or
as fast as possible with timestamps spread over the recent past.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tradeagg.clock import now_ms
from tradeagg.commands.progress import Progress
from tradeagg.commands.summary import add_json_flag, emit
from tradeagg.devtools.kafkatools import Message, Sender, encode
from tradeagg.devtools.synthetic import paced_blocks, past_trades
from tradeagg.errors import BrokerError, UsageError
from tradeagg.settings import Settings

EXAMPLES = """examples:
  tradeagg produce trades.jsonl
  cat trades.jsonl | tradeagg produce -
  tradeagg produce --synthetic 200000 --tokens 2000
  tradeagg produce --synthetic 60000 --rate 2000 --batch-per-block
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "produce",
        help="publish JSON-lines trades (or a synthetic stream) to the Kafka topic.",
        description="Publishes trades to TRADEAGG_KAFKA_TOPIC (with KAFKA_PREFIX): the lines "
        "of FILE (- for stdin), one message per line, keyed by token; or --synthetic N trades "
        "(Zipf token popularity, bursts per 400 ms block, pumps and dumps). Flushes, then "
        "prints how many messages and trades were delivered; exit 1 if any was not.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", nargs="?", metavar="FILE|-", help="JSON lines to send")
    p.add_argument("--synthetic", type=int, metavar="N", help="send N synthetic trades")
    p.add_argument(
        "--rate", type=float, metavar="R", help="pace at R trades/s, stamped now (default: max)"
    )
    p.add_argument(
        "--tokens",
        type=int,
        default=2000,
        metavar="K",
        help="synthetic tokens (default %(default)s)",
    )
    p.add_argument("--seed", type=int, default=1, help="synthetic feed seed (default 1)")
    p.add_argument(
        "--batch-per-block",
        action="store_true",
        help="one JSON array message per block (at most 1,000 trades) instead of one per trade",
    )
    add_json_flag(p)
    p.set_defaults(run=run)


def trades_in(doc: Any) -> int:
    """Trades a message carries: an array's elements, one object, else none."""
    if isinstance(doc, list):
        return len(doc)
    return 1 if isinstance(doc, dict) else 0


def _file_messages(lines: Iterable[str]) -> Iterator[Message]:
    for line in lines:
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        key, n = None, 0
        try:
            doc = json.loads(line)
            n = trades_in(doc)
            if isinstance(doc, dict) and isinstance(doc.get("token"), str):
                key = doc["token"].encode()
        except ValueError:
            pass
        yield key, line.encode(), n


def run(args: argparse.Namespace, settings: Settings) -> int:
    if (args.file is None) == (args.synthetic is None):
        raise UsageError("give FILE (or -) or --synthetic N, not both")
    if args.synthetic is not None and args.synthetic < 0:
        raise UsageError("--synthetic N must be >= 0")
    if args.rate is not None and args.rate <= 0:
        raise UsageError("--rate must be > 0")
    if args.tokens < 1:
        raise UsageError("--tokens must be >= 1")
    sender = Sender(settings)
    sender.connect()
    t0 = time.monotonic()
    if args.file is not None:
        if args.file == "-":
            sender.send(_file_messages(sys.stdin))
        else:
            try:
                with open(args.file, encoding="utf-8") as fh:
                    sender.send(_file_messages(fh))
            except OSError as exc:
                raise UsageError(f"{args.file}: {exc.strerror}") from None
    elif args.rate is None:
        trades = past_trades(args.synthetic, args.tokens, args.seed, now_ms())
        sender.send(encode(trades, args.batch_per_block))
    else:
        progress = Progress("produce", args.synthetic, every_s=settings.progress_every_s)
        for block in paced_blocks(args.synthetic, args.tokens, args.seed, args.rate):
            sender.send(encode(block, args.batch_per_block))
            progress.update(sender.trades)
        progress.close()
    left = sender.flush()
    took = time.monotonic() - t0
    failed = sender.failed + left
    if args.json:
        emit(
            "produce",
            not failed,
            True,
            topic=sender.topic,
            messages=sender.delivered,
            trades=sender.trades,
            failed=failed,
            seconds=round(took, 1),
        )
    else:
        print(
            f"produced {sender.delivered} messages ({sender.trades} trades) to {sender.topic} "
            f"in {took:.1f}s; failed {failed}",
            flush=True,
        )
    if failed:
        raise BrokerError(f"{failed} messages not delivered: {'; '.join(sender.errors[:3])}")
    return 0
