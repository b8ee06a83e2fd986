"""`tradeagg demo`: embedded Redis and Kafka broker, a synthetic feed, the whole pipeline and a live view."""

from __future__ import annotations

import argparse

from tradeagg.errors import TradeaggError
from tradeagg.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="embedded Redis and Kafka broker, a synthetic feed, the whole pipeline and a live view.",
        description="embedded Redis and Kafka broker, a synthetic feed, the whole pipeline and a live view.",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    raise TradeaggError("'demo' is not implemented yet")
