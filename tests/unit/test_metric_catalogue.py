"""The metric catalogue, the code and docs/metrics.md agree: no counter sent but undocumented."""

from __future__ import annotations

import re
from pathlib import Path

from tradeagg.observe.catalogue import COUNTERS, WARNINGS

ROOT = Path(__file__).resolve().parents[2]


def counted_in_code() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tradeagg").rglob("*.py"):
        names |= set(re.findall(r"\.incr\(\s*\"([a-z_.]+)\"", path.read_text()))
    return names


def test_every_counter_the_code_sends_is_catalogued():
    missing = counted_in_code() - set(COUNTERS)
    assert not missing, f"add to tradeagg/observe/catalogue.py and docs/metrics.md: {missing}"


def test_every_catalogued_name_is_documented():
    doc = (ROOT / "docs" / "metrics.md").read_text()
    for name in COUNTERS:
        documented = f"`{name}`" in doc or (
            name.startswith("warnings.") and "`warnings.<name>`" in doc
        )
        assert documented, f"docs/metrics.md does not describe {name}"
    for name in WARNINGS:
        assert f"| `{name}` |" in doc, f"docs/metrics.md has no row for warning {name}"
