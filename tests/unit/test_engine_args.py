"""Read arguments (engine/args.py) and their wording for the command line (commands/wording.py)."""

from __future__ import annotations

import argparse

import pytest

from tradeagg.commands.demo import columns
from tradeagg.commands.top import _positive
from tradeagg.commands.wording import as_flags, flag_error
from tradeagg.contract.address import is_address
from tradeagg.engine.args import (
    at_arg,
    check_at,
    check_choice,
    check_limit,
    check_window,
    windows_arg,
)
from tradeagg.engine.rank import default_window
from tradeagg.errors import BadQuery, PastInstant, UsageError
from tradeagg.settings import Settings, parse_windows


def settings(spec: str = "5m,1m,1h") -> Settings:
    return Settings(windows=parse_windows(spec))


def test_windows_and_at_as_the_scripts_take_them():
    seed = Settings(windows=parse_windows("5m,1m,1h"), metrics="seed")
    assert windows_arg(seed) == "1m:60000,5m:300000,1h:3600000"
    # with the previous windows' metrics (full, the bucket divides every window): r too
    assert windows_arg(settings()) == "1m:60000,5m:300000,1h:3600000|;60000"
    assert windows_arg(settings("30s,250ms")) == "250ms:250,30s:30000"  # 1m divides neither
    assert at_arg(None) == "" and at_arg(0) == 0 and at_arg(1_700_000_000_000) == 1_700_000_000_000


@pytest.mark.parametrize("at", [None, 0, 1, 2**53 - 1])
def test_instants_that_pass(at):
    assert check_at(at) == at


@pytest.mark.parametrize("at", [-1, 2**53, 10**20])
def test_instants_that_do_not(at):
    with pytest.raises(BadQuery) as info:
        check_at(at)
    assert (info.value.name, info.value.value) == ("at", at)
    assert str(info.value) == f"at {at} is not an epoch-millisecond instant"


def test_window_choice_and_limit():
    s = settings()
    assert check_window(s, "5m") == "5m"
    with pytest.raises(BadQuery, match=r"^window '7m' is not configured \(TRADEAGG_WINDOWS: "):
        check_window(s, "7m")
    assert check_choice("by", "buys", ("volume", "buys")) == "buys"
    with pytest.raises(BadQuery, match=r"^by 'hype' is not one of volume, buys$"):
        check_choice("by", "hype", ("volume", "buys"))
    assert check_limit(None) is None and check_limit(1) == 1
    with pytest.raises(BadQuery, match=r"^limit 0 must be at least 1$"):
        check_limit(0)


def test_library_errors_are_worded_with_flags_for_the_cli():
    assert str(flag_error(BadQuery("window", "7m", "is not configured"))) == (
        "--window '7m' is not configured"
    )
    assert str(flag_error(BadQuery("max_idle", 5, "must be positive"))) == (
        "--max-idle 5 must be positive"
    )
    past = PastInstant(10, 20, "TOKEN", newest=30)
    assert str(past) == "at 10 is earlier than last_update 20 of token TOKEN"
    assert (past.at, past.last_update, past.token, past.newest) == (10, 20, "TOKEN", 30)
    with pytest.raises(UsageError) as info:
        with as_flags():
            raise past
    assert type(info.value) is UsageError
    assert str(info.value) == "--at 10 is earlier than last_update 20 of token TOKEN"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("So11111111111111111111111111111111111111112", True),
        ("0x" + "aB" * 20, True),
        ("So11111111111111111111111111111111111111112\n", False),
        ("So1111111111111111111111111111111111111111}", False),
        ("0" * 40, False),
        ("0x" + "a" * 39, False),
        (None, False),
    ],
)
def test_address(value, ok):
    assert is_address(value) is ok


def test_command_defaults_and_positive_numbers():
    assert default_window(settings()) == "5m"
    assert default_window(settings("1m,2m,1h")) == "2m"
    assert default_window(settings("10s,1m")) == "1m"
    assert columns(settings()) == ("1m", "5m", "1h")
    assert columns(settings("10s,2m,4h")) == ("10s", "2m", "4h")
    assert _positive("3") == 3
    with pytest.raises(argparse.ArgumentTypeError):
        _positive("0")
