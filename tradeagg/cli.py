"""The ``tradeagg`` command line: wiring only. Each command lives in tradeagg/commands/.

Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import NoReturn

import redis
from confluent_kafka import KafkaException
from redis.exceptions import RedisClusterException

from tradeagg import __version__, logs
from tradeagg.errors import ConfigError, TradeaggError, UsageError
from tradeagg.settings import Settings, mask

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
    "dead",
    "bench",
    "demo",
    "serve",
    "windows",
)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def environment_help() -> str:
    """Every setting with its variable(s) and default, for ``tradeagg --help``."""
    lines = ["configuration (environment variables, default in brackets):"]
    for names, default, doc in Settings.docs():
        shown = default if default not in ("", "()") else "unset"
        lines.append(f"  {names} [{shown}]\n      {doc}")
    return "\n".join(lines)


def build_parser() -> Parser:
    parser = Parser(
        prog="tradeagg",
        description="Exact sliding-window trade aggregates in Redis, fed from Kafka. "
        "'tradeagg COMMAND --help' explains each command.",
        epilog=environment_help()
        + "\n\nexit codes: 0 ok, 1 failure (one line on stderr), 2 usage or configuration error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tradeagg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"tradeagg.commands.{name}").register(sub)
    return parser


def fail(command: str, exc: BaseException) -> str:
    """The one line an operator sees: ``tradeagg CMD: what went wrong``, credentials masked."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return f"tradeagg {command}: {mask(detail)}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"tradeagg: {mask(str(exc))}", file=sys.stderr)
        return 2
    logs.setup(
        settings.log_level, process=f"{args.command}.{logs.process_name(settings.process_name)}"
    )
    try:
        return int(args.run(args, settings) or 0)
    except (UsageError, ConfigError) as exc:
        print(fail(args.command, exc), file=sys.stderr)
        return 2
    except (TradeaggError, redis.RedisError, RedisClusterException, KafkaException) as exc:
        print(fail(args.command, exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # unexpected: one masked line here, the traceback in the masked log
        logging.getLogger("tradeagg").error(
            "unexpected failure %s",
            logs.kv(command=args.command, error=type(exc).__name__),
            exc_info=True,
        )
        print(
            f"tradeagg {args.command}: unexpected {type(exc).__name__}: {mask(str(exc))}",
            file=sys.stderr,
        )
        return 1
