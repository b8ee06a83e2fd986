"""Deep integrity checks of tokens, off the hot path (requirement 8.4).

``apply_trades.lua`` checks a token cheaply on every call and rebuilds it from
its list when the check fails. Some damage needs the whole list to be seen:
an unparsable, misplaced or repeated element inside a window, or volumes and
prices that disagree with the list. ``verify_token.lua`` looks for those; a
token found corrupt gets its indices deleted, which the next ``apply_trades``
call (a trade, or the janitor's advance right after) detects and repairs by
rebuilding from the list. The janitor runs the check on the quiet tokens it
advances. A list longer than ``DEEP_STEP`` is checked in steps of that many
elements, one Lua call each (issue 11: bounded work per call), this module
carrying the cursor from step to step; the worker invalidates a token
whose apply failed on corrupt data, so that its re-read rebuilds it instead
of failing until the entry is dead-lettered. A passed check is remembered
(``tradeagg:{ADDR}:checked``) until an apply adds trades, rebuilds the token
or adds a window: a quiet token is read in full once, not on every pass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tradeagg.contract.keys import apply_keys
from tradeagg.engine.args import windows_arg
from tradeagg.logs import kv
from tradeagg.settings import Settings
from tradeagg.store.connection import text
from tradeagg.store.scripts import source

log = logging.getLogger("tradeagg.integrity")

DEEP_STEP = 1_000  # list elements one verify_token call reads; longer lists take steps
LONG = "long"  # verify_token's outcome for a list longer than one call reads


@dataclass
class Checks:
    """What one ``Integrity.check`` found: the corrupt tokens (invalidated) with their
    reasons, how many were read in full, and how many were skipped unchanged."""

    corrupt: dict[str, str] = field(default_factory=dict)
    checked: int = 0
    unchanged: int = 0
    touched: int = 0  # list elements the checks read


class Integrity:
    def __init__(self, client: Any, settings: Settings, max_entries: int = DEEP_STEP):
        self.client = client
        self.max_entries = max_entries
        self._windows = windows_arg(settings)
        self._verify = client.register_script(source("verify_token"))

    def check(self, tokens: Iterable[str]) -> Checks:
        """Deep-check ``tokens`` (one pipeline); ``Checks.corrupt`` are invalidated already
        (the caller's next apply rebuilds them); unchanged tokens are skipped."""
        return self._run(tokens, "check")

    def invalidate(self, tokens: Iterable[str]) -> None:
        """Make the next apply of ``tokens`` rebuild them from their lists."""
        self._run(tokens, "invalidate")

    def _run(self, tokens: Iterable[str], mode: str) -> Checks:
        tokens = list(tokens)
        out = Checks()
        if not tokens:
            return out
        pipe = self.client.pipeline(transaction=False)
        for token in tokens:
            self._verify(
                keys=apply_keys(token), args=[self._windows, self.max_entries, mode], client=pipe
            )
        for token, raw in zip(tokens, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(raw, Exception):
                log.error("integrity check failed %s", kv(token=token, error=str(raw)[:200]))
                continue
            outcome, reason, touched = text(raw[0]), text(raw[1]), int(raw[2])
            if outcome == LONG:
                outcome, reason, touched = self._check_in_steps(token, touched)
            out.touched += touched
            if outcome == "unchanged":
                out.unchanged += 1
            elif outcome in ("ok", "corrupt"):
                out.checked += 1
            if outcome == "corrupt":
                out.corrupt[token] = reason
                log.warning("token failed its deep check %s", kv(token=token, reason=reason))
        return out

    def _check_in_steps(self, token: str, touched: int) -> tuple[str, str, int]:
        """Deep-check a long list ``max_entries`` elements a call.

        Returns the last step's outcome ("ok", "corrupt", "unchanged" or "skipped"),
        its reason and the list elements all steps read. A token that changes
        between steps (a trade, a slide) is left for the next pass: its
        fingerprint differs and the script answers "skipped".
        """
        start, fingerprint, last, sums = 0, "", "", ""
        while True:
            raw = self._verify(
                keys=apply_keys(token),
                args=[self._windows, self.max_entries, "step", start, fingerprint, last, sums],
            )
            outcome, reason = text(raw[0]), text(raw[1])
            touched += int(raw[2])
            start = int(raw[3])
            fingerprint, last, sums = text(raw[4]), text(raw[5]), text(raw[6])
            if start < 0:
                return outcome, reason, touched
