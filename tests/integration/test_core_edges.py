"""The contract at its edges: one example per sentence that a one-line bug could break.

Each test pins a case the property tests rarely draw (ties with the list's
tail across calls, trades exactly on a window boundary or the late cutoff,
TTLs, caps, what is acknowledged or committed when something fails) against
a real redis-server (and, for the bridge, a real Kafka-protocol broker),
comparing with the brute-force reference or the contract's literal words.
``tests/mutants.py`` names these tests as the killers of its mutants.
"""

from __future__ import annotations

import json
import threading

import gevent.pool
import pytest
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from tests.support.bridge_procs import produce, wait_for
from tests.support.checks import assert_matches_reference
from tests.support.servers import free_port
from tradeagg.contract import keys
from tradeagg.contract.entry import sort_key
from tradeagg.contract.trade import Trade
from tradeagg.devtools.synthetic import to_message
from tradeagg.engine.apply import Engine, now_ms
from tradeagg.engine.read import Reader
from tradeagg.observe.metrics import MemoryMetrics
from tradeagg.runtime.bridge import Bridge
from tradeagg.runtime.consumer import ShardConsumer
from tradeagg.runtime.kafkaconf import consumer_config
from tradeagg.settings import Settings, parse_windows
from tradeagg.store import streams

A = "So11111111111111111111111111111111111111112"
B = "0x" + "ab" * 20
T0 = 1_700_000_000_000
WINDOWS = "1s,10s"


def trade(ident: str, ts: int, price: str = "2", seq: int = 0, **kw) -> Trade:
    base = dict(id=ident, token=A, side="buy", quote_nano=10**9, price=price, ts=ts, seq=seq)
    base.update(kw)
    return Trade(**base)


def settings(**kw) -> Settings:
    return Settings(**{"windows": parse_windows(WINDOWS), "clock": "wall", **kw})


def listed(client: redis.Redis, token: str = A) -> list[str]:
    return [e.decode() for e in client.lrange(keys.TokenKeys(token).trades, 0, -1)]


def exact(client: redis.Redis, s: Settings, trades: list[Trade], at: int, token: str = A) -> None:
    assert_matches_reference(Reader(client, s), trades, at, s.windows, [token])


# -- ordering ----------------------------------------------------------------------------


def test_a_later_call_tying_the_tail_on_ts_is_ordered_by_seq(redis_client) -> None:
    """(ts, seq, id) order across calls: a tie with the list's tail is not an append."""
    s = settings()
    engine = Engine(redis_client, s)
    a = trade("m", T0, price="5", seq=2)
    b = trade("n", T0, price="7", seq=0)  # same ts, lower seq, later call
    c = trade("b", T0, price="11", seq=2)  # same (ts, seq) as the tail, lower id
    seen: list[Trade] = []
    for x in (a, b, c):
        [r] = engine.apply_records([x.record], now=T0 + 100)
        assert (r.applied, r.rebuilt) == (1, -1)
        seen.append(x)
        exact(redis_client, s, seen, T0 + 100)
    view = Reader(redis_client, s).read(A, T0 + 100)
    assert (str(view.windows["1s"].open), str(view.windows["1s"].close)) == ("7", "5")
    assert listed(redis_client) == [b.entry, c.entry, a.entry]


def test_ties_on_ts_and_seq_follow_the_byte_order_of_ids(redis_client) -> None:
    """Byte order: "B" < "a" < "ab" < "a~"; each id arrives after those it follows in order."""
    s = settings()
    engine = Engine(redis_client, s)
    ids = {"a~": "1", "ab": "2", "a": "3", "B": "4"}
    trades = [trade(i, T0, price=p, seq=1) for i, p in ids.items()]
    for x in trades:  # reverse of the contract's order: every call merges before the tail
        engine.apply_records([x.record], now=T0)
    exact(redis_client, s, trades, T0)
    assert [e.split()[5] for e in listed(redis_client)] == ["B", "a", "ab", "a~"]
    # one batch of the same ids for another token, shuffled: the same order
    other = [trade(i, T0, price=p, seq=1, token=B) for i, p in ids.items()]
    engine.apply_records([x.record for x in other[::2] + other[1::2]], now=T0)
    assert [e.split()[5] for e in listed(redis_client, B)] == ["B", "a", "ab", "a~"]
    exact(redis_client, s, other, T0, token=B)


