"""The engine on a real 3-master Redis Cluster: exact, one slot per Lua call, spread keys.

The property test mirrors ``test_engine_property.py`` with tokens chosen so
that some share a hash slot (the engine may batch those into one Lua call)
and others live on different nodes (their calls and active-index ZADDs go
to several nodes in one pipeline).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from redis.crc import key_slot

from tests.support.checks import assert_matches_reference
from tests.support.strategies import TOKENS, arrival_batches, trades
from tradeagg.contract.keys import active, dead, shard_of, stream, token_keys
from tradeagg.contract.trade import Trade
from tradeagg.engine.apply import Engine, group_records
from tradeagg.engine.read import Reader
from tradeagg.errors import StoreError
from tradeagg.settings import Settings, parse_windows
from tradeagg.store.connection import Cluster, connect

BASE_TS = 1_700_000_000_000


def same_slot_pairs(count: int) -> list[tuple[str, str]]:
    """Pairs of EVM-style addresses whose hash tags fall in the same cluster slot."""
    seen: dict[int, str] = {}
    pairs: list[tuple[str, str]] = []
    i = 0
    while len(pairs) < count:
        token = f"0x{i:040x}"
        slot = key_slot(token.encode())
        if slot in seen:
            pairs.append((seen.pop(slot), token))
        else:
            seen[slot] = token
        i += 1
    return pairs


PAIRS = same_slot_pairs(2)
CLUSTER_TOKENS = [*TOKENS, *(t for pair in PAIRS for t in pair)]


def cluster_settings(redis_cluster, **kw) -> Settings:
    return Settings(redis_url=redis_cluster.url, redis_cluster=True, **kw)


def check(reader: Reader, all_trades: list[Trade], at: int, ws, tokens: list[str]) -> None:
    assert_matches_reference(reader, all_trades, at, ws, tokens)


@hsettings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    ts=trades(tokens=CLUSTER_TOKENS),
    spec=st.sampled_from(["1s,5s,15s", "250ms,2s,10s,30s"]),
    clock=st.sampled_from(["wall", "event"]),
)
def test_cluster_matches_reference(redis_cluster, data, ts, spec, clock):
    redis_cluster.flushall()
    s = cluster_settings(
        redis_cluster,
        windows=parse_windows(spec),
        clock=clock,
        tokens_per_call=data.draw(st.integers(1, 4)),
    )
    client = connect(s)
    try:
        engine = Engine(client, s)
        reader = Reader(client, s, engine.scripts)
        batches = arrival_batches(data, ts, max_cuts=6)
        now = min(t.ts for t in ts) + data.draw(st.integers(-2_000, 20_000))
        batched = data.draw(st.booleans(), label="apply_calls")
        for batch in batches:
            for _ in range(data.draw(st.integers(1, 2))):
                records = [t.record for t in batch]
                if batched:
                    outs = engine.apply_calls(engine.calls(group_records(records)[0]), now=now)
                    assert all(isinstance(o, list) for o in outs), outs
                    results = [r for o in outs for r in o]
                else:
                    results = engine.apply_records(records, now=now)
                assert not [r for r in results if r.failed]
            now += data.draw(st.integers(0, 8_000))
        applied_at = [reader.read(tok).last_update for tok in CLUSTER_TOKENS]
        start = max([a for a in applied_at if a is not None] + [now if clock == "wall" else 0])
        for _ in range(2):
            at = start + data.draw(st.integers(0, 40_000))
            check(reader, ts, at, s.windows, CLUSTER_TOKENS)
    finally:
        client.close()


def many_trades(tokens: list[str], per_token: int) -> list[Trade]:
    return [
        Trade(
            id=f"{n}-{i}",
            token=token,
            side="buy" if i % 3 else "sell",
            quote_nano=1_000_000 * (i + 1),
            price=f"{1 + (n % 7)}.{i:03d}",
            ts=BASE_TS + 250 * i,
        )
        for n, token in enumerate(tokens)
        for i in range(per_token)
    ]


def test_lua_calls_touch_one_slot(redis_cluster, cluster_client):
    """400 tokens, 64 per call: every call is one slot, no CROSSSLOT, all exact."""
    s = cluster_settings(redis_cluster, windows=parse_windows("5s,1m"), tokens_per_call=64)
    client = connect(s)
    try:
        engine = Engine(client, s)
        tokens = [f"0x{i:040x}" for i in range(400)] + [t for pair in PAIRS for t in pair]
        ts = many_trades(tokens, 3)
        groups = {t: [x.record.partition(" ")[2] for x in ts if x.token == t] for t in tokens}
        calls = engine.calls(groups)
        for call in calls:
            slots = {key_slot(k.encode()) for token, _ in call for k in token_keys(token)}
            assert len(slots) == 1, slots
        assert max(len(call) for call in calls) >= 2, "no call batched same-slot tokens"
        results = engine.apply_records([t.record for t in ts], now=BASE_TS + 1_000)
        assert len(results) == len(tokens)
        assert [r for r in results if r.failed or r.applied != 3] == []
        reader = Reader(client, s, engine.scripts)
        check(reader, ts, BASE_TS + 1_000, s.windows, tokens[::37] + list(PAIRS[0]))
        stamped = sum(client.zcard(active(shard)) for shard in range(s.shards))
        assert stamped == len(tokens)
    finally:
        client.close()


def test_cross_slot_call_is_refused(redis_cluster, cluster_client):
    """Control: a hand-made call with tokens of two slots fails instead of running."""
    s = cluster_settings(redis_cluster, windows=parse_windows("5s"), tokens_per_call=64)
    client = connect(s)
    try:
        engine = Engine(client, s)
        a, b = TOKENS
        assert key_slot(a.encode()) != key_slot(b.encode())
        trade = many_trades([a, b], 1)
        call = [(t.token, [t.record.partition(" ")[2]]) for t in trade]
        with pytest.raises(StoreError, match="(?i)slot"):
            engine.apply_call(call, now=BASE_TS)
    finally:
        client.close()


def test_noscript_after_script_flush_on_every_node(redis_cluster, cluster_client):
    """SCRIPT FLUSH on all nodes mid-run: pipelined applies and reads reload and stay exact."""
    s = cluster_settings(redis_cluster, windows=parse_windows("10s"), tokens_per_call=8)
    client = connect(s)
    try:
        engine = Engine(client, s)
        reader = Reader(client, s, engine.scripts)
        tokens = [f"0x{i:040x}" for i in range(30)]
        first, second = many_trades(tokens, 2), many_trades(tokens, 4)[-60:]
        engine.apply_records([t.record for t in first], now=BASE_TS + 1_000)
        for node in redis_cluster.node_clients():
            node.script_flush()
            assert node.script_exists(engine.scripts.apply_trades.sha) == [False]
            node.close()
        results = engine.apply_records([t.record for t in second], now=BASE_TS + 2_000)
        assert [r for r in results if r.failed] == []
        for node in redis_cluster.node_clients():
            assert node.script_exists(engine.scripts.apply_trades.sha) == [True]
            node.script_flush()
            node.close()
        check(reader, first + second, BASE_TS + 2_000, s.windows, tokens)
    finally:
        client.close()


def test_apply_calls_isolates_a_failed_stamp(redis_cluster, cluster_client):
    """One pipeline, many calls: a shard whose ZADD fails fails only its calls; a replay heals."""
    s = cluster_settings(redis_cluster, windows=parse_windows("10s"), shards=4)
    client = connect(s)
    try:
        engine = Engine(client, s)
        tokens = [f"0x{i:040x}" for i in range(40)]
        ts = many_trades(tokens, 2)
        groups = group_records([t.record for t in ts])[0]
        client.set(active(1), "not a sorted set")
        calls = engine.calls(groups)
        outs = engine.apply_calls(calls, now=BASE_TS + 1_000)
        broken = [any(shard_of(t, 4) == 1 for t, _ in call) for call in calls]
        assert [isinstance(o, StoreError) for o in outs] == broken
        assert any(broken) and not all(broken)
        assert all(r.applied == 2 for o in outs if isinstance(o, list) for r in o)
        client.delete(active(1))
        again = engine.apply_calls(calls, now=BASE_TS + 1_000)
        for call, out in zip(calls, again, strict=True):
            assert isinstance(out, list)
            assert [r.duplicates for r in out] == [2] * len(call)
        assert client.zcard(active(1)) == sum(shard_of(t, 4) == 1 for t in tokens)
        reader = Reader(client, s, engine.scripts)
        check(reader, ts, BASE_TS + 1_000, s.windows, tokens)
    finally:
        client.close()


def test_service_keys_spread_over_nodes(redis_cluster, cluster_client):
    """Shard streams, active indexes and dead letters land on every node, per shard one slot."""
    shards = 8
    for shard in range(shards):
        names = (stream(shard), active(shard), dead(shard))
        assert len({key_slot(k.encode()) for k in names}) == 1, names
        cluster_client.xadd(stream(shard), {"v": "1"})
        cluster_client.zadd(active(shard), {"x": 1})
        cluster_client.xadd(dead(shard), {"v": "1"})
    per_node = []
    for node in redis_cluster.node_clients():
        per_node.append(len(node.keys("tradeagg:*")))
        node.close()
    assert sum(per_node) == 3 * shards
    assert all(per_node), f"a node holds no shard keys: {per_node}"


def test_token_keys_spread_and_stay_together(redis_cluster, cluster_client):
    """Many tokens' keys land on every node; a token's four keys sit on one node."""
    s = cluster_settings(redis_cluster, windows=parse_windows("5s"))
    client = connect(s)
    try:
        tokens = [f"0x{i:040x}" for i in range(60)]
        Engine(client, s).apply_records([t.record for t in many_trades(tokens, 1)], now=BASE_TS + 1)
    finally:
        client.close()
    where: dict[str, set[int]] = {}
    for n, node in enumerate(redis_cluster.node_clients()):
        for key in node.keys("token:*"):
            where.setdefault(key.decode().split("{")[1].split("}")[0], set()).add(n)
        node.close()
    assert sorted(where) == sorted(tokens)
    assert all(len(nodes) == 1 for nodes in where.values()), where
    assert {n for nodes in where.values() for n in nodes} == {0, 1, 2}
    for n, node in enumerate(redis_cluster.node_clients()):
        mine = [t for t, nodes in where.items() if n in nodes]
        assert sum(node.exists(k) for t in mine for k in token_keys(t)) == 4 * len(mine)
        node.close()


def test_connect_picks_the_cluster_client(redis_cluster):
    from_url = Settings.from_env({"REDIS_URL": redis_cluster.url})
    switch = Settings.from_env(
        {
            "REDIS_URL": f"redis://127.0.0.1:{redis_cluster.ports[1]}/0",
            "TRADEAGG_REDIS_CLUSTER": "1",
        }
    )
    for settings in (from_url, switch):
        client = connect(settings)
        try:
            assert isinstance(client, Cluster)
            assert len(client.get_primaries()) == 3
        finally:
            client.close()


def test_script_pipeline_as_context_manager_and_plain_commands(redis_cluster, cluster_client):
    """The wrapped pipeline still works like redis-py's: with-block, keyed commands on 3 nodes."""
    s = cluster_settings(redis_cluster)
    client = connect(s)
    try:
        names = [f"k{i}" for i in range(30)]
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.set(name, name)
            assert len(pipe) == 30
            assert pipe.execute() == [True] * 30
        assert client.pipeline(transaction=False).execute() == []
        with client.pipeline() as pipe:
            for name in names:
                pipe.get(name)
            assert pipe.execute() == [n.encode() for n in names]
    finally:
        client.close()
