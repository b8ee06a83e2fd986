"""A realistic synthetic trade feed: Zipf token popularity, bursts, pumps and dumps.

Used by ``produce --synthetic``, ``bench`` and ``demo``. Deterministic for a
seed. Trades look like Solana DEX trades: base58 mints and wallets, ids of the
form ``<88-char signature>:<instruction>``, lognormal quote sizes, a random
walk of prices with occasional pumps (buy-heavy, rising) and dumps.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import time
from collections.abc import Iterator
from decimal import Decimal

from tradeagg.clock import now_ms
from tradeagg.contract.trade import Trade

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(B58) for _ in range(n))


class SyntheticFeed:
    """Endless synthetic trades over ``tokens`` tokens."""

    def __init__(
        self, tokens: int = 2000, seed: int = 1, zipf_s: float = 1.1, traders: int = 5000
    ) -> None:
        self.rng = random.Random(seed)
        self.tokens = [b58(self.rng, 44) for _ in range(tokens)]
        self.traders = [b58(self.rng, 44) for _ in range(traders)]
        weights = [1.0 / (k + 1) ** zipf_s for k in range(tokens)]
        self._cum = list(itertools.accumulate(weights))
        self._prices = [10 ** self.rng.uniform(-9, -3) for _ in range(tokens)]
        self._trend = [0.0] * tokens  # > 0 pump, < 0 dump
        self._sig = b58(self.rng, 80)
        self._n = 0
        self._last_ts = 0
        self._seq = 0

    def _token_index(self) -> int:
        return bisect.bisect_left(self._cum, self.rng.random() * self._cum[-1])

    def trade(self, ts: int) -> Trade:
        """The next trade, at ``ts`` (epoch ms)."""
        rng = self.rng
        k = self._token_index()
        if rng.random() < 0.002:
            self._trend[k] = rng.choice((1, -1)) * rng.uniform(0.0003, 0.003)
        elif rng.random() < 0.01:
            self._trend[k] = 0.0
        trend = self._trend[k]
        buy_p = 0.5 + (0.3 if trend > 0 else -0.3 if trend < 0 else 0.0)
        side = "buy" if rng.random() < buy_p else "sell"
        step = trend + rng.gauss(0, 0.004) + (0.001 if side == "buy" else -0.001)
        self._prices[k] = max(1e-12, self._prices[k] * math.exp(step))
        price = Decimal(f"{self._prices[k]:.6e}")
        quote = Decimal(f"{min(1e6, rng.lognormvariate(-0.5, 1.6)):.9f}")
        if quote <= 0:
            quote = Decimal("0.000000001")
        amount = (quote / price).quantize(Decimal("0.000001"))
        if ts == self._last_ts:
            self._seq += 1
        else:
            self._last_ts, self._seq = ts, 0
        self._n += 1
        ident = f"{self._sig}{self._n:08d}:{rng.randrange(8)}"
        return Trade(
            id=ident,
            token=self.tokens[k],
            side=side,
            quote_nano=int(quote.scaleb(9)),
            price=format(price.normalize(), "f"),
            ts=ts,
            seq=self._seq,
            amount=format(amount, "f"),
            trader=rng.choice(self.traders),
            block=ts // 400,
        )

    def trades(self, n: int, start_ms: int, rate: float) -> list[Trade]:
        """``n`` trades at ``rate`` per second from ``start_ms``, in bursts of a block."""
        return list(itertools.islice(self.stream(start_ms, rate), n))

    def stream(self, start_ms: int, rate: float) -> Iterator[Trade]:
        """Trades at ``rate``/s on average, grouped in 400 ms blocks (Solana slots)."""
        ts = start_ms
        per_block = rate * 0.4
        while True:
            burst = max(0, int(self.rng.expovariate(1.0 / per_block))) if per_block > 0 else 1
            for _ in range(burst):
                yield self.trade(ts)
            ts += 400


def to_message(t: Trade) -> dict[str, object]:
    """A trade as the contract's JSON message object (CONTRACT §1)."""
    msg: dict[str, object] = {
        "id": t.id,
        "token": t.token,
        "side": t.side,
        "amount": t.amount or "1",
        "quote": format(t.quote, "f"),
        "price": t.price,
        "ts": t.ts,
        "seq": t.seq,
        "trader": t.trader or t.token,
    }
    if t.block is not None:
        msg["block"] = t.block
    return msg


def past_trades(n: int, tokens: int, seed: int, now: int) -> list[Trade]:
    """``n`` trades stamped over the recent past (at most ~50 minutes), newest ~1 s ago."""
    feed = SyntheticFeed(tokens=tokens, seed=seed)
    rate = max(1000.0, n / 3000.0)
    trades = feed.trades(n, 0, rate)
    shift = now - 1000 - (trades[-1].ts if trades else 0)
    return [_restamp(t, t.ts + shift) for t in trades]


def _restamp(t: Trade, ts: int, block: int | None = None) -> Trade:
    block = ts // 400 if block is None else block
    return Trade(t.id, t.token, t.side, t.quote_nano, t.price, ts, t.seq, t.amount, t.trader, block)


def paced_blocks(n: int, tokens: int, seed: int, rate: float) -> Iterator[list[Trade]]:
    """Blocks of trades, each yielded when the wall clock reaches its timestamp."""
    feed = SyntheticFeed(tokens=tokens, seed=seed)
    start = now_ms()
    block: list[Trade] = []
    for k, t in enumerate(feed.stream(start, rate)):
        if block and t.ts != block[0].ts:
            yield block
            block = []
        if k >= n:
            break
        delay = t.ts / 1000 - time.time()
        if delay > 0 and not block:
            time.sleep(delay)
        block.append(_restamp(t, max(t.ts, now_ms()), t.block))
    if block:
        yield block
