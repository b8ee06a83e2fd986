"""The Python half of the aggregation engine: group, sort, batch, call Lua.

Trades reach the engine as list entries grouped by token. Each token's
entries are sorted by (ts, seq, id) and deduplicated here, so the Lua script
mostly appends; several tokens share one ``apply_trades`` call to spread its
fixed cost. On a Redis Cluster a call holds the tokens of one hash slot only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

import redis

from tradeagg.clock import now_ms
from tradeagg.contract.entry import TOKEN_RE, group_records
from tradeagg.contract.keys import (
    active,
    apply_keys,
    full_apply_keys,
    long_apply_keys,
    shard_of,
)
from tradeagg.engine.args import windows_arg
from tradeagg.errors import CorruptTokenError, RefusedWrite, StoreError
from tradeagg.settings import Settings
from tradeagg.store.connection import is_cluster, store_error, text
from tradeagg.store.refusal import code_in, refused
from tradeagg.store.scripts import Scripts

MAX_ENTRIES_PER_CALL = 4_000
# A long rebuild is cut into calls of bounded work (lua/lib/rebuild.lua, 1,000 list
# elements each): the engine calls again while a token answers REBUILDING, at most
# this many times (a 9,000,000-trade list takes 9,000).
REBUILD_CALLS = 10_000
# A read far ahead of a token's last_update has the engine slide the token first
# (``Engine.catch_up``), SLIDE_MAX list elements per walk and call (lua/lib/slide.lua):
# at most this many calls (a 9,000,000-trade list leaving its windows takes ~4,400).
CATCH_UP_CALLS = 10_000

__all__ = ["TOKEN_RE", "Engine", "TokenResult", "group_records", "now_ms", "windows_arg"]


class ApplyStatus(IntEnum):
    """Outcome of one token's apply; the Lua side is ``lua/lib/status.lua``."""

    OK = 0  # applied, or nothing to do
    REBUILT = 1  # the stored state failed its checks and was rebuilt from the list
    CORRUPT = 2  # damage met mid-apply: the token failed; invalidate it to have it rebuilt
    FAILED = 3  # any other error: the token failed
    BEHIND = 4  # applied; the windows moved part of the way (bounded work): advance again
    REBUILDING = 5  # a step of a long rebuild, no trade applied: the engine calls again


class RawResult(NamedTuple):
    """One token's fields in ``apply_trades.lua``'s reply, in order (``R`` in lib/status.lua)."""

    status: int
    applied: int
    duplicates: int
    late: int
    over_capacity: int
    rebuilt: int
    unparsable: int
    last_update: str
    touched: int
    scanned: int
    detail: str


RESULT_FIELDS = len(RawResult._fields)


@dataclass(frozen=True, slots=True)
class TokenResult:
    """What one token's apply did."""

    token: str
    applied: int = 0
    duplicates: int = 0
    late: int = 0
    over_capacity: int = 0
    rebuilt: int = -1  # -1: not rebuilt; else list elements dropped while rebuilding
    reason: str = ""  # why it was rebuilt, or why it failed
    last_update: int | None = None
    status: ApplyStatus = ApplyStatus.OK
    unparsable: int = 0  # entries the script could not parse (dropped)
    touched: int = 0  # list elements the call read or wrote in Lua
    scanned: int = 0  # list elements LINSERT scanned in C to find its pivots

    @property
    def failed(self) -> bool:
        """The trades were not applied (REBUILDING: not yet; never acknowledge them)."""
        return self.status in (ApplyStatus.CORRUPT, ApplyStatus.FAILED, ApplyStatus.REBUILDING)

    @property
    def rebuilding(self) -> bool:
        """A step of a long rebuild was taken; call again with the same trades."""
        return self.status is ApplyStatus.REBUILDING

    @property
    def behind(self) -> bool:
        """Applied, but last_update stopped short of the instant: advance the token again."""
        return self.status is ApplyStatus.BEHIND

    @property
    def corrupt(self) -> bool:
        """The apply met damage the cheap checks missed: invalidate the token."""
        return self.status is ApplyStatus.CORRUPT

    def error(self) -> StoreError | None:
        """The failure as a typed error (CorruptTokenError for damage), or None."""
        if self.status is ApplyStatus.CORRUPT:
            return CorruptTokenError(f"token {self.token}: {self.reason}")
        if self.status is ApplyStatus.FAILED:
            return StoreError(f"apply of token {self.token} failed: {self.reason}")
        if self.status is ApplyStatus.REBUILDING:
            return StoreError(f"token {self.token} is still being rebuilt: {self.reason}")
        return None

    def raise_for_status(self) -> TokenResult:
        """Raise the failure (CorruptTokenError, StoreError); else return self."""
        error = self.error()
        if error is not None:
            raise error
        return self


