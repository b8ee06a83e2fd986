"""The brute-force reference lives in tradeagg.reference (bench uses it too); here also
``Applied``, the model of which trades an apply takes (lateness, duplicates)."""

from tradeagg.contract.trade import Trade
from tradeagg.engine.reference import distinct, previous, start, window, windows

__all__ = ["Applied", "distinct", "previous", "start", "window", "windows"]


class Applied:
    """Which trades the engine applies: per token a call stands at the later of its
    previous instant and the call's; a trade is late when ``ts <= at - longest
    exact window``, a duplicate when its id is still in the token's id index
    (kept while its trade is inside the longest exact window), else applied."""

    def __init__(self, exact_ms: int) -> None:
        self.exact_ms = exact_ms
        self.at: dict[str, int] = {}
        self.ids: dict[str, dict[str, int]] = {}
        self.applied: list[Trade] = []

    def call(self, batch: list[Trade], now: int) -> None:
        for token in sorted({t.token for t in batch}):
            at = max(self.at.get(token, now), now)
            ids = self.ids.setdefault(token, {})
            for t in sorted({t for t in batch if t.token == token}, key=lambda t: (t.ts, t.seq)):
                if t.ts <= at - self.exact_ms or t.id in ids:
                    continue
                ids[t.id] = t.ts
                self.applied.append(t)
            self.at[token] = at
            self.ids[token] = {i: ts for i, ts in ids.items() if ts > at - self.exact_ms}
