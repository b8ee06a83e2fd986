"""Hypothesis strategies and helpers for trades."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from tradeagg.contract.trade import Trade

TOKENS = ["So11111111111111111111111111111111111111112", "0x" + "ab" * 20]
ID_CHARS = "aB9:~!zZ_"


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
            )
        )
    return [t for t in out if t.quote_nano > 0]
