"""Token and wallet addresses (CONTRACT §1): the one definition of what an address is.

An address is base58 ``[1-9A-HJ-NP-Za-km-z]{32,44}`` (Solana) or ``0x`` + 40
hex digits (EVM). It ends up inside Redis key names (``token:{ADDR}:…``), so
nothing else may pass: no brace, no space, no newline. The pattern is anchored
at its end (``\\Z``), so ``ADDRESS_RE.match`` and ``ADDRESS_RE.fullmatch`` agree.
"""

from __future__ import annotations

import re

ADDRESS_RE = re.compile(r"(?:[1-9A-HJ-NP-Za-km-z]{32,44}|0x[0-9a-fA-F]{40})\Z")


def is_address(value: object) -> bool:
    """True when ``value`` is a string holding exactly one address."""
    return isinstance(value, str) and ADDRESS_RE.match(value) is not None
