"""Cost of hostile messages on the bridge's per-message path. Prints figures; asserts nothing.

For each ~1 MiB message kind (valid trades, junk arrays, absurd numbers, deep
nesting, ...) a fresh child process builds the message, then hands it to
``Bridge.handle`` (what the bridge's loop calls per batch: validate, XADD to a
real redis-server, commit to a stand-in consumer) and reports CPU seconds,
peak-RSS growth beyond the built message, dead letters and WARNING lines.

``--checkout DIR`` (repeatable) runs every kind against the tradeagg found in
DIR (the child gets ``PYTHONPATH=DIR``), so "before" and "after" come from the
same run on the same machine; ratios are hostile / valid of the same checkout:

    python benchmarks/bench_hostile.py --checkout /work/main --checkout "$PWD"

Nothing here writes to the checkouts; Redis is a throwaway server on a free port.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET = 1_040_000  # bytes: ~1 MiB, under the contract's 1 MiB cap
TOKEN = "So11111111111111111111111111111111111111112"
KINDS = (
    "valid",
    "zeros",
    "empty_objects",
    "empty_arrays",
    "floats",
    "huge_exponent",
    "big_integer",
    "deep_nesting",
    "bad_trader",
    "many_keys",
)


def _fill(unit: str, target: int) -> bytes:
    n = max(1, (target - 2) // (len(unit) + 1))
    return ("[" + ",".join([unit] * n) + "]").encode()


def _trade(i: int, now: int, quote: str = '"1.5"', trader: str = TOKEN) -> str:
    return (
        f'{{"id":"sig-{i:08d}-{"x" * 60}","token":"{TOKEN}","side":"buy","amount":"12.5",'
        f'"quote":{quote},"price":"0.00012","ts":{now - 1000},"seq":{i},"trader":"{trader}"}}'
    )


def _trades(now: int, quote: str = '"1.5"', trader: str = TOKEN) -> bytes:
    units, size, i = [], 2, 0
    while True:
        unit = _trade(i, now, quote, trader)
        if size + len(unit) + 1 > TARGET:
            break
        units.append(unit)
        size += len(unit) + 1
        i += 1
    return ("[" + ",".join(units) + "]").encode()


def build(kind: str, now: int) -> bytes:
    if kind == "valid":
        return _trades(now)
    if kind == "zeros":
        return _fill("0", TARGET)
    if kind == "empty_objects":
        return _fill("{}", TARGET)
    if kind == "empty_arrays":
        return _fill("[]", TARGET)
    if kind == "floats":
        return _fill("1.5", TARGET)
    if kind == "huge_exponent":
        return _trades(now, quote="1e1000000")
    if kind == "big_integer":
        digits = "7" * 100_000
        return ("[" + ",".join(_trade(i, now, quote=digits) for i in range(10)) + "]").encode()
    if kind == "deep_nesting":
        depth = TARGET // 2
        return b"[" * depth + b"]" * depth
    if kind == "bad_trader":  # every check passes but the last field's
        return _trades(now, trader="not-an-address")
    if kind == "many_keys":  # one object of ~100k distinct keys: the decoder's worst memory case
        pairs, size, i = [], 2, 0
        while size < TARGET - 20:
            pairs.append(f'"k{i}":0')
            size += len(pairs[-1]) + 1
            i += 1
        return ("{" + ",".join(pairs) + "}").encode()
    raise SystemExit(f"unknown kind {kind}")


class _Msg:
    def __init__(self, value: bytes, offset: int) -> None:
        self._value, self._offset = value, offset

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "bench"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value


class _Consumer:
    def commit(self, **_kwargs: Any) -> None:
        pass


class _Count:
    def __init__(self) -> None:
        self.n = 0

    def handle(self, _record: Any) -> None:
        self.n += 1


def child(kind: str, redis_url: str) -> dict[str, Any]:
    """Run in a fresh process: one message of ``kind`` through Bridge.handle."""
    import logging

    import redis

    from tradeagg.contract import keys
    from tradeagg.observe.metrics import NullMetrics
    from tradeagg.runtime.bridge import Bridge
    from tradeagg.settings import Settings

    warnings = _Count()
    handler = logging.Handler(logging.WARNING)
    handler.emit = warnings.handle  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)
    settings = Settings.from_env({"REDIS_URL": redis_url, "TRADEAGG_SHARDS": "4"})
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    now = int(time.time() * 1000)
    bridge = Bridge(
        _Consumer(), client, settings, NullMetrics(), lambda: False, lambda f, *a, **k: f(*a, **k)
    )
    bridge.handle([_Msg(f"[{_trade(0, now)}]".encode(), 0)])  # warm-up: imports, connection
    client.flushall()
    warnings.n = 0
    value = build(kind, now)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu0 = time.process_time()
    outcome = "ok"
    try:
        bridge.handle([_Msg(value, 1)])
    except Exception as exc:  # the "before" code may crash here: that is a figure too
        outcome = f"raised {type(exc).__name__}"
    cpu = time.process_time() - cpu0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
    dead = sum(client.xlen(keys.dead(s)) for s in range(settings.shards))
    entries = sum(client.xlen(keys.stream(s)) for s in range(settings.shards))
    return {
        "kind": kind,
        "bytes": len(value),
        "cpu_s": cpu,
        "rss_mb": rss / 1024,
        "dead": dead,
        "warnings": warnings.n,
        "entries": entries,
        "outcome": outcome,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis(tmp: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp,
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def run_kind(checkout: str, kind: str, redis_url: str, timeout: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": checkout}
    cmd = [sys.executable, __file__, "--child", kind, "--redis-url", redis_url]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"kind": kind, "outcome": f"timeout {timeout:.0f}s"}
    if out.returncode != 0:
        return {"kind": kind, "outcome": f"exit {out.returncode}: {out.stderr[-200:]!r}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(checkout: str, rows: list[dict[str, Any]]) -> None:
    base = next((r for r in rows if r["kind"] == "valid" and "cpu_s" in r), None)
    print(f"\n== {checkout}")
    print(
        f"{'kind':<15}{'bytes':>9}{'cpu s':>9}{'x valid':>9}{'rss MB':>9}{'x valid':>9}"
        f"{'dead':>8}{'warn':>8}{'entries':>8}  outcome"
    )
    for r in rows:
        if "cpu_s" not in r:
            print(f"{r['kind']:<15}{'':>69}  {r['outcome']}")
            continue
        cpu_x = r["cpu_s"] / base["cpu_s"] if base and base["cpu_s"] else float("nan")
        rss_x = r["rss_mb"] / base["rss_mb"] if base and base["rss_mb"] > 0 else float("nan")
        print(
            f"{r['kind']:<15}{r['bytes']:>9}{r['cpu_s']:>9.3f}{cpu_x:>9.2f}{r['rss_mb']:>9.1f}"
            f"{rss_x:>9.2f}{r['dead']:>8}{r['warnings']:>8}{r['entries']:>8}  {r['outcome']}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkout", action="append", help="tradeagg checkout (repeatable)")
    p.add_argument("--kinds", default=",".join(KINDS), help="comma-separated message kinds")
    p.add_argument("--timeout", type=float, default=300.0, help="per message, seconds")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--redis-url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.redis_url)))
        return
    checkouts = args.checkout or [str(Path(__file__).resolve().parents[1])]
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _start_redis(tmp)
        try:
            for checkout in checkouts:
                rows = [run_kind(checkout, k, url, args.timeout) for k in args.kinds.split(",")]
                report(checkout, rows)
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
