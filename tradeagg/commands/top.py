"""`tradeagg top`: the trending tokens, ranked exactly at read time."""

from __future__ import annotations

import argparse

from tradeagg.errors import TradeaggError
from tradeagg.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "top",
        help="the trending tokens, ranked exactly at read time.",
        description="the trending tokens, ranked exactly at read time.",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    raise TradeaggError("'top' is not implemented yet")