# -- window boundaries and expiry ---------------------------------------------------------


def test_window_boundaries_at_minus_w_and_at(redis_client) -> None:
    """A window at `at` holds at - w < ts <= at: the trade at ts = at - w has left, ts = at is in."""
    s = settings()
    engine = Engine(redis_client, s)
    trades = [trade(f"t{i}", T0 + i, price=str(10 + i)) for i in range(3)]
    engine.apply_records([x.record for x in trades], now=T0)  # two trades still in the future
    reader = Reader(redis_client, s)
    w1 = reader.read(A, T0 + 2).windows["1s"]
    assert (w1.buys, str(w1.open), str(w1.close)) == (3, "10", "12")  # ts = at is inside
    for at in (T0, T0 + 1, T0 + 2, T0 + 999, T0 + 1000, T0 + 1001, T0 + 1002, T0 + 10_001):
        exact(redis_client, s, trades, at)  # read-only: slides in memory
    assert reader.read(A, T0 + 1000).windows["1s"].buys == 2  # T0 = at - 1s has left
    assert reader.read(A, T0 + 10_001).windows["10s"].buys == 1
    for at in (T0 + 1, T0 + 2, T0 + 1000, T0 + 1001, T0 + 10_000, T0 + 10_001):
        engine.advance([A], now=at)  # the stored state slides too (the janitor's path)
        exact(redis_client, s, trades, at)
    assert listed(redis_client) == [trades[2].entry]  # the list keeps the longest window only


def test_a_future_trade_at_last_update_is_not_mistaken_for_a_future_one(redis_client) -> None:
    """A trade with ts == last_update is inside; only ts > last_update waits for the clock."""
    s = settings()
    engine = Engine(redis_client, s)
    now = T0
    trades = [trade("now", now, price="3"), trade("soon", now + 500, price="4")]
    [r] = engine.apply_records([x.record for x in trades], now=now)
    assert (r.applied, r.last_update) == (2, now)
    more = trade("more", now - 10, price="5")
    [r] = engine.apply_records([more.record], now=now)  # the stored state is checked as is
    assert (r.applied, r.rebuilt, r.reason) == (1, -1, "")
    trades.append(more)
    for at in (now, now + 499, now + 500):
        exact(redis_client, s, trades, at)
    [r] = engine.advance([A], now=now + 500)
    assert (r.rebuilt, r.reason) == (-1, "")
    exact(redis_client, s, trades, now + 500)


def test_a_list_tail_at_last_update_is_inside_and_the_stored_state_stands(redis_client) -> None:
    """The list's last trade at ts == last_update is inside every window, not waiting for the
    clock: the next call loads the stored state as it is (no rebuild), with one trade or more."""
    s = settings()
    engine = Engine(redis_client, s)
    first = trade("first", T0, price="3")
    [r] = engine.apply_records([first.record], now=T0)  # one trade, stamped at last_update
    assert (r.applied, r.last_update, r.rebuilt) == (1, T0, -1)
    [r] = engine.advance([A], now=T0 + 1)
    assert (r.rebuilt, r.reason) == (-1, "")
    exact(redis_client, s, [first], T0 + 1)
    trades = [first, trade("early", T0 - 5, price="4"), trade("tail", T0 + 7, price="5")]
    [r] = engine.apply_records([x.record for x in trades[1:]], now=T0 + 7)  # tail at at
    assert (r.applied, r.last_update, r.rebuilt) == (2, T0 + 7, -1)
    late = trade("between", T0 + 3, price="6")  # merges before the tail: a state is loaded
    [r] = engine.apply_records([late.record], now=T0 + 7)
    assert (r.applied, r.rebuilt, r.reason) == (1, -1, "")
    trades.append(late)
    for at in (T0 + 7, T0 + 1000, T0 + 1003):
        [r] = engine.advance([A], now=at)
        assert (r.rebuilt, r.reason) == (-1, "")
        exact(redis_client, s, trades, at)


