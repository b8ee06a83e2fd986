"""Hypothesis strategies and helpers for trades."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import strategies as st

from tradeagg.contract.trade import Trade

TOKENS = ["So11111111111111111111111111111111111111112", "0x" + "ab" * 20]
ID_CHARS = "aB9:~!zZ_"
# a few wallets, so windows share traders (makers, buyers, sellers); "" is a trade of
# no known trader (an element of an earlier release): it counts in none of them
TRADERS = ["", *(c * 32 for c in "ABCDEF"), "0x" + "cd" * 20]


def arrival_batches(
    data: st.DataObject, ts: list[Trade], max_dups: int = 10, max_cuts: int = 8
) -> list[list[Trade]]:
    """How ``ts`` may arrive: with up to ``max_dups`` duplicates, shuffled, cut into
    non-empty batches (drawn from ``data``)."""
    arrivals = data.draw(
        st.permutations(ts + data.draw(st.lists(st.sampled_from(ts), max_size=max_dups)))
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(arrivals)), max_size=max_cuts)))
    return [
        arrivals[a:b] for a, b in zip([0, *cuts], [*cuts, len(arrivals)], strict=False) if b > a
    ]


def random_batch(rng: random.Random, tag: str, now: int, behind_ms: int, n: int = 4) -> list[Trade]:
    """``n`` trades of TOKENS (alternating) and TRADERS stamped within ``behind_ms`` before
    ``now`` (up to 300 ms after it: future-stamped ones too), random sides, quotes, prices
    and seqs, ids ``<tag>-<i>``: the calls of a scripted (non-hypothesis) scenario."""
    return [
        Trade(
            id=f"{tag}-{i}",
            token=TOKENS[i % 2],
            side=rng.choice(("buy", "sell")),
            quote_nano=rng.randrange(1, 10**12),
            price=str(rng.randrange(1, 10**6) / 1000),
            ts=now - rng.randrange(-300, behind_ms),
            seq=rng.randrange(3),
            trader=rng.choice(TRADERS),
        )
        for i in range(n)
    ]


@st.composite
def trades(draw, tokens=TOKENS, span_ms: int = 40_000, min_size: int = 1, max_size: int = 60):
    """Distinct trades (one per id) with colliding ts/seq, for a few tokens."""
    n = draw(st.integers(min_size, max_size))
    ids = draw(
        st.lists(st.text(ID_CHARS, min_size=1, max_size=6), min_size=n, max_size=n, unique=True)
    )
    base = 1_700_000_000_000
    out = []
    for ident in ids:
        quote = draw(
            st.one_of(
                st.integers(1, 10**6).map(lambda x: Decimal(x).scaleb(-9)),
                st.decimals(Decimal("0.000000001"), Decimal("1000000000"), places=9),
            )
        )
        price = draw(st.decimals(Decimal("0.000000000001"), Decimal("100000"), places=12))
        out.append(
            Trade(
                id=ident,
                token=draw(st.sampled_from(tokens)),
                side=draw(st.sampled_from(["buy", "sell"])),
                quote_nano=int(quote.scaleb(9)),
                price=format(price.normalize(), "f") if price > 0 else "1",
                ts=base + draw(st.integers(0, span_ms // 250)) * 250,
                seq=draw(st.integers(0, 2)),
                trader=draw(st.sampled_from(TRADERS)),
            )
        )
    return [t for t in out if t.quote_nano > 0]


# Boundary-seeking scenarios. Uniform draws almost never land on the instants
# where an off-by-one shows (a trade exactly `w` old, a later batch tying the
# list's tail, a trade exactly at the late cutoff), so these aim at them.

EDGE_BASE = 1_700_000_000_000
# bytewise order differs from case-insensitive or locale order for these
EDGE_ID_CHARS = "aAbBzZ_~09:"
KINDS = (
    "fresh",  # anywhere in the windows, sometimes a little in the future
    "tail_ts",  # same ts as the token's newest trade, any seq
    "tail_ts_seq",  # same (ts, seq) as the newest trade: only the id orders them
    "tail_lower_seq",  # same ts as the newest trade, lower seq: goes before it
    "byte_order",  # same (ts, seq) as a sent trade, id a permutation of its id
    "equal_run",  # several trades with one ts
    "cutoff",  # ts at the late cutoff of this call, +-1 ms
    "boundary",  # ts exactly a window length (+-1 ms) before this call
    "resend",  # a trade sent before (a duplicate, or late by now)
    "same_id",  # a sent trade's id with another ts, seq, side and price: still that trade
)


@dataclass
class EdgeStep:
    """One engine call: the instant it is made at, and the records it carries (arrival order)."""

    now: int
    trades: list[Trade]


class _Ids:
    """Unique ids; a partner of an id uses the same bytes in another order when it can."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def fresh(self, draw) -> str:
        ident = draw(st.text(EDGE_ID_CHARS, min_size=1, max_size=4))
        while ident in self.taken:
            ident += draw(st.sampled_from(EDGE_ID_CHARS))
        self.taken.add(ident)
        return ident

    def partner(self, draw, of: str) -> str:
        chars = list(of)
        for _ in range(4):
            perm = "".join(draw(st.permutations(chars)))
            if perm not in self.taken:
                self.taken.add(perm)
                return perm
        return self.fresh(draw)


