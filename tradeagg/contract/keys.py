"""Every Redis key name tradeagg uses, in one place.

Per-token keys wrap the address in braces (a Redis Cluster hash tag) so all
four keys of a token live in one slot. Service keys are ``tradeagg:…`` and
carry their own tag (one per shard, or per process) so that nothing
service-wide becomes one hot key on one cluster node.
"""

from __future__ import annotations

import zlib

PREFIX = "tradeagg"
STREAM_GROUP = "workers"


class TokenKeys:
    """The four contract keys of one token, in the order the Lua scripts take,
    its id index and its deep-check memo (same hash tag, so the same cluster slot)."""

    __slots__ = ("token", "trades", "indices", "aggregates", "last_update", "ids", "checked",
                 "makers", "buyers", "sellers", "high", "low", "buckets", "bhigh", "blow",
                 "pmakers", "ptraders")

    def __init__(self, token: str) -> None:
        self.token = token
        self.trades = f"token:{{{token}}}:trades"
        self.indices = f"token:{{{token}}}:indices"
        self.aggregates = f"token:{{{token}}}:aggregates"
        self.last_update = f"token:{{{token}}}:last_update"
        self.ids = f"{PREFIX}:{{{token}}}:ids"
        self.checked = f"{PREFIX}:{{{token}}}:checked"
        self.makers = f"{PREFIX}:{{{token}}}:makers"
        self.buyers = f"{PREFIX}:{{{token}}}:buyers"
        self.sellers = f"{PREFIX}:{{{token}}}:sellers"
        self.high = f"{PREFIX}:{{{token}}}:high"
        self.low = f"{PREFIX}:{{{token}}}:low"
        self.buckets = f"{PREFIX}:{{{token}}}:buckets"
        self.bhigh = f"{PREFIX}:{{{token}}}:bhigh"
        self.blow = f"{PREFIX}:{{{token}}}:blow"
        self.pmakers = f"{PREFIX}:{{{token}}}:pmakers"
        self.ptraders = f"{PREFIX}:{{{token}}}:ptraders"

    def all(self) -> list[str]:
        return [self.trades, self.indices, self.aggregates, self.last_update]

    def screener(self) -> list[str]:
        """The screener metrics' five sorted sets (``lua/lib/screener.lua``), in script order."""
        return [self.makers, self.buyers, self.sellers, self.high, self.low]

    def long(self) -> list[str]:
        """The bucketed windows' three sorted sets (``lua/lib/long.lua``), in script order:
        ``tradeagg:{ADDR}:buckets`` (one member per non-empty bucket, score its end),
        ``:bhigh`` / ``:blow`` (monotonic deques of bucket extremes)."""
        return [self.buckets, self.bhigh, self.blow]

    def prev_makers(self) -> list[str]:
        """``prev_makers``' two keys (``lua/lib/pmakers.lua``), in script order:
        ``tradeagg:{ADDR}:pmakers`` (a sorted set of the traders' thinned bucket
        points and their close pairs, per window) and ``:ptraders`` (a hash:
        trader digest -> its thinned bucket lists, and the structure's marker)."""
        return [self.pmakers, self.ptraders]


def token_keys(
    token: str, screener: bool = False, long: bool = False, prev_makers: bool = True
) -> list[str]:
    """The four contract keys, as ``read_window.lua`` takes them; with ``screener``
    (TRADEAGG_METRICS=full) its five screener sets after them; with ``long``
    (bucketed windows configured, or the previous windows' metrics kept: sums of
    the buckets, ``lua/lib/prev.lua``) the three sets of ``TokenKeys.long``; with
    ``screener`` the id index (whose "S" says whether the sets are kept for the list);
    with both (and ``prev_makers``), ``prev_makers``' two keys last (``TokenKeys.prev_makers``)."""
    k = TokenKeys(token)
    out = [*k.all(), *k.screener()] if screener else k.all()
    if long:
        out = [*out, *k.long()]
    if screener and long and prev_makers:
        return [*out, k.ids, *k.prev_makers()]
    return [*out, k.ids] if screener else out