def test_a_damaged_token_read_keeps_the_window_boundaries(redis_client) -> None:
    """Counted from the list (indices lost): still at - w < ts <= at, for reads and rebuilds."""
    s = settings()
    engine = Engine(redis_client, s)
    trades = [trade(f"d{i}", T0 + i * 500, price=str(1 + i)) for i in range(3)]
    engine.apply_records([x.record for x in trades], now=T0 + 1000)
    redis_client.delete(keys.TokenKeys(A).indices)
    for at in (T0 + 1000, T0 + 1500, T0 + 2000):
        exact(redis_client, s, trades, at)  # read_window counts from the list
    [r] = engine.advance([A], now=T0 + 1500)
    assert r.rebuilt == 0 and "index" in r.reason
    exact(redis_client, s, trades, T0 + 1500)


def test_ttl_is_the_longest_window_and_refreshed_per_trade(redis_client) -> None:
    """All keys of a token expire after the longest window with no trade; trades refresh it."""
    s = settings()  # longest: 10 s
    engine = Engine(redis_client, s)
    k = keys.TokenKeys(A)
    every = [*k.all(), k.ids, k.high, k.low]  # (no trader here: no makers set)
    now = now_ms()
    engine.apply_records([trade("x", now).record], now=now)
    for key in every:
        assert 5_000 < redis_client.pttl(key) <= 10_000, key
    for key in every:
        redis_client.pexpire(key, 3_000)
    engine.advance([A], now=now + 1)  # no trade: the TTL is left as it is
    for key in every:
        assert 0 < redis_client.pttl(key) <= 3_000, key
    engine.apply_records([trade("y", now + 2).record], now=now + 2)  # a trade: a full TTL
    for key in every:
        assert 5_000 < redis_client.pttl(key) <= 10_000, key


# -- late cutoff ----------------------------------------------------------------------------


def test_late_cutoff_counts_and_drops_exactly_what_no_window_holds(redis_client) -> None:
    """ts <= at - longest is late: counted, not applied; 1 ms inside is applied."""
    s = settings()  # longest: 10 s
    engine = Engine(redis_client, s)
    at = T0 + 20_000
    head = trade("head", at - 5, price="3")
    engine.apply_records([head.record], now=at)
    at_cutoff = trade("at-cutoff", at - 10_000, price="100")
    beyond = trade("beyond", at - 10_001, price="200")
    inside = trade("inside", at - 9_999, price="4")
    [r] = engine.apply_records([x.record for x in (at_cutoff, beyond, inside)], now=at)
    assert (r.applied, r.late, r.duplicates, r.over_capacity) == (1, 2, 0, 0)
    assert listed(redis_client) == [inside.entry, head.entry]
    exact(redis_client, s, [head, inside, at_cutoff, beyond], at)  # late ones are in no window
    # a token seen for the first time: the same cutoff
    fresh = [trade(x.id, x.ts, x.price, token=B) for x in (at_cutoff, beyond, inside)]
    [r] = engine.apply_records([x.record for x in fresh], now=at)
    assert (r.applied, r.late) == (1, 2)
    assert listed(redis_client, B) == [fresh[2].entry]


# -- trimming -------------------------------------------------------------------------------


def test_max_token_trades_refuses_and_counts_the_rest(redis_client) -> None:
    s = settings(max_token_trades=1_000)
    engine = Engine(redis_client, s)
    trades = [trade(f"c{i:04d}", T0 + i, quote_nano=10**9 + i) for i in range(1_002)]
    [r] = engine.apply_records([x.record for x in trades], now=T0 + 2_000)
    assert (r.applied, r.over_capacity) == (1_000, 2)
    assert redis_client.llen(keys.TokenKeys(A).trades) == 1_000
    [r] = engine.apply_records([trade("late-comer", T0 + 1_500).record], now=T0 + 2_000)
    assert (r.applied, r.over_capacity) == (0, 1)
    kept = sorted(trades, key=lambda t: sort_key(t.entry))[:1_000]
    exact(redis_client, s, kept, T0 + 2_000)


