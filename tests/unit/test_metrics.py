"""StatsdMetrics: in-process aggregation, batched flush, read back from a real UDP socket."""

from __future__ import annotations

import threading

import pytest

from tests.support.statsd_listener import StatsdListener
from tradeagg.errors import ConfigError
from tradeagg.observe.catalogue import COUNTERS
from tradeagg.observe.metrics import (
    MAX_SAMPLES,
    StatsdMetrics,
    TotalsMetrics,
    metrics_from_settings,
)
from tradeagg.settings import Settings


@pytest.fixture
def listener():
    lst = StatsdListener()
    yield lst
    lst.close()


def make(listener: StatsdListener, prefix: str = "ta") -> StatsdMetrics:
    return StatsdMetrics("127.0.0.1", listener.port, prefix)


def test_nothing_is_sent_before_flush_and_counters_are_summed(listener):
    m = make(listener)
    for _ in range(1000):
        m.incr("trades.received")
    m.incr("trades.applied", 7)
    m.incr("trades.applied", 5)
    assert listener.packets == []
    m.flush()
    listener.wait_for(lambda: len(listener.named("ta.trades.applied")) == 1)
    assert [(s.value, s.type) for s in listener.named("ta.trades.received")] == [(1000, "c")]
    assert [(s.value, s.type) for s in listener.named("ta.trades.applied")] == [(12, "c")]
    assert len(listener.packets) == 1  # one datagram for the whole interval


def test_flush_sends_an_interval_once(listener):
    m = make(listener)
    m.incr("a", 3)
    m.flush()
    m.flush()  # nothing new: nothing sent
    m.incr("a", 4)
    m.flush()
    listener.wait_for(lambda: len(listener.named("ta.a")) == 2)
    assert [s.value for s in listener.named("ta.a")] == [3, 4]
    assert len(listener.packets) == 2
    assert m.totals() == {"a": 7}


def test_gauges_keep_the_last_value_including_negative(listener):
    m = make(listener)
    m.gauge("tokens.active", 10)
    m.gauge("tokens.active", 42)
    m.gauge("drift", -3)
    m.flush()
    listener.wait_for(lambda: listener.named("ta.drift"))
    assert [(s.value, s.type) for s in listener.named("ta.tokens.active")] == [(42, "g")]
    # StatsD reads "-3|g" as a decrement: the client resets to 0 first
    assert [s.value for s in listener.named("ta.drift")] == [0, -3]


def test_timers_below_the_cap_send_every_sample(listener):
    m = make(listener)
    for ms in (1.5, 2.25, 30.0):
        m.timing("apply.latency", ms)
    m.flush()
    listener.wait_for(lambda: len(listener.named("ta.apply.latency")) == 3)
    got = listener.named("ta.apply.latency")
    assert sorted(s.value for s in got) == [1.5, 2.25, 30.0]
    assert {(s.type, s.rate) for s in got} == {("ms", 1.0)}


def test_timers_above_the_cap_are_sampled_with_a_rate_that_restores_the_count(listener):
    m = make(listener)
    n = MAX_SAMPLES * 5
    for i in range(n):
        m.timing("visible.latency", float(i))
    m.flush()
    listener.wait_for(lambda: len(listener.named("ta.visible.latency")) == MAX_SAMPLES)
    got = listener.named("ta.visible.latency")
    assert {s.rate for s in got} == {MAX_SAMPLES / n}
    assert round(sum(1 / s.rate for s in got)) == n
    assert all(0 <= s.value < n for s in got)
    assert len(listener.packets) > 1  # split to respect the datagram size
    assert all(len(p) <= 1432 for p in listener.packets)


def test_counts_from_many_threads_add_up(listener):
    m = make(listener)

    def work() -> None:
        for _ in range(20_000):
            m.incr("trades.received")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    flushed = 0
    while any(t.is_alive() for t in threads):
        m.flush()
        flushed += 1
    for t in threads:
        t.join()
    m.flush()
    listener.wait_for(lambda: listener.counter("ta.trades.received") == 80_000)
    assert m.totals()["trades.received"] == 80_000


def test_no_prefix_sends_bare_names(listener):
    m = StatsdMetrics("127.0.0.1", listener.port, "")
    m.incr("x")
    m.flush()
    listener.wait_for(lambda: listener.named("x"))


def test_factory_follows_statsd_host(listener):
    off = metrics_from_settings(Settings())
    assert isinstance(off, TotalsMetrics) and not isinstance(off, StatsdMetrics)
    off.incr("a", 2)
    off.timing("t", 1.0)
    assert off.totals() == {"a": 2}
    on = metrics_from_settings(
        Settings.from_env(
            {"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(listener.port), "STATSD_PREFIX": "p"}
        )
    )
    assert isinstance(on, StatsdMetrics)
    on.incr("b")
    on.flush()
    listener.wait_for(lambda: listener.named("p.b"))


def test_an_unresolvable_host_is_a_config_error():
    with pytest.raises(ConfigError, match="STATSD_HOST"):
        StatsdMetrics("no-such-host.invalid", 8125)


def test_declared_counters_are_sent_as_zero_until_counted(listener):
    m = StatsdMetrics("127.0.0.1", listener.port, "ta", declared=("trades.late", "deadletters"))
    m.incr("trades.late", 2)
    m.flush()
    listener.wait_for(lambda: listener.named("ta.deadletters"))
    assert [s.value for s in listener.named("ta.trades.late")] == [2]
    assert [(s.value, s.type) for s in listener.named("ta.deadletters")] == [(0, "c")]
    m.flush()  # an empty interval still reports the declared series, as zeros
    listener.wait_for(lambda: len(listener.named("ta.trades.late")) == 2)
    assert [s.value for s in listener.named("ta.trades.late")] == [2, 0]


def test_processes_declare_every_catalogued_counter(listener):
    m = metrics_from_settings(
        Settings.from_env({"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(listener.port)})
    )
    m.flush()
    listener.wait_for(lambda: listener.named("tradeagg.greenlet.crashed"))
    for name in COUNTERS:
        assert [s.value for s in listener.named(f"tradeagg.{name}")] == [0], name
