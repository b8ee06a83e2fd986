"""One summary format for commands that report what they did (append, produce, reclaim, health).

Text: one ``key=value`` line, as before. With ``--json``: one JSON object on
one line, ``{"command": NAME, "ok": BOOL, ...figures}``, the same keys as the
text, so scripts read every command the same way.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tradeagg.logs import kv


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help='print the summary as one JSON object {"command": ..., "ok": ..., ...} '
        "(default: key=value text)",
    )


def emit(command: str, ok: bool, as_json: bool, *, prefix: str = "", **figures: Any) -> None:
    """Print the summary of ``command``: JSON with ``as_json``, else ``prefix`` + key=value."""
    if as_json:
        print(json.dumps({"command": command, "ok": ok, **figures}, separators=(",", ":")))
    else:
        print(prefix + kv(**figures), flush=True)
