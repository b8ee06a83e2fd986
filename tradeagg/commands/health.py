"""`tradeagg health`: exit 0 when every expected process is alive and lag is bounded, 1 otherwise."""

from __future__ import annotations

import argparse

from tradeagg.errors import TradeaggError
from tradeagg.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "health",
        help="exit 0 when every expected process is alive and lag is bounded, 1 otherwise.",
        description="exit 0 when every expected process is alive and lag is bounded, 1 otherwise.",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    raise TradeaggError("'health' is not implemented yet")
