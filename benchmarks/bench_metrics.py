"""Cost of a metric call: in-process aggregation vs one UDP packet per call.

    python benchmarks/bench_metrics.py [N]

Prints ns per call for StatsdMetrics.incr/timing (aggregated, flushed once)
and for the bare statsd client (one packet per call), to a local UDP port
nobody reads.
"""

from __future__ import annotations

import socket
import sys
import time

import statsd

from tradeagg.observe.metrics import StatsdMetrics


def per_call_ns(fn, n: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - t0) / n


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    port = sink.getsockname()[1]
    m = StatsdMetrics("127.0.0.1", port, "bench")
    raw = statsd.StatsClient("127.0.0.1", port, prefix="bench")
    incr = per_call_ns(lambda: m.incr("trades.received"), n)
    timing = per_call_ns(lambda: m.timing("apply.latency", 1.5), n)
    t0 = time.perf_counter_ns()
    m.flush()
    flush_us = (time.perf_counter_ns() - t0) / 1000
    udp = per_call_ns(lambda: raw.incr("trades.received"), n)
    print(f"calls={n}")
    print(f"aggregated incr      {incr:8.0f} ns/call")
    print(f"aggregated timing    {timing:8.0f} ns/call")
    print(f"flush (1 interval)   {flush_us:8.0f} us")
    print(f"packet per incr      {udp:8.0f} ns/call")


if __name__ == "__main__":
    main()
