"""`tradeagg dead list|show|replay`: inspect dead letters and re-inject them."""

from __future__ import annotations

import argparse
import json

import redis

from tradeagg.commands.progress import Progress
from tradeagg.errors import StoreError, UsageError
from tradeagg.runtime.replay import Letter, letters, replay
from tradeagg.settings import Settings
from tradeagg.store.connection import connect

EXAMPLES = """examples:
  tradeagg dead list                         # every shard, oldest first
  tradeagg dead list --shard 3 --json
  tradeagg dead show 1733100000000-0
  tradeagg dead replay --since 1733100000000-0
"""
EXCERPT = 80


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dead",
        help="list, show or replay dead letters.",
        description="Dead letters (tradeagg:{sN}:dead) hold invalid input with its reason "
        "(source=bridge: the raw JSON) and entries that never committed (source=worker: "
        "their records). list: one line each; show ID: every field of one; replay: sends "
        "each back through the validation of its source (the bridge's rules, or the stream "
        "entry codec) and appends what passes to the shard streams for the workers. Trades "
        "already applied are recognised by id and skipped, so replaying twice is harmless. "
        "Replayed letters are kept; use --since to replay from an id on.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "action", choices=("list", "show", "replay"), help="list, show one ID, or replay"
    )
    p.add_argument("id", nargs="?", metavar="ID", help="dead letter id (show)")
    p.add_argument("--shard", type=int, metavar="N", help="one shard only (default all)")
    p.add_argument(
        "--since",
        default="-",
        metavar="ID",
        help="from this id on, inclusive (default %(default)s: the first)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=run)


def _line(letter: Letter) -> str:
    f = letter.fields
    where = f.get("entry") or f"{f.get('topic', '')}/{f.get('partition', '')}@{f.get('offset', '')}"
    reason = f.get("reason", "")
    raw = f.get("raw", "").replace("\n", " ")
    if len(raw) > EXCERPT:
        raw = raw[: EXCERPT - 3] + "..."
    return f"s{letter.shard} {letter.id} {f.get('source', '-')} {where} reason={reason!r} raw={raw}"


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.shard is not None and not 0 <= args.shard < settings.shards:
        raise UsageError(f"--shard must be in 0..{settings.shards - 1}, not {args.shard}")
    if (args.action == "show") != (args.id is not None):
        raise UsageError("give an ID with show, and only with show")
    since = args.id if args.action == "show" else args.since
    client = connect(settings)
    try:
        chosen = letters(client, settings, args.shard, since)
        if args.action == "show":
            chosen = [x for x in chosen if x.id == args.id]
            if not chosen:
                raise UsageError(f"no dead letter {args.id}")
        if args.action == "replay":
            progress = Progress("replay", len(chosen), every_s=settings.progress_every_s)
            result = replay(client, settings, chosen, progress.update)
            progress.close()
    except redis.RedisError as exc:
        raise StoreError(f"dead {args.action} failed: {exc}") from None
    if args.action == "replay":
        figures = result.as_dict()
        if args.json:
            print(json.dumps(figures), flush=True)
        else:
            counts = " ".join(f"{k}={v}" for k, v in figures.items() if k != "first_failures")
            print(f"replay: {counts}")
            for reason in result.reasons:
                print(f"  still invalid: {reason}")
        return 0
    for letter in chosen:
        if args.json:
            print(json.dumps(letter.as_dict()))
        elif args.action == "show":
            for k, v in letter.as_dict().items():
                print(f"{k}: {v}")
        else:
            print(_line(letter))
    return 0
