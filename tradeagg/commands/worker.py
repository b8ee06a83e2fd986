"""`tradeagg worker`: consumer-group aggregation plus the janitor, until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse

from tradeagg.errors import TradeaggError
from tradeagg.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "worker",
        help="consumer-group aggregation plus the janitor, until SIGTERM/SIGINT.",
        description="consumer-group aggregation plus the janitor, until SIGTERM/SIGINT.",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    raise TradeaggError("'worker' is not implemented yet")
