"""The ``tradeagg`` command line: wiring only. Each command lives in tradeagg/commands/.

Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import NoReturn

from tradeagg import __version__, logs
from tradeagg.errors import ConfigError, TradeaggError, UsageError
from tradeagg.settings import Settings

COMMANDS = (
    "worker",
    "bridge",
    "reclaim",
    "show",
    "top",
    "stats",
    "health",
    "produce",
    "append",
    "bench",
    "demo",
    "serve",
)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    parser = Parser(
        prog="tradeagg",
        description="Exact sliding-window trade aggregates in Redis, fed from Kafka.",
        epilog="Configuration comes from the environment: see README.md. "
        "Exit codes: 0 ok, 1 failure, 2 usage or configuration error.",
    )
    parser.add_argument("--version", action="version", version=f"tradeagg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"tradeagg.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"tradeagg: {exc}", file=sys.stderr)
        return 2
    logs.setup(settings.log_level, process=f"{args.command}.{logs.PROCESS}")
    try:
        return int(args.run(args, settings) or 0)
    except (UsageError, ConfigError) as exc:
        print(f"tradeagg {args.command}: {exc}", file=sys.stderr)
        return 2
    except TradeaggError as exc:
        logging.getLogger("tradeagg").error("%s", logs.kv(command=args.command, error=str(exc)))
        print(f"tradeagg {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
