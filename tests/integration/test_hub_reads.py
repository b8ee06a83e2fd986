"""The hub's reads of announced tokens, against a real Redis."""

from __future__ import annotations

import json

from tradeagg.api.hub import Hub, Subscriber, update_event
from tradeagg.clock import now_ms
from tradeagg.devtools.synthetic import SyntheticFeed
from tradeagg.engine.apply import Engine
from tradeagg.engine.read import Reader
from tradeagg.observe.metrics import NullMetrics
from tradeagg.settings import Settings, parse_windows


def test_a_client_skipped_ahead_gets_the_newest_state(redis_client) -> None:
    """A token applied again after the announcement the hub acts on: the subscriber gets
    one event, of the newest state, exact as of its ``at`` (that state's last_update)."""
    s = Settings(windows=parse_windows("1m,5m"), shards=2)
    trades = SyntheticFeed(tokens=1, seed=3).trades(8, now_ms() - 60_000, rate=1)
    token = trades[0].token
    engine = Engine(redis_client, s)
    engine.apply_records([t.record for t in trades[:4]])  # announced (say) at this state
    hub = Hub(redis_client, redis_client, s, NullMetrics())
    sub = Subscriber(tokens=[token])
    hub.subscribe(sub)
    engine.apply_records([t.record for t in trades[4:]])  # before the hub reads it
    newest = int(redis_client.get(f"token:{{{token}}}:last_update"))
    hub.dispatch({token})
    (event,) = sub.mailbox.values()
    assert event == update_event(Reader(redis_client, s).read(token, newest))
    doc = json.loads(event.split(b"data: ", 1)[1])
    assert doc["at"] == newest
    assert doc["windows"]["5m"]["buys"] + doc["windows"]["5m"]["sells"] == len(trades)
