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
of failing until the entry is dead-lettered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from tradeagg.contract.keys import token_keys
from tradeagg.engine.args import windows_arg
from tradeagg.logs import kv
from tradeagg.settings import Settings
from tradeagg.store.connection import text
from tradeagg.store.scripts import source

log = logging.getLogger("tradeagg.integrity")

DEEP_STEP = 1_000  # list elements one verify_token call reads; longer lists take steps
LONG = "~long"  # verify_token's answer for a list longer than one call reads


class Integrity:
    def __init__(self, client: Any, settings: Settings, max_entries: int = DEEP_STEP):
        self.client = client
        self.max_entries = max_entries
        self._windows = windows_arg(settings)
        self._verify = client.register_script(source("verify_token"))

    def check(self, tokens: Iterable[str]) -> dict[str, str]:
        """Deep-check ``tokens`` (one pipeline); returns {token: reason} of the corrupt ones.

        Those are invalidated already; the caller's next apply rebuilds them.
        """
        return self._run(tokens, "check")

    def invalidate(self, tokens: Iterable[str]) -> None:
        """Make the next apply of ``tokens`` rebuild them from their lists."""
        self._run(tokens, "invalidate")

    def _run(self, tokens: Iterable[str], mode: str) -> dict[str, str]:
        tokens = list(tokens)
        if not tokens:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for token in tokens:
            self._verify(
                keys=token_keys(token), args=[self._windows, self.max_entries, mode], client=pipe
            )
        found: dict[str, str] = {}
        for token, raw in zip(tokens, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(raw, Exception):
                log.error("integrity check failed %s", kv(token=token, error=str(raw)[:200]))
                continue
            reason = text(raw)
            if reason == LONG:
                reason = self._check_in_steps(token) if mode == "check" else ""
            if reason:
                found[token] = reason
                if mode == "check":
                    log.warning("token failed its deep check %s", kv(token=token, reason=reason))
        return found

    def _check_in_steps(self, token: str) -> str:
        """Deep-check a long list ``max_entries`` elements a call; the reason found, or "".

        A token that changes between steps (a trade, a slide) is left for the
        next pass: its fingerprint differs and the script answers without reason.
        """
        start, fingerprint, last, sums = 0, "", "", ""
        while True:
            reason, start, fingerprint, last, sums = (
                text(x) if isinstance(x, bytes) else x
                for x in self._verify(
                    keys=token_keys(token),
                    args=[self._windows, self.max_entries, "step", start, fingerprint, last, sums],
                )
            )
            if int(start) < 0:
                return reason
