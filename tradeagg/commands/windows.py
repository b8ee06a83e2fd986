"""`tradeagg windows list|retire`: the windows tokens carry, and dropping some of them."""

from __future__ import annotations

import argparse
import json

import redis

from tradeagg.commands import render
from tradeagg.commands.progress import Progress
from tradeagg.commands.summary import add_json_flag, emit
from tradeagg.engine.windowset import Carried, Retirer, carried
from tradeagg.errors import StoreError, UsageError
from tradeagg.observe import probes
from tradeagg.settings import Settings, parse_windows
from tradeagg.store.connection import connect

EXAMPLES = """examples:
  tradeagg windows list
  tradeagg windows list --json
  tradeagg windows retire 4h             # after every worker runs without 4h
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "windows",
        help="list the windows tokens carry, or retire some.",
        description="A token keeps every window any worker release configured "
        "(TRADEAGG_WINDOWS), so releases with different windows can run side by side "
        "during a rolling deploy; a window added to a token after its list was trimmed "
        "shorter is reported partial until it has been open its full length. list: each "
        "label, its kind (exact, or bucketed beyond TRADEAGG_EXACT_HORIZON), how many tokens "
        "carry it and on how many it is partial. retire LABEL...: walks every token and "
        "deletes those windows' index and fields (a bucketed window: its fields), then "
        "trims the token's list to the longest exact window left (bounded calls; "
        "progress on stderr). "
        "Run it once no worker is configured with the labels: a worker that still is "
        "adds them back (refused while a live worker's heartbeat lists one). A token "
        "carrying only retired windows is left alone and counted as kept.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", choices=("list", "retire"), help="list, or retire LABEL...")
    p.add_argument("label", nargs="*", metavar="LABEL", help="window label to retire (30s, 4h…)")
    add_json_flag(p)
    p.set_defaults(run=run)


def _labels(args: argparse.Namespace, settings: Settings) -> list[str]:
    if (args.action == "retire") != bool(args.label):
        raise UsageError("give LABELs with retire, and only with retire")
    for label in args.label:
        try:
            parse_windows(label)
        except ValueError as exc:
            raise UsageError(f"LABEL {label!r}: {exc}") from None
    mine = [w.label for w in settings.windows]
    configured = [x for x in args.label if x in mine]
    if configured:
        raise UsageError(
            f"{','.join(configured)} is configured here (TRADEAGG_WINDOWS {','.join(mine)}): "
            "run retire with the windows the workers keep from now on"
        )
    return list(dict.fromkeys(args.label))


def run(args: argparse.Namespace, settings: Settings) -> int:
    labels = _labels(args, settings)
    client = connect(settings)
    try:
        if args.action == "list":
            return _list(client, settings, args.json)
        keeping = [
            f"{b.get('name')} ({x})"
            for b in probes.heartbeats(client, "worker")
            for x in b.get("windows") or []
            if x in labels
        ]
        if keeping:
            raise UsageError(
                f"live workers keep {', '.join(keeping)}: they would add it back; "
                "reconfigure them first"
            )
        progress = Progress("windows retire", 0, every_s=settings.progress_every_s)
        done = Retirer(client).retire(labels, progress.update)
        progress.close()
    except redis.RedisError as exc:
        raise StoreError(f"windows {args.action} failed: {exc}") from None
    emit(
        "windows retire",
        True,
        args.json,
        prefix="windows retire: ",
        labels=",".join(labels),
        tokens=done.tokens,
        retired=done.retired,
        trimmed=done.trimmed,
        kept=len(done.kept),
    )
    return 0


def _ms(label: str) -> int | None:
    try:
        return parse_windows(label)[0].ms
    except ValueError:
        return None  # not a label these settings accept (a damaged index)


def _list(client: object, settings: Settings, as_json: bool) -> int:
    progress = Progress("windows list", 0, every_s=settings.progress_every_s)
    rows = carried(client, progress.update)
    progress.close()
    mine = {w.label for w in settings.windows}
    seen = {r.label for r in rows}
    long = {w.label for w in settings.long_windows}
    rows += [
        Carried(w.label, kind="bucketed" if w.label in long else "exact")
        for w in settings.windows
        if w.label not in seen
    ]
    rows.sort(key=lambda r: (_ms(r.label) or 0, r.label))
    if as_json:
        for r in rows:
            doc = {
                "label": r.label,
                "ms": _ms(r.label),
                "kind": r.kind,
                "tokens": r.tokens,
                "partial": r.partial,
                "configured": r.label in mine,
            }
            print(json.dumps(doc), flush=True)
        return 0
    table = [
        (r.label, r.kind, str(r.tokens), str(r.partial), "yes" if r.label in mine else "no")
        for r in rows
    ]
    head = ("window", "kind", "tokens", "partial", "configured here")
    print(render.text(render.table(head, table)))
    return 0