@pytest.fixture
def small_stream_nodes(redis_client):
    """Approximate MAXLEN trims whole stream nodes: small nodes make the cap visible."""
    old = redis_client.config_get("stream-node-max-entries")["stream-node-max-entries"]
    redis_client.config_set("stream-node-max-entries", 4)
    yield 4
    redis_client.config_set("stream-node-max-entries", old)


def test_worker_dead_letters_are_kept_and_capped(redis_client, small_stream_nodes) -> None:
    """Unusable entries and records: dead-lettered with a reason, acked; the stream is capped."""
    s = settings(shards=1, dead_letter_max=5)
    stream = keys.stream(0)
    good = trade("ok", now_ms() - 100)
    ids = [
        redis_client.xadd(stream, {"v": "9", "t": good.record}).decode(),
        redis_client.xadd(stream, {"v": "1", "t": f"{A} soon 0 b 1 2 bad-ts"}).decode(),
        redis_client.xadd(stream, {"v": "1", "t": f"not-a-token {good.entry}"}).decode(),
        *streams.append(redis_client, s, [good]),
    ]
    sc = consumer(redis_client, s)
    entries = read(redis_client)
    assert [e[0].decode() for e in entries] == ids
    assert sc.process(entries) == 0
    dead = [
        {k.decode(): v.decode() for k, v in f.items()} for _, f in redis_client.xrange(keys.dead(0))
    ]
    by_entry = {d["entry"]: d for d in dead}  # one dead letter per bad entry or record
    assert len(by_entry) == len(dead) == 3
    assert {e: d["reason"] for e, d in by_entry.items()} == {
        ids[0]: "unknown entry format v='9'",
        ids[1]: "unparsable record",
        ids[2]: "bad token in record",
    }
    assert "bad-ts" in by_entry[ids[1]]["raw"] and "not-a-token" in by_entry[ids[2]]["raw"]
    assert redis_client.xpending(stream, keys.STREAM_GROUP)["pending"] == 0
    assert Reader(redis_client, s).read(A).windows["10s"].buys == 1
    for i in range(40):
        redis_client.xadd(stream, {"v": "0", "t": f"x{i}"})
    assert sc.process(read(redis_client)) == 0
    assert redis_client.xlen(keys.dead(0)) <= s.dead_letter_max + small_stream_nodes


def test_bridge_dead_letters_are_capped(redis_client, small_stream_nodes) -> None:
    s = settings(shards=1, dead_letter_max=5)
    bridge = Bridge(None, redis_client, s, MemoryMetrics(), lambda: False, _call)
    fields = {"reason": "message: not JSON", "source": "bridge", "raw": "x"}
    for _ in range(10):
        assert bridge.write([], [(0, fields)] * 4, "t/0:0-3")
    assert redis_client.xlen(keys.dead(0)) <= s.dead_letter_max + small_stream_nodes


# -- ack after commit -----------------------------------------------------------------------


def consumer(client: redis.Redis, s: Settings) -> ShardConsumer:
    engine = Engine(client, s)
    stop = threading.Event()
    sc = ShardConsumer(0, None, engine, gevent.pool.Pool(2), s, MemoryMetrics(), "c", stop.is_set)
    sc.stream.ensure_group()  # the group belongs to the shard's ShardStream
    return sc


def read(client: redis.Redis, start: str = ">") -> list:
    resp = client.xreadgroup(keys.STREAM_GROUP, "c", {keys.stream(0): start})
    return resp[0][1] if resp else []


def pending_ids(client: redis.Redis) -> list[str]:
    rows = client.xpending_range(keys.stream(0), keys.STREAM_GROUP, "-", "+", 100)
    return [r["message_id"].decode() for r in rows]


