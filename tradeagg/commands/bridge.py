"""`tradeagg bridge`: Kafka -> Redis shard streams, until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse

from tradeagg.errors import TradeaggError
from tradeagg.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bridge",
        help="Kafka -> Redis shard streams, until SIGTERM/SIGINT.",
        description="Kafka -> Redis shard streams, until SIGTERM/SIGINT.",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    raise TradeaggError("'bridge' is not implemented yet")
