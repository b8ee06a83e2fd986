"""Parse + validate cost per Kafka message. Prints figures; asserts nothing.

Requirement 1.1: parse and validate a message within 10 ms. Measures, on
synthetic contract JSON: one-trade messages through ``schema.parse_message``
(decode + hand validator, the bridge's path), one array message per 400 ms
block, and a 1 MiB array.

    python benchmarks/bench_schema.py --trades 20000
"""

from __future__ import annotations

import argparse
import json
import time

from tradeagg.contract.validation import parse_message
from tradeagg.devtools.kafkatools import encode
from tradeagg.devtools.synthetic import SyntheticFeed, to_message


def per(label: str, seconds: float, n: int, unit: str = "message") -> None:
    print(f"{label:<44} {seconds / n * 1e6:9.1f} µs/{unit}   ({n} {unit}s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trades", type=int, default=20_000)
    args = p.parse_args()
    now = int(time.time() * 1000)
    trades = SyntheticFeed(tokens=2000, seed=1).trades(args.trades, now - 600_000, 2000)
    singles = [json.dumps(to_message(t)).encode() for t in trades]

    t0 = time.perf_counter()
    for value in singles:
        parse_message(value, now, 5000)
    per("one-trade message: decode + hand validator", time.perf_counter() - t0, len(singles))

    arrays = [value for _key, value, _n in encode(trades, per_block=True)]
    t0 = time.perf_counter()
    for value in arrays:
        parse_message(value, now, 5000)
    took = time.perf_counter() - t0
    per(f"block array (avg {len(trades) // len(arrays)} trades): hand", took, len(arrays))
    per("  same, per trade", took, len(trades), "trade")

    big, size = [], 2
    for m in (to_message(t) for t in trades):
        size += len(json.dumps(m)) + 2
        if size > (1 << 20) - 1000:
            break
        big.append(m)
    value = json.dumps(big).encode()
    t0 = time.perf_counter()
    parse_message(value, now, 5000)
    took = time.perf_counter() - t0
    print(f"{'1 MiB array (' + str(len(big)) + ' trades): hand':<44} {took * 1000:9.1f} ms/message")


if __name__ == "__main__":
    main()
