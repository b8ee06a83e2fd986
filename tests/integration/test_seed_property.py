"""Property: with TRADEAGG_METRICS=seed (no screener sets, nor their fields) the
engine equals the brute-force reference for any arrival order, stored and read
alike. The state a seed call loads back is its own (six fields a window, not
the screener's five): this holds it to the reference."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.support import reference
from tests.support.checks import METRICS, PREV, _same, stored_metrics
from tests.support.strategies import TOKENS, trades
from tradeagg.contract.keys import TokenKeys
from tradeagg.engine.apply import Engine
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings, parse_windows

SCREENER = {"makers", "buyers", "sellers", "high", "low"}
SEED = [m for m in METRICS if m not in SCREENER and m not in PREV]  # prev_*: full only


def seed_mismatches(got: dict, want: dict) -> list[str]:
    return [f"{m}: {got[m]!r} != {want[m]!r}" for m in SEED if not _same(m, got[m], want[m])]


@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    ts=trades(),
    spec=st.sampled_from(["1s,5s,15s", "250ms,2s,10s,30s"]),
    clock=st.sampled_from(["wall", "event"]),
)
def test_seed_metrics_match_the_reference_for_any_arrival_order(
    redis_client, data, ts, spec, clock
):
    redis_client.flushall()
    s = replace(Settings(windows=parse_windows(spec), clock=clock), metrics="seed")
    engine = Engine(redis_client, s)
    reader = Reader(redis_client, s, engine.scripts)
    arrivals = data.draw(st.permutations(ts + data.draw(st.lists(st.sampled_from(ts), max_size=8))))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(arrivals)), max_size=8)))
    now = min(t.ts for t in ts) + data.draw(st.integers(-2_000, 20_000))
    for a, b in zip([0, *cuts], [*cuts, len(arrivals)], strict=False):
        if b > a:
            engine.apply_records([t.record for t in arrivals[a:b]], now=now)
            now += data.draw(st.integers(0, 8_000))
    stamped = [reader.read(tok).last_update for tok in TOKENS]
    start = max([u for u in stamped if u is not None] + [now if clock == "wall" else 0])
    for _ in range(3):
        at = start + data.draw(st.integers(0, 40_000))
        for tok in TOKENS:
            want = reference.windows([t for t in ts if t.token == tok], at, s.windows)
            got = reader.read(tok, at)
            for w in s.windows:
                view = got.windows[w.label]
                got_m = {m: getattr(view, m) for m in SEED}
                assert seed_mismatches(got_m, want[w.label]) == [], (tok, w.label, at)
                assert all(getattr(view, m) is None for m in SCREENER)
        # what the last call stored (at its last_update) is the reference's too
        for tok in TOKENS:
            u = redis_client.get(TokenKeys(tok).last_update)
            if u is None:
                continue
            u = int(u)
            agg = redis_client.hgetall(TokenKeys(tok).aggregates)
            want = reference.windows([t for t in ts if t.token == tok], u, s.windows)
            for w in s.windows:
                assert seed_mismatches(stored_metrics(agg, w.label), want[w.label]) == [], w.label
