"""settings.mask, the one masking helper, and the log formatter that applies it to every line."""

from __future__ import annotations

import logging

import pytest

from tradeagg.logs import LogfmtFormatter
from tradeagg.settings import mask

CASES = [
    ("redis://u:pw@h:6379/0", "redis://***@h:6379/0"),
    ("rediss://:pw@h", "rediss://***@h"),
    ("redis:/admin:pw@host", "redis:/***@host"),
    ("rediss://u:p@ss/pw@127.0.0.1:1/0", "rediss://***@127.0.0.1:1/0"),
    ("admin:pw@host:1", "***@host:1"),
    ("REDIS_URL='redis:/admin:pw@host': bad", "REDIS_URL='redis:/***@host': bad"),
    ("url=redis://u:p=w'x@h", "url=redis://***@h"),
    ("redis://h:1/0?password=pw&db=1", "redis://h:1/0?password=***&db=1"),
    ("sasl.password=pw next", "sasl.password=*** next"),
    ('error="connect redis://u:pw@h failed"', 'error="connect redis://***@h failed"'),
    ("-----BEGIN PRIVATE KEY-----\npw\n-----END PRIVATE KEY-----!", "<PEM hidden>!"),
    ("cut -----BEGIN PRIVATE KEY-----\npw", "cut <PEM hidden>"),
    ("token=So111 partition=3 offset=4", "token=So111 partition=3 offset=4"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
]


@pytest.mark.parametrize(("text", "want"), CASES)
def test_mask(text: str, want: str) -> None:
    assert mask(text) == want


def test_every_log_line_is_masked_tracebacks_too() -> None:
    fmt = LogfmtFormatter()
    try:
        raise ValueError("cannot reach rediss://u:pw@h")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "url=%s", ("redis://:pw@h",), sys.exc_info()
        )
    line = fmt.format(record)
    assert "pw" not in line.replace("***", "") and "rediss://***@h" in line and "Traceback" in line
