"""The janitor: slides quiet tokens' windows to now and trims shard streams.

Readers are exact without it (``read_window.lua`` slides in memory), but the
stored aggregates of a token that stopped trading would otherwise stand still
at its last trade, and the shard streams would grow forever. One janitor runs
at a time across all worker processes (a lock with a TTL, taken and renewed
only by its holder), every ``settings.maintenance_interval`` seconds:

* per shard, the tokens stamped in ``keys.active(shard)`` more than
  ``stale_after`` s ago are advanced (``Engine.advance`` re-stamps them and
  rewrites ``last_update``); a token whose keys have expired is removed from
  the index, so the index holds live tokens only;
* those tokens get a deep integrity check first (``integrity.py``), so damage
  the per-call checks cannot see is repaired within one pass; a token nothing
  was added to since its last passed check is skipped (``janitor.checks_skipped``);
* each shard stream is trimmed up to the oldest entry still needed
  (``trim_stream.lua``: lowest of every group's last-delivered id and oldest
  pending id, read and trimmed in one atomic step).

Every Redis step is retried with ``tradeagg.retry``; the janitor never gives
up on its own, and the Service supervisor restarts it if anything escapes.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tradeagg.clock import now_ms
from tradeagg.contract import keys
from tradeagg.engine.apply import Engine, TokenResult
from tradeagg.engine.integrity import Integrity
from tradeagg.errors import RefusedWrite, StoreError
from tradeagg.logs import kv
from tradeagg.observe.metrics import Metrics
from tradeagg.runtime import retry
from tradeagg.runtime.pressure import Pressure
from tradeagg.settings import Settings
from tradeagg.store.connection import text
from tradeagg.store.scripts import LUA_DIR

log = logging.getLogger("tradeagg.janitor")

PAGE = 1_000  # stale tokens read from the index at once
# stale tokens deep-checked, then advanced, per round trip: Redis runs what one client's
# pipeline holds (about 16 KB of it) before it serves another, so a page-long pipeline of
# Lua calls (1-3 ms each) held every worker, reader and PING up for a hundred ms and more
TRIP = 16
# a token answering BEHIND (each call slides its windows by a bounded number of
# list elements, lib/slide.lua) is advanced again, at most this many times a pass
CATCH_UP_CALLS = 1_000


@dataclass
class JanitorRun:
    """What one pass did (also returned to tests)."""

    refreshed: int = 0
    expired: int = 0
    trimmed: int = 0
    rebuilt: int = 0
    failed: int = 0
    checked: int = 0  # tokens deep-checked (read in full)
    unchanged: int = 0  # deep checks skipped: nothing added since the last passed one


class Janitor:
    """One per worker process; only the lock holder does the work."""

    def __init__(
        self,
        client: Any,
        engine: Engine,
        settings: Settings,
        metrics: Metrics,
        wait: Callable[[float], bool],
        stopping: Callable[[], bool],
        holder: str = "",
        on_refreshed: Callable[[list[TokenResult]], None] | None = None,
    ) -> None:
        self.on_refreshed = on_refreshed  # told of committed refreshes (the change feed)
        self.client = client
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.wait = wait  # sleeps; True when the process is stopping
        self.stopping = stopping
        self.holder = f"{holder or 'janitor'}-{uuid.uuid4().hex[:12]}"
        self.lock_ms = int(max(3 * settings.maintenance_interval, 5.0) * 1000)
        self._lock = client.register_script((LUA_DIR / "janitor_lock.lua").read_text())
        self._trim = client.register_script((LUA_DIR / "trim_stream.lua").read_text())
        self.integrity = Integrity(client, settings)
        self.pressure = Pressure(metrics)  # the worker hands over its process-wide one

    def run(self) -> None:
        """Every interval: hold the lock, then one pass. Returns when stopping."""
        try:
            while not self.stopping():
                if self._retry("lock", self.hold) and not self.stopping():
                    self.run_once()
                if self.wait(self.settings.maintenance_interval):
                    break
        finally:
            self.release()

    def hold(self) -> bool:
        """Take the lock if free, renew it if ours; False if another process holds it."""
        return bool(self._lock(keys=[keys.janitor_lock()], args=[self.holder, self.lock_ms]))

    def release(self) -> None:
        try:
            self._lock(keys=[keys.janitor_lock()], args=[self.holder, 0])
        except Exception as exc:  # best effort: the TTL frees it anyway
            log.info("janitor lock not released %s", kv(error=str(exc)[:200]))

    def run_once(self, now: int | None = None) -> JanitorRun:
        """One pass over every shard: advance stale tokens, drop expired ones, trim."""
        t0 = time.perf_counter()
        out = JanitorRun()
        for shard in range(self.settings.shards):
            if self.stopping():
                break
            self._advance_shard(shard, out, now)
            trimmed, cut = self._retry("trim", self._trim, keys=[keys.stream(shard)])
            out.trimmed += int(trimmed)
            if int(trimmed):
                log.debug("stream trimmed %s", kv(shard=shard, entries=trimmed, minid=cut))
        ms = (time.perf_counter() - t0) * 1000
        m = self.metrics
        m.incr("janitor.runs")
        m.timing("janitor.duration", ms)
        m.incr("janitor.refreshed", out.refreshed)
        m.incr("janitor.expired", out.expired)
        m.incr("stream.trimmed", out.trimmed)
        m.incr("janitor.checked", out.checked)
        m.incr("janitor.checks_skipped", out.unchanged)
        log.info(
            "janitor pass %s",
            kv(
                refreshed=out.refreshed,
                expired=out.expired,
                trimmed=out.trimmed,
                rebuilt=out.rebuilt,
                failed=out.failed,
                checked=out.checked,
                unchanged=out.unchanged,
                ms=f"{ms:.1f}",
            ),
        )
        return out

    def _advance_shard(self, shard: int, out: JanitorRun, now: int | None) -> None:
        """Advance the shard's stale tokens, page by page, until none is left."""
        index = keys.active(shard)
        cut = now_ms() - int(self.settings.stale_after * 1000)  # stale: stamped at or before it
        skip: set[str] = set()  # failed this pass: not retried until the next one
        done: set[str] = set()
        while not self.stopping():
            raw = self._retry(
                "stale", self.client.zrangebyscore, index, "-inf", cut, 0, PAGE + len(skip)
            )
            tokens = [t for t in (text(x) for x in raw) if t not in skip]
            if not tokens or done.issuperset(tokens):
                return  # the second test guards against a wall clock stepping back
            done.update(tokens)
            for i in range(0, len(tokens), TRIP):
                if self.stopping():
                    return
                self._advance_part(shard, tokens[i : i + TRIP], out, now, skip)

    def _advance_part(
        self, shard: int, tokens: list[str], out: JanitorRun, now: int | None, skip: set[str]
    ) -> None:
        """Deep-check and advance a few stale tokens (a round trip each, at most TRIP calls)."""
        checks = self._retry("verify", self.integrity.check, tokens)
        out.checked += checks.checked
        out.unchanged += checks.unchanged
        results = self._advance(tokens, now)
        broken = [t for t, r in results.items() if r.corrupt]
        if broken:  # damage the cheap checks missed: have the list rebuilt, once
            self._retry("invalidate", self.integrity.invalidate, broken)
            results.update(self._advance(broken, now))
        if self.on_refreshed is not None:
            self.on_refreshed(list(results.values()))
        gone = []
        for token in tokens:
            r = results.get(token)
            if r is None or r.failed:
                skip.add(token)
                out.failed += 1
            elif r.last_update is None:
                gone.append(token)
            else:
                out.refreshed += 1
                if r.rebuilt >= 0:
                    out.rebuilt += 1
                    self.metrics.incr("tokens.rebuilt")
                    log.warning(
                        "token state rebuilt from its list %s",
                        kv(shard=shard, token=token, reason=r.reason, dropped=r.rebuilt),
                    )
        if gone:
            out.expired += self._retry("expire", self._forget, shard, gone)

    def _advance(self, tokens: list[str], now: int | None) -> dict[str, TokenResult]:
        """Advance ``tokens`` until none is BEHIND; failed calls are logged and left out.

        A long slide (a token quiet for minutes) is cut into calls of bounded
        work: each leaves a consistent state, and other clients run between them.
        """
        results = self._advance_once(tokens, now)
        for _ in range(CATCH_UP_CALLS):
            behind = [t for t, r in results.items() if r.behind]
            if not behind or self.stopping():
                break
            results.update(self._advance_once(behind, now))
        return results

    def _advance_once(self, tokens: list[str], now: int | None) -> dict[str, TokenResult]:
        """Advance ``tokens`` (one pipeline); failed calls are logged and left out."""
        calls = self.engine.calls({t: [] for t in tokens})
        results: dict[str, TokenResult] = {}
        outcomes = self._retry("advance", self.engine.apply_calls, calls, now)
        for call, outcome in zip(calls, outcomes, strict=True):
            if isinstance(outcome, RefusedWrite):  # backpressure: the next pass retries
                self.pressure.refused("janitor advance", outcome)
                continue
            if isinstance(outcome, StoreError):
                log.error("advance failed %s", kv(tokens=len(call), error=str(outcome)[:200]))
                continue
            for r in outcome:
                if r.failed:
                    log.error("advance of token failed %s", kv(token=r.token, reason=r.reason))
                results[r.token] = r
        return results

    def _forget(self, shard: int, tokens: list[str]) -> int:
        """Drop tokens without state from the index, then put back any that just traded.

        A trade applied between the advance and the ZREM stamps its token
        again after its Lua call; if that stamp came first, the EXISTS below
        sees the new state and restores the entry.
        """
        index = keys.active(shard)
        self.client.zrem(index, *tokens)
        pipe = self.client.pipeline(transaction=False)
        for token in tokens:
            pipe.exists(keys.TokenKeys(token).last_update)
        back = {t: now_ms() for t, e in zip(tokens, pipe.execute(), strict=True) if e}
        if back:
            self.client.zadd(index, back)
        return len(tokens) - len(back)

    def _retry(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return retry.call(log, f"janitor.{what}", fn, *args, until=self.stopping, **kwargs)
