"""`tradeagg reclaim`: claim entries pending too long on any consumer, apply them, ack them."""

from __future__ import annotations

import argparse

from tradeagg.errors import TradeaggError
from tradeagg.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reclaim",
        help="claim entries pending too long on any consumer, apply them, ack them.",
        description="claim entries pending too long on any consumer, apply them, ack them.",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    raise TradeaggError("'reclaim' is not implemented yet")
