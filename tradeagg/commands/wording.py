"""Library errors worded for the command line: a read's parameter becomes its ``--flag``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tradeagg.errors import BadQuery, UsageError


def flag_error(exc: BadQuery) -> UsageError:
    """``window '7m' is not configured`` -> ``--window '7m' is not configured``."""
    return UsageError(f"--{exc.name.replace('_', '-')} {str(exc)[len(exc.name) + 1 :]}")


@contextmanager
def as_flags() -> Iterator[None]:
    """Re-raise a ``BadQuery`` from the block as the command's usage error."""
    try:
        yield
    except BadQuery as exc:
        raise flag_error(exc) from None
