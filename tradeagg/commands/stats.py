"""`tradeagg stats`: live figures for humans (or --json for scripts)."""

from __future__ import annotations

import argparse

from tradeagg.errors import TradeaggError
from tradeagg.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="live figures for humans (or --json for scripts).",
        description="live figures for humans (or --json for scripts).",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    raise TradeaggError("'stats' is not implemented yet")
