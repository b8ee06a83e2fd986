"""Property: the engine equals the brute-force reference for any arrival order."""

from __future__ import annotations

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.support.checks import assert_matches_reference
from tests.support.strategies import TOKENS, arrival_batches, trades
from tradeagg.engine.apply import Engine
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings, parse_windows

WINDOWS = ["1s,5s,15s", "250ms,2s,10s,30s", "1m"]


def check(reader: Reader, all_trades, at: int, ws) -> None:
    assert_matches_reference(reader, all_trades, at, ws, TOKENS)


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    ts=trades(),
    spec=st.sampled_from(WINDOWS),
    clock=st.sampled_from(["wall", "event"]),
)
def test_any_arrival_order_matches_reference(redis_client, data, ts, spec, clock):
    redis_client.flushall()
    s = Settings(
        windows=parse_windows(spec), clock=clock, tokens_per_call=data.draw(st.integers(1, 3))
    )
    engine = Engine(redis_client, s)
    reader = Reader(redis_client, s, engine.scripts)
    # arrival: a shuffled list with duplicates, cut into batches, replays of whole batches
    batches = arrival_batches(data, ts)
    now = min(t.ts for t in ts) + data.draw(st.integers(-2_000, 20_000))
    for batch in batches:
        for _ in range(data.draw(st.integers(1, 2))):
            engine.apply_records([t.record for t in batch], now=now)
        now += data.draw(st.integers(0, 8_000))
    applied_at = [reader.read(tok).last_update for tok in TOKENS]
    start = max([a for a in applied_at if a is not None] + [now if clock == "wall" else 0])
    for _ in range(3):
        at = start + data.draw(st.integers(0, 40_000))
        check(reader, ts, at, s.windows)
