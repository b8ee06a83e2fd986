"""Every option of every command has help text that shows its default (issue 12)."""

from __future__ import annotations

import argparse

from tradeagg.cli import build_parser


def commands() -> dict[str, argparse.ArgumentParser]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_every_option_has_help_showing_its_default() -> None:
    missing = []
    for name, parser in commands().items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = action.help or ""
            has_default = action.default not in (None, False, 0, "", argparse.SUPPRESS)
            if not text or (has_default and "default" not in text):
                missing.append(f"{name} {action.option_strings or action.dest}: {text!r}")
    assert missing == []


def test_window_units_are_documented_where_windows_are_taken() -> None:
    parser = commands()["top"]
    window = next(a for a in parser._actions if "--window" in a.option_strings)
    assert all(unit in window.help for unit in ("ms", "s", "m", "h", "d"))
    assert "ms, s, m, h or d" in commands()["append"].format_help()
