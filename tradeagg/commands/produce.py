"""`tradeagg produce`: publish JSON-lines trades (or a synthetic stream) to the Kafka topic."""

from __future__ import annotations

import argparse

from tradeagg.errors import TradeaggError
from tradeagg.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "produce",
        help="publish JSON-lines trades (or a synthetic stream) to the Kafka topic.",
        description="publish JSON-lines trades (or a synthetic stream) to the Kafka topic.",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    raise TradeaggError("'produce' is not implemented yet")