def test_entries_of_a_failed_apply_stay_pending(redis_client) -> None:
    """The call fails (its active-index stamp is refused): nothing of it is acknowledged."""
    s = settings(shards=1, entry_trades=1)
    t = now_ms()
    trades = [trade("p1", t - 200), trade("p2", t - 100, token=B)]
    ids = streams.append(redis_client, s, trades)
    sc = consumer(redis_client, s)
    redis_client.set(keys.active(0), "not a sorted set")
    assert sc.process(read(redis_client)) == 2
    assert pending_ids(redis_client) == ids
    redis_client.delete(keys.active(0))
    assert sc.process(read(redis_client, "0")) == 0  # re-applied: the trades count once
    assert pending_ids(redis_client) == []
    exact(redis_client, s, trades, now_ms(), token=A)
    exact(redis_client, s, trades, now_ms(), token=B)


def test_entries_of_a_token_failing_in_lua_stay_pending(redis_client) -> None:
    """Damage met mid-apply fails one token: its entry stays pending, the other token's is acked."""
    s = settings(shards=1, entry_trades=1)
    t = now_ms()
    history = [trade(f"h{i}", t - 8_000 + i * 1_000, price=str(1 + i)) for i in range(4)]
    Engine(redis_client, s).apply_records([x.record for x in history], now=t)
    redis_client.lset(keys.TokenKeys(A).trades, 0, "garbage")  # seen only when walked over
    fresh = [trade("fa", t - 50, price="9"), trade("fb", t - 40, token=B)]
    ids = streams.append(redis_client, s, fresh)
    sc = consumer(redis_client, s)
    assert sc.process(read(redis_client)) == 1
    assert pending_ids(redis_client) == [ids[0]]  # A's entry; B's committed and acked
    assert sc.process(read(redis_client, "0")) == 0  # the re-read rebuilds A from its list
    assert pending_ids(redis_client) == []
    exact(redis_client, s, [*history[1:], fresh[0]], now_ms(), token=A)
    exact(redis_client, s, fresh, now_ms(), token=B)


def _call(fn, *args, **kwargs):
    return fn(*args, **kwargs)


def test_bridge_commits_offsets_only_after_redis_has_the_batch(
    redis_client, kafka_broker, kafka_topic
) -> None:
    """Redis down while stopping: nothing committed. Redis up: written, then next offsets."""
    t = now_ms()
    good = [
        trade(f"k{i}", t - 1_000 + i, token=A if i % 2 else B, trader=B) for i in range(3)
    ]
    bad_element = dict(to_message(good[0]), id="bad id")
    messages = [
        (None, json.dumps(to_message(good[0])).encode()),
        (None, json.dumps([to_message(good[1]), bad_element, to_message(good[2])]).encode()),
        (None, b"not json"),
    ]
    ends = produce(kafka_broker.bootstrap, kafka_topic, messages)
    s = settings(shards=2, kafka_bootstrap_servers=kafka_broker.bootstrap, kafka_group=kafka_topic)
    kc = Consumer(consumer_config(s))
    try:
        kc.assign([TopicPartition(kafka_topic, p, OFFSET_BEGINNING) for p in range(4)])
        msgs: list = []
        wait_for(lambda: msgs.extend(kc.consume(10, 0.2)) or len(msgs) >= 3, 30, "3 messages")
        assert len(msgs) == 3
        parts = [TopicPartition(kafka_topic, p) for p in range(4)]

        down = redis.Redis(port=free_port(), socket_connect_timeout=1)
        Bridge(kc, down, s, MemoryMetrics(), lambda: True, _call).handle(msgs)
        assert all(tp.offset < 0 for tp in kc.committed(parts, timeout=10))

        Bridge(kc, redis_client, s, MemoryMetrics(), lambda: False, _call).handle(msgs)
        records = {
            r
            for shard in range(2)
            for _, f in redis_client.xrange(keys.stream(shard))
            for r in f[b"t"].decode().split("\n")
        }
        assert records == {x.record for x in good}
        dead = sorted(
            f[b"reason"].decode().split(":")[0]
            for shard in range(2)
            for _, f in redis_client.xrange(keys.dead(shard))
        )
        assert dead == ["id", "message"]
        got = {tp.partition: tp.offset for tp in kc.committed(parts, timeout=10)}
        assert {p: o for p, o in got.items() if o >= 0} == ends
    finally:
        kc.close()