def apply_keys(token: str) -> list[str]:
    """KEYS for one token of ``apply_trades.lua``: the four, the id index, the check memo.

    ``tradeagg:{ADDR}:ids`` is the id index (a Hash of buckets of 8-byte keys,
    ``lua/lib/ids.lua``) of the ids of the trades in the token's list, so that
    the same id is one trade whatever its ts or seq (CONTRACT §1).
    ``tradeagg:{ADDR}:checked`` is the deep check's memo (String: the
    last_update a check passed at, with the TTL the token's keys had left),
    which an apply deletes when it adds trades, rebuilds the token or adds a
    window to it. ``verify_token.lua`` takes the same keys.
    """
    k = TokenKeys(token)
    return [*k.all(), k.ids, k.checked]


def full_apply_keys(token: str) -> list[str]:
    """KEYS for one token of ``apply_trades.lua`` keeping the screener metrics
    (TRADEAGG_METRICS=full): ``apply_keys`` and the five sorted sets of
    ``lua/lib/screener.lua``: ``tradeagg:{ADDR}:makers`` / ``:buyers`` /
    ``:sellers`` (trader digest -> ts of its latest trade in the windows) and
    ``tradeagg:{ADDR}:high`` / ``:low`` (monotonic deques of ``"<ts> <price>"``)."""
    k = TokenKeys(token)
    return [*k.all(), k.ids, k.checked, *k.screener()]


def long_apply_keys(token: str, screener: bool, prev_makers: bool = True) -> list[str]:
    """KEYS for one token of ``apply_trades.lua`` with bucketed windows (CONTRACT §2c):
    ``full_apply_keys`` (or ``apply_keys`` without the screener's) and the three
    sorted sets of ``TokenKeys.long``; with the screener's (and ``prev_makers``:
    TRADEAGG_PREV_MAKERS), ``prev_makers``' two keys (``TokenKeys.prev_makers``: the
    previous windows' distinct traders; also passed with the previous windows off,
    so that the script deletes them)."""
    k = TokenKeys(token)
    if screener and prev_makers:
        return [*full_apply_keys(token), *k.long(), *k.prev_makers()]
    if screener:
        return [*full_apply_keys(token), *k.long()]
    return [*apply_keys(token), *k.long()]


INDICES_MATCH = "token:{*}:indices"  # SCAN pattern of every token's indices hash


def token_of_indices(key: str) -> str | None:
    """The address in a ``token:{ADDR}:indices`` key, or None for another key."""
    head, tail = "token:{", "}:indices"
    if key.startswith(head) and key.endswith(tail) and len(key) > len(head) + len(tail):
        return key[len(head) : -len(tail)]
    return None


def shard_of(token: str, shards: int) -> int:
    """Stable shard of a token: CRC-32 of its address modulo the shard count."""
    return zlib.crc32(token.encode("ascii", "replace")) % shards


def stream(shard: int) -> str:
    """The shard stream of raw trades (entries documented in ``codec``)."""
    return f"{PREFIX}:{{s{shard}}}:stream"


def active(shard: int) -> str:
    """Sorted set of the shard's live tokens, scored by their last_update (ms)."""
    return f"{PREFIX}:{{s{shard}}}:active"


def dead(shard: int) -> str:
    """Capped dead-letter stream: invalid input and poison entries, with reasons."""
    return f"{PREFIX}:{{s{shard}}}:dead"


def heartbeat(kind: str, name: str) -> str:
    """A process's heartbeat (string with TTL); one key per process."""
    return f"{PREFIX}:{{hb}}:{kind}:{name}"


def replication_mark(tag: str) -> str:
    """Marker written before ``WAIT`` (store/replication.py): string ``1``, one-hour TTL."""
    return f"{PREFIX}:{{{tag}}}:mark"


def janitor_lock() -> str:
    """Lock (SET NX PX) so that one janitor runs at a time across processes."""
    return f"{PREFIX}:{{janitor}}:lock"


def changes(shard: int) -> str:
    """Capped change feed of the shard (CONTRACT §6): entries ``token``, ``at``,
    ``last_update``, at most ``TRADEAGG_FEED_MAXLEN`` of them."""
    return f"{PREFIX}:{{s{shard}}}:changes"