def trader_of(ident: str) -> str:
    """A trader fixed by the id: records of one id (resent, or with another ts) share it,
    as the same trade would; ids spread over TRADERS."""
    return TRADERS[zlib.crc32(ident.encode()) % len(TRADERS)]


def _trade(draw, ids: _Ids, token: str, ts: int, seq: int, ident: str | None = None) -> Trade:
    ident = ident if ident is not None else ids.fresh(draw)
    return Trade(
        id=ident,
        token=token,
        side=draw(st.sampled_from(["buy", "sell"])),
        quote_nano=draw(st.one_of(st.integers(1, 10**12), st.integers(1, 10**18))),
        price=f"{draw(st.integers(1, 10**6))}.{draw(st.integers(0, 999)):03d}",
        ts=ts,
        seq=seq,
        trader=trader_of(ident),
    )


@st.composite
def edge_scenarios(draw, windows_ms: list[int], tokens=TOKENS, max_steps: int = 6):
    """Engine calls whose instants and trades sit on the edges of the windows.

    Call instants never go back (one wall clock); an instant is often a sent
    trade's ts plus a window length (+-1 ms), where that trade leaves the window.
    """
    longest = max(windows_ms)
    edges = sorted({0, 1, *(w + d for w in windows_ms for d in (-1, 0, 1))})
    ids = _Ids()
    sent: list[Trade] = []
    steps: list[EdgeStep] = []
    now = EDGE_BASE + draw(st.integers(0, longest))
    for _ in range(draw(st.integers(1, max_steps))):
        later = [t.ts + e for t in sent for e in edges if t.ts + e >= now]
        now = draw(
            st.one_of(
                st.just(now),
                st.integers(now, now + longest),
                st.sampled_from(later) if later else st.just(now),
            )
        )
        batch: list[Trade] = []
        for _ in range(draw(st.integers(1, 8))):
            token = draw(st.sampled_from(tokens))
            mine = [t for t in sent + batch if t.token == token]
            tail = max(mine, key=lambda t: (t.ts, t.seq, t.id)) if mine else None
            kind = draw(st.sampled_from(KINDS))
            made: list[Trade] = []
            if kind == "resend" and sent + batch:
                batch.append(draw(st.sampled_from(sent + batch)))
                continue
            if kind in ("tail_ts", "tail_ts_seq", "tail_lower_seq") and tail:
                seq = {
                    "tail_ts": draw(st.integers(0, 3)),
                    "tail_ts_seq": tail.seq,
                    "tail_lower_seq": max(tail.seq - draw(st.integers(1, 2)), 0),
                }[kind]
                made.append(_trade(draw, ids, token, tail.ts, seq))
            elif kind == "same_id" and mine:
                like = draw(st.sampled_from(mine))
                ts = now - draw(st.sampled_from(edges))
                ts = ts if ts != like.ts else ts - 1
                made.append(_trade(draw, ids, token, ts, draw(st.integers(0, 3)), like.id))
            elif kind == "byte_order" and mine:
                like = draw(st.sampled_from(mine))
                made.append(_trade(draw, ids, token, like.ts, like.seq, ids.partner(draw, like.id)))
            elif kind == "equal_run":
                ts = now - draw(st.sampled_from(edges))
                for _ in range(draw(st.integers(2, 5))):
                    made.append(_trade(draw, ids, token, ts, draw(st.integers(0, 1))))
            elif kind == "cutoff":
                made.append(_trade(draw, ids, token, now - longest + draw(st.integers(-1, 1)), 0))
            elif kind == "boundary":
                made.append(_trade(draw, ids, token, now - draw(st.sampled_from(edges)), 0))
            else:
                ts = now - draw(st.integers(-(longest // 10), longest + 1))
                made.append(_trade(draw, ids, token, ts, draw(st.integers(0, 3))))
            batch.extend(made)
        # arrival order within a call is free
        batch = draw(st.permutations(batch))
        steps.append(EdgeStep(now, batch))
        sent.extend(t for t in batch if t not in sent)
    return steps
