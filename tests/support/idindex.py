"""The id index ``tradeagg:{A}:ids`` as tests read it (layout: ``lua/lib/ids.lua``)."""

from __future__ import annotations

import hashlib
from typing import Any

from tradeagg.contract.keys import TokenKeys

KEY_BYTES = 8


def id_key(ident: str) -> bytes:
    """An id's key in the index: the first 64 bits of SHA-1(id)."""
    return hashlib.sha1(ident.encode("ascii")).digest()[:KEY_BYTES]


def bucket_of(key: bytes, buckets: int) -> int:
    """Where linear hashing puts ``key`` among ``buckets``: by its first 16 bits."""
    h, top = key[0] * 256 + key[1], 1 << (buckets.bit_length() - 1)
    a = h % (2 * top)
    return a if a < buckets else h % top


def id_index(client: Any, token: str) -> tuple[int, list[bytes]]:
    """The index's stated count ("n") and every key its buckets hold (0, [] when absent);
    asserts that every key sits in its bucket."""
    fields = client.hgetall(TokenKeys(token).ids)
    if not fields:
        return 0, []
    buckets = int(fields[b"N"])
    marker = b"S" in fields  # the screener's sets are kept (lua/lib/ids.lua)
    assert len(fields) == buckets + 2 + marker, f"{len(fields)} fields for {buckets} buckets"
    keys: list[bytes] = []
    for b in range(buckets):
        value = fields[str(b).encode()]
        assert len(value) % KEY_BYTES == 0, f"bucket {b} holds {len(value)} bytes"
        held = [value[i : i + KEY_BYTES] for i in range(0, len(value), KEY_BYTES)]
        assert all(bucket_of(k, buckets) == b for k in held), f"a key of bucket {b} is misplaced"
        keys += held
    return int(fields[b"n"]), keys
