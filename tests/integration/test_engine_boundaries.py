"""Property: on the edges of the windows the engine still equals the brute-force reference.

The scenarios (tests/support/strategies.py ``edge_scenarios``) put call and
read instants exactly where a trade leaves a window (``ts + w``, +-1 ms),
tie later batches with the list's tail on ``ts`` and on ``(ts, seq)``, use
ids that differ only in byte order, runs of equal ``ts`` and trades exactly at
the late cutoff, and ids sent again with another ts. After every call, the
applied / duplicate / late counts the Lua script returns must equal a model's,
and every metric of every window must equal the reference over the trades the
model keeps, at several boundary instants.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.support.checks import reference_mismatches
from tests.support.strategies import TOKENS, EdgeStep, edge_scenarios
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine
from tradeagg.engine.read import Reader
from tradeagg.settings import Settings, parse_windows

WINDOWS = ["250ms,2s,10s", "1s,3s,10s", "3s,15s"]


class EngineModel:
    """What ``apply_trades.lua`` must report per token and call, and which trades it keeps.

    Per token, a call stands at ``at`` = the later of its previous ``at`` and
    the call's instant. Identical records of one call count once; the rest are
    taken in (ts, seq, id) order. A trade with ``ts <= at - longest`` is late
    (CONTRACT §1); else one whose id the token remembers is a duplicate, even
    with another ts, seq or price (the first applied stays); else it is
    applied. After the call, trades with ``ts <= at - longest`` are dropped
    and their ids forgotten (they are outside every window from then on).
    """

    def __init__(self, longest: int) -> None:
        self.longest = longest
        self.at: dict[str, int] = {}
        self.kept: dict[str, dict[str, Trade]] = {}

    def call(self, step: EdgeStep) -> dict[str, tuple[int, int, int]]:
        out: dict[str, tuple[int, int, int]] = {}
        for token in sorted({t.token for t in step.trades}):
            at = max(self.at.get(token, step.now), step.now)
            kept = self.kept.setdefault(token, {})
            applied = duplicates = late = 0
            for t in sorted({t for t in step.trades if t.token == token}, key=_order):
                if t.ts <= at - self.longest:
                    late += 1
                elif t.id in kept:
                    duplicates += 1
                else:
                    applied += 1
                    kept[t.id] = t
            self.at[token] = at
            self.kept[token] = {i: t for i, t in kept.items() if t.ts > at - self.longest}
            out[token] = (applied, duplicates, late)
        return out

    def trades(self) -> list[Trade]:
        return [t for kept in self.kept.values() for t in kept.values()]


def _order(t: Trade) -> tuple[int, int, str]:
    return (t.ts, t.seq, t.id)


def read_instants(now: int, sent: list[Trade], windows_ms: list[int], data) -> list[int]:
    """The call's instant, and a few where a sent trade is exactly at a window's edge."""
    edges = sorted(
        {t.ts + w + d for t in sent for w in windows_ms for d in (-1, 0, 1) if t.ts + w + d >= now}
    )
    picks = data.draw(st.lists(st.sampled_from(edges), max_size=3)) if edges else []
    return [now, *picks]


@hsettings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), spec=st.sampled_from(WINDOWS))
def test_edges_match_reference_and_counts_match_model(redis_client, data, spec):
    redis_client.flushall()
    s = Settings(windows=parse_windows(spec), clock="wall", tokens_per_call=2)
    windows_ms = [w.ms for w in s.windows]
    steps = data.draw(edge_scenarios(windows_ms))
    engine = Engine(redis_client, s)
    reader = Reader(redis_client, s, engine.scripts)
    model = EngineModel(s.longest_ms)
    sent: list[Trade] = []
    for n, step in enumerate(steps):
        results = engine.apply_records([t.record for t in step.trades], now=step.now)
        got = {r.token: (r.applied, r.duplicates, r.late) for r in results}
        assert not any(r.failed or r.reason for r in results), results
        assert got == model.call(step), f"call {n} at {step.now}"
        sent.extend(step.trades)
        kept = model.trades()
        for at in read_instants(step.now, sent, windows_ms, data):
            bad = reference_mismatches(reader, kept, at, s.windows, TOKENS)
            assert bad == [], f"after call {n}:\n" + "\n".join(bad[:10])