def token_result(token: str, raw: RawResult) -> TokenResult:
    """A TokenResult from one token's decoded fields."""
    last_update = text(raw.last_update)
    return TokenResult(
        token=token,
        applied=int(raw.applied),
        duplicates=int(raw.duplicates),
        late=int(raw.late),
        over_capacity=int(raw.over_capacity),
        rebuilt=int(raw.rebuilt),
        reason=text(raw.detail),
        last_update=int(last_update) if last_update else None,
        status=ApplyStatus(int(raw.status)),
        unparsable=int(raw.unparsable),
        touched=int(raw.touched),
        scanned=int(raw.scanned),
    )


def _refused_in(results: list[TokenResult]) -> RefusedWrite | None:
    """A refusal a token's apply met inside the script (its pcall turned it into a reason)."""
    for r in results:
        code = code_in(r.reason) if r.failed else None
        if code is not None:
            return RefusedWrite(code, f"apply_trades refused: {r.reason[:200]}")
    return None


class Engine:
    """Applies grouped trades to Redis through ``apply_trades.lua``."""

    def __init__(
        self,
        client: Any,
        settings: Settings,
        scripts: Scripts | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.client = client
        self.settings = settings
        self.scripts = scripts or Scripts(client)
        self.clock = clock
        self._windows = windows_arg(settings)
        self._cluster = is_cluster(client)

    @property
    def cluster(self) -> bool:
        return self._cluster

    def calls(self, groups: dict[str, list[str]]) -> list[list[tuple[str, list[str]]]]:
        """Split tokens into Lua calls: bounded tokens and entries, one slot on a cluster."""
        per = self.settings.tokens_per_call
        buckets: dict[int, list[tuple[str, list[str]]]] = {}
        for token, entries in groups.items():
            slot = self.client.keyslot(f"{{{token}}}") if self._cluster else 0
            buckets.setdefault(slot, []).append((token, entries))
        out: list[list[tuple[str, list[str]]]] = []
        for items in buckets.values():
            call: list[tuple[str, list[str]]] = []
            size = 0
            for item in items:
                if call and (len(call) >= per or size + len(item[1]) > MAX_ENTRIES_PER_CALL):
                    out.append(call)
                    call, size = [], 0
                call.append(item)
                size += len(item[1])
            if call:
                out.append(call)
        return out

    def apply_call(
        self, call: list[tuple[str, list[str]]], now: int | None = None
    ) -> list[TokenResult]:
        """One atomic Lua call for the tokens in ``call``. Raises StoreError if Redis fails.

        In the same round trip the tokens are stamped (wall ms) in their shard's
        active index, which the janitor and ``top`` read instead of scanning keys.
        Tokens answering REBUILDING are called again (``finish_rebuilds``).
        """
        return self.finish_rebuilds(call, self._apply_once(call, now), now)

    def finish_rebuilds(
        self, call: list[tuple[str, list[str]]], results: list[TokenResult], now: int | None
    ) -> list[TokenResult]:
        """Call the tokens answering REBUILDING again, with their trades, until done.

        Each call takes one bounded step of the rebuild (other clients run between
        them) and the one that finishes it applies the trades. A token still
        rebuilding after REBUILD_CALLS calls stays REBUILDING, which counts as
        failed: its trades are not acknowledged.
        """
        results = list(results)
        for _ in range(REBUILD_CALLS):
            pending = [i for i, r in enumerate(results) if r.rebuilding]
            if not pending:
                break
            again = self._apply_once([call[i] for i in pending], now)
            for i, r in zip(pending, again, strict=True):
                results[i] = r
        return results

    def _apply_once(
        self, call: list[tuple[str, list[str]]], now: int | None = None
    ) -> list[TokenResult]:
        """One atomic Lua call for ``call`` and its active-index stamps."""
        touched: dict[int, dict[str, int]] = {}
        try:
            pipe = self.client.pipeline(transaction=False)
            self._queue(pipe, call, now, touched)
            for shard, members in touched.items():
                pipe.zadd(active(shard), members)
            raw = pipe.execute()[0]
        except redis.RedisError as exc:
            raise store_error("apply_trades failed", exc) from None
        results = self._results(call, raw)
        refusal = _refused_in(results)
        if refusal is not None:
            raise refusal
        return results

    def apply_calls(
        self,
        calls: list[list[tuple[str, list[str]]]],
        now: int | None = None,
        *,
        catch_up: bool = False,
        windows: str | None = None,
    ) -> list[list[TokenResult] | StoreError]:
        """Many Lua calls (each atomic) and their active-index stamps in one pipeline.

        On a cluster a call holds the tokens of one slot, which rarely meet, so
        one pipeline per call is a round trip per token; here redis-py sends
        each node its share at once. A call whose script or stamp failed comes
        back as a StoreError in its place (its trades may or may not be applied:
        re-applying them is safe, the script drops duplicates). ``catch_up``:
        see ``catch_up`` (the clock, and no stamps); ``windows`` (``label:ms,…``)
        instead of the configured windows.
        """
        if not calls:
            return []
        touched: dict[int, dict[str, int]] = {}
        try:
            pipe = self.client.pipeline(transaction=False)
            for call in calls:
                self._queue(pipe, call, now, touched, catch_up=catch_up, windows=windows)
            for shard, members in touched.items():
                pipe.zadd(active(shard), members)
            raws = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            error = store_error("apply_trades failed", exc)
            return [error if isinstance(error, StoreError) else StoreError(str(error))] * len(calls)
        unstamped = {
            shard
            for shard, raw in zip(touched, raws[len(calls) :], strict=True)
            if isinstance(raw, Exception)
        }
        out: list[list[TokenResult] | StoreError] = []
        for call, raw in zip(calls, raws, strict=False):
            if isinstance(raw, Exception):
                out.append(
                    refused("apply_trades failed", raw) or StoreError(f"apply_trades failed: {raw}")
                )
            elif any(shard_of(t, self.settings.shards) in unstamped for t, _ in call):
                stamp = next(r for r in raws[len(calls) :] if isinstance(r, Exception))
                out.append(
                    refused("stamping the active index failed", stamp)
                    or StoreError("stamping the active index failed")
                )
            else:
                results = self._results(call, raw)
                refusal = _refused_in(results)
                if refusal is None and not catch_up and any(r.rebuilding for r in results):
                    try:
                        results = self.finish_rebuilds(call, results, now)
                    except StoreError as exc:
                        out.append(exc)
                        continue
                out.append(refusal or results)
        return out

    def _queue(
        self,
        pipe: Any,
        call: list[tuple[str, list[str]]],
        now: int | None,
        touched: dict[int, dict[str, int]],
        *,
        catch_up: bool = False,
        windows: str | None = None,
    ) -> None:
        """Queue the ``apply_trades`` call on ``pipe``; note its tokens' stamps in ``touched``."""
        keys: list[str] = []
        clock = (now if now is not None else self.clock(), "wall") if catch_up else None
        args: list[Any] = [
            *(clock or self._clock_args(now)),
            windows or self._windows,
            self.settings.max_token_trades,
        ]
        screener = self.settings.metrics == "full"
        for token, entries in call:
            if self.settings.long_windows or self.settings.prev_metrics:  # (lua/lib/prev.lua)
                keys.extend(long_apply_keys(token, screener, self.settings.prev_makers))
            else:
                keys.extend(full_apply_keys(token) if screener else apply_keys(token))
            args.append("\n".join(entries))
        self.scripts.apply_trades(keys=keys, args=args, client=pipe)
        if catch_up:
            return  # a reader's catch-up: the token's activity is not its business
        stamp = now_ms()
        for token, _entries in call:
            touched.setdefault(shard_of(token, self.settings.shards), {})[token] = stamp

    def _clock_args(self, now: int | None) -> tuple[int, str]:
        """ARGV[1..2] of ``apply_trades.lua``: an instant and how the script takes it.

        Live (``now`` None, wall clock): this process' clock, which the script
        clamps to Redis' own TIME, so a worker whose clock runs fast cannot make
        the others drop valid trades as late (one clock, CONTRACT §2). An
        explicit ``now`` (tests, tools, the janitor's given instant) is used as
        is ("at"); the event clock ignores wall time anyway.
        """
        if self.settings.clock == "event":
            return (self.clock() if now is None else now), "event"
        if now is None:
            return self.clock(), "wall"
        return now, "at"

    def _results(self, call: list[tuple[str, list[str]]], raw: list[Any]) -> list[TokenResult]:
        if len(raw) != RESULT_FIELDS * len(call):
            raise StoreError(
                f"apply_trades answered {len(raw)} values for {len(call)} tokens "
                f"({RESULT_FIELDS} each): script and engine disagree"
            )
        return [
            token_result(token, RawResult(*raw[RESULT_FIELDS * i : RESULT_FIELDS * (i + 1)]))
            for i, (token, _entries) in enumerate(call)
        ]

    def apply(self, groups: dict[str, list[str]], now: int | None = None) -> list[TokenResult]:
        """Apply every token in ``groups``, call after call (tests, tools, reclaim)."""
        out: list[TokenResult] = []
        for call in self.calls(groups):
            out.extend(self.apply_call(call, now))
        return out

    def apply_records(self, records: Iterable[str], now: int | None = None) -> list[TokenResult]:
        groups, _bad = group_records(records)
        return self.apply(groups, now)

    def catch_up(
        self, tokens: Iterable[str], at: int, windows: Mapping[str, str] | None = None
    ) -> dict[str, TokenResult]:
        """Slide ``tokens`` toward ``at`` without trades, in calls of bounded work.

        What a reader does for a read too far ahead of a token's last_update
        (``read_window.lua`` answers "behind" rather than slide past SLIDE_MAX
        elements a walk): the janitor's own step, but to ``at`` and never past
        Redis' clock (the "wall" clock clamps ``at`` to TIME whatever
        ``settings.clock``), so no last_update lies in the future and later
        trades are judged late exactly as if the janitor had run. Calls again
        while a token answers BEHIND (or REBUILDING: a rebuild step), at most
        CATCH_UP_CALLS times; tokens are not stamped in the active index.
        ``windows`` gives a token's windows (``label:ms,…``: those it carries,
        so that a reader configured with others adds none); the configured
        ones otherwise. Raises the first failure (StoreError, CorruptTokenError).
        """
        pending, out = list(dict.fromkeys(tokens)), {}
        specs = windows or {}
        for _ in range(CATCH_UP_CALLS):
            if not pending:
                break
            by_spec: dict[str, list[str]] = {}
            for t in pending:
                by_spec.setdefault(specs.get(t) or self._windows, []).append(t)
            for spec, group in by_spec.items():
                calls = self.calls({t: [] for t in group})
                for outcome in self.apply_calls(calls, at, catch_up=True, windows=spec):
                    if isinstance(outcome, StoreError):
                        raise outcome
                    for r in outcome:
                        out[r.token] = r
            pending = [t for t in pending if out[t].behind or out[t].rebuilding]
        for r in out.values():
            if r.status in (ApplyStatus.CORRUPT, ApplyStatus.FAILED):
                r.raise_for_status()
        return out

    def advance(self, tokens: Iterable[str], now: int | None = None) -> list[TokenResult]:
        """Slide the windows of ``tokens`` to now without new trades (the janitor's job)."""
        return self.apply({t: [] for t in tokens}, now)
