"""The stream entry codec: round trip, grouping, and malformed entries as typed errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from tests.support.strategies import trades
from tradeagg.contract import entry as codec
from tradeagg.errors import MalformedEntry

TOKEN = "So11111111111111111111111111111111111111112"


def as_bytes(fields: dict[str, str]) -> dict[bytes, bytes]:
    """What redis-py returns for an entry written with ``fields``."""
    return {k.encode(): v.encode() for k, v in fields.items()}


@settings(max_examples=60, deadline=None)
@given(trades())
def test_round_trip_keeps_every_trade_in_order(ts):
    fields = codec.encode(ts, src="trades/0:1-2")
    assert fields["src"] == "trades/0:1-2" and fields["v"] == codec.FORMAT_VERSION
    decoded = codec.decode(as_bytes(fields))
    assert decoded.bad == []
    # a record's entry is the list entry and the id's digest (which the list does not keep)
    def carried(t):
        return f"{t.entry} {codec.id_digest(t.id)}"

    assert [(tok, e) for tok, e, _k in decoded.records] == [(t.token, carried(t)) for t in ts]
    groups = codec.group(decoded.records)
    for token, entries in groups.items():
        mine = sorted((t for t in ts if t.token == token), key=lambda t: (t.ts, t.seq, t.id))
        assert entries == [carried(t) for t in mine]
    assert decoded.tokens == {t.token for t in ts}


def test_text_fields_decode_like_bytes():
    fields = {"v": "1", "t": f"{TOKEN} 5 0 b 1 2 x"}
    assert codec.decode(fields).records == codec.decode(as_bytes(fields)).records


def test_group_drops_identical_duplicates_only():
    a = (TOKEN, "5 0 b 1 2 x", (5, 0, "x"))
    b = (TOKEN, "4 0 s 1 2 y", (4, 0, "y"))
    assert codec.group([a, b, a]) == {TOKEN: ["4 0 s 1 2 y", "5 0 b 1 2 x"]}


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({b"v": b"4", b"t": b"x"}, "unknown entry format v='4'"),
        ({b"t": b"x"}, "unknown entry format v=None"),
        ({b"v": b"1"}, "unknown entry format v='1'"),
        ({b"v": b"1", b"t": "\u00e9".encode()}, "entry is not ASCII"),
    ],
)
def test_unusable_entry_raises_malformed_entry(fields, reason):
    with pytest.raises(MalformedEntry) as info:
        codec.decode(fields)
    assert info.value.reason == reason and info.value.raw


def test_bad_records_are_reported_and_the_rest_kept():
    lines = [
        f"{TOKEN} 5 0 b 1 2 x",
        "nottoken 5 0 b 1 2 y",
        f"{TOKEN} five 0 b 1 2 z",
        f"{TOKEN} 5 0 q 1 2 z",
        f"{TOKEN} 5 0 b 1 2",
        f"{TOKEN}",
    ]
    decoded = codec.decode({b"v": b"1", b"t": "\n".join(lines).encode()})
    assert [e for _t, e, _k in decoded.records] == ["5 0 b 1 2 x"]
    assert [reason for reason, _raw in decoded.bad] == [
        "bad token in record",
        "unparsable record",
        "unparsable record",
        "unparsable record",
        "unparsable record",
    ]
    assert decoded.bad[0][1] == lines[1]


def test_deleted_entry_decodes_to_nothing():
    assert codec.decode({}).records == [] and codec.decode({}).bad == []


def test_group_records_splits_good_and_bad_lines():
    groups, bad = codec.group_records([f"{TOKEN} 5 0 b 1 2 x", "junk", f"{TOKEN} 1 0 b"])
    assert groups == {TOKEN: ["5 0 b 1 2 x"]} and bad == ["junk", f"{TOKEN} 1 0 b"]


def test_a_list_entry_carries_the_traders_digest_glued_to_its_side():
    from tradeagg.contract.trade import Trade

    wallet = "So11111111111111111111111111111111111111112"
    t = Trade("sig:0", wallet, "sell", 5, "1.5", 1000, 2, trader=wallet)
    digest = codec.trader_digest(wallet)
    assert len(digest) == codec.TRADER_DIGEST and digest.replace("-", "").replace("_", "").isalnum()
    assert t.entry == f"rs 2 S{digest} 5 1.5 sig:0"  # integers in base 36: 1000 = "rs"
    assert codec.trader_digest("") == ""
    assert Trade("x", wallet, "buy", 5, "1", 1).entry == "1 0 B 5 1 x"  # no trader
    assert codec.sort_key(t.entry) == (1000, 2, "sig:0")
    with pytest.raises(ValueError):
        codec.sort_key(f"rs 2 S{digest}x 5 1.5 sig:0")  # not 0 or 8 characters
    with pytest.raises(ValueError):
        codec.sort_key(f"rs 2 s{digest}x 5 1.5 sig:0")


def test_a_list_entry_writes_its_integers_in_base_36():
    from tradeagg.contract.trade import Trade

    wallet = "So11111111111111111111111111111111111111112"
    big = Trade("id", wallet, "buy", 10**18, "2", 1_764_700_000_123, 2**63 - 1, trader=wallet)
    ts, seq, side, quote, price, ident = big.entry.split(" ")
    assert (ts, seq, quote) == ("miowtenv", "1y2p0ij32e8e7", "7lieexzx4kxs")
    assert (int(ts, 36), int(seq, 36), int(quote, 36)) == (big.ts, big.seq, big.quote_nano)
    assert side[0] == "B" and (price, ident) == ("2", "id")
    assert codec.sort_key(big.entry) == (big.ts, big.seq, "id")
    for n in (0, 35, 36, 1295, 1296, 46655, 46656, 2**53, 2**64 + 1):
        assert int(codec.base36(n), 36) == n and codec.base36(n) == codec.base36(n).lower()


def test_decimal_entries_of_earlier_releases_still_decode():
    wallet = "So11111111111111111111111111111111111111112"
    digest = codec.trader_digest(wallet)
    old = {b"v": b"2", b"t": f"{wallet} 1000 2 s{digest} 5 1.5 sig:0 abc".encode()}
    assert [r[2] for r in codec.decode(old).records] == [(1000, 2, "sig:0")]
    assert codec.sort_key(f"1000 2 s{digest} 5 1.5 sig:0") == (1000, 2, "sig:0")
    # the same digits read in base 36 when the side letter is a capital
    assert codec.sort_key(f"1000 2 S{digest} 5 1.5 sig:0") == (46656, 2, "sig:0")


def test_records_of_format_1_without_traders_still_decode():
    wallet = "So11111111111111111111111111111111111111112"
    old = {b"v": b"1", b"t": f"{wallet} 1 0 b 5 1 x".encode()}
    assert [r[1] for r in codec.decode(old).records] == ["1 0 b 5 1 x"]
    assert codec.encode([])["v"] == "3"
