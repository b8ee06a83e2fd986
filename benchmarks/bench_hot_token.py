"""Longest single Redis call into a hot token, before vs after, in one run.

Issue 11: Redis runs one script at a time, so the longest EVALSHA is what
every other client waits for. This builds a token holding --trades trades
(88-character ids, like Solana signatures, spread over 55 minutes) through
the engine, then times, client side, one ``apply_trades`` call per case:
late trades at several ages (where they land in the list), a one-trade
append, a duplicate and an in-order batch; then the calls that may take
several rounds, each timed on its own until the token answers done: a
rebuild (indices deleted), a repairing rebuild (an element in the middle
made unparsable: one O(n) call, not bounded), the janitor's catch-up after 20 quiet minutes
(advance repeated while it answers BEHIND), two windows added by a release
(10m and 45m: apply_trades with them until not BEHIND; after the change each
call seeds at most SEED_MAX elements per window), a deep check (verify_token.lua
through engine/integrity.py, forced whatever the list's length) and reads
(read_window.lua at last_update and 20 minutes ahead: sliding in memory, or
answering "behind" past SLIDE_MAX elements a walk; and ``Reader.read`` 20
minutes ahead as show/top/serve call it, each round trip timed: after the
change, the catch-up calls and the read).
Every case starts from the same state (DUMP/RESTORE). A code tree is measured in a child process with
PYTHONPATH set to it, alternating trees, so both are measured on the same
machine in the same run; figures are then compared as ratios. Optionally it
also alternates ``tradeagg bench --json`` (engine, event clock) runs and
prints the throughput ratio after/before. Prints figures; asserts nothing.

    python benchmarks/bench_hot_token.py --before /work/main --after . --rounds 2 --bench-rounds 3
    python benchmarks/bench_hot_token.py --before /work/main --after . --trades 2000000 --reps 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

MINUTE = 60_000
BATCH = 4_000
# case -> how old the late trade is (ms before the newest), or a kind
AGES = {"late-55min (head)": 55 * MINUTE, "late-30min (middle)": 30 * MINUTE,
        "late-5min": 5 * MINUTE, "late-2s (near end)": 2_000}
IDLE = 20 * MINUTE  # the catch-up and the far read: how long the token was quiet
MORE = (4, 5)  # apply_trades statuses asking for another call (BEHIND, REBUILDING)
MAX_ROUNDS = 5_000  # calls per multi-call case, at most


def child(trades: int, reps: int) -> dict:
    """Measure the tree on PYTHONPATH; returns {case: figures}."""
    import redis

    from tradeagg.contract.keys import TokenKeys, apply_keys, token_keys
    from tradeagg.devtools.embedded import Embedded
    from tradeagg.engine import integrity as deep
    from tradeagg.engine.apply import Engine, windows_arg
    from tradeagg.engine.integrity import Integrity
    from tradeagg.settings import Settings

    token = "So11111111111111111111111111111111111111112"
    step = 55 * MINUTE // trades
    base = 1_700_000_000_000

    def entry(i: int, ts: int, ident: str = "") -> str:
        ident = ident or f"{i:0>88}"[-88:] + ":1"
        return f"{ts} 0 {'b' if i % 3 else 's'} {1_000_000_000 + i % 977} 1.{i % 97:02d} {ident}"

    emb = Embedded()
    try:
        client = redis.Redis.from_url(emb.start_redis(), socket_timeout=600)
        # every call's server-side duration, free of this process' scheduling
        client.config_set("slowlog-log-slower-than", 0)
        client.config_set("slowlog-max-len", 100_000)

        durations: list[float] = []  # of the multi-call cases' calls, server side (ms)

        def redis_max_ms() -> float:
            got = client.slowlog_get(100_000)
            client.slowlog_reset()
            names = (b"EVALSHA", b"EVAL", "EVALSHA", "EVAL")
            ms = [e["duration"] / 1000 for e in got if str(e["command"]).split(" ")[0] in names
                  or (isinstance(e["command"], bytes) and e["command"].split(b" ")[0] in names)]
            durations.extend(ms)
            return max(ms, default=0.0)
        s = Settings(max_token_trades=max(2_000_000, trades + 10_000))  # room for the cases
        engine = Engine(client, s)
        build_max = 0.0
        for i in range(0, trades, BATCH):
            batch = [entry(j, base + j * step) for j in range(i, min(i + BATCH, trades))]
            t0 = time.perf_counter()
            engine.apply_call([(token, batch)], now=base + (min(i + BATCH, trades) - 1) * step)
            build_max = max(build_max, time.perf_counter() - t0)
        at = base + (trades - 1) * step
        k = TokenKeys(token)
        dumps = {key: client.dump(key) for key in [*k.all(), k.ids]}
        cases = {name: [entry(trades, at - age + step // 2, "late")] for name, age in AGES.items()}
        cases["append 1"] = [entry(trades, at + 1, "new")]
        cases["duplicate"] = [entry(7, at, f"{trades // 2:0>88}"[-88:] + ":1")]
        cases["in-order batch of 1000"] = [entry(trades + j, at + 1 + j) for j in range(1000)]
        args = [at, "event", windows_arg(s), s.max_token_trades]
        out: dict = {"in-order build batches of 4000 (max)": {"max_ms": build_max * 1000}}
        for name, entries in cases.items():
            times, raw, server = [], [], 0.0
            for _ in range(reps):
                for key, value in dumps.items():
                    client.restore(key, 0, value, replace=True)
                client.slowlog_reset()
                t0 = time.perf_counter()
                raw = engine.scripts.apply_trades(
                    keys=apply_keys(token), args=[*args, "\n".join(entries)]
                )
                times.append(time.perf_counter() - t0)
                server = max(server, redis_max_ms())
            fig = {"max_ms": max(times) * 1000, "median_ms": statistics.median(times) * 1000,
                   "redis_ms": server}
            if len(raw) == 11:  # the structured result: touched and scanned are counted
                fig["touched"], fig["scanned"] = int(raw[8]), int(raw[9])
            out[name] = fig
        windows = windows_arg(s)
        memo = getattr(k, "checked", None) or "bench:no-memo"  # the deep check's memo, if any
        if hasattr(deep, "DEEP_STEP"):  # checked in steps: each verify_token call is timed
            integrity = Integrity(client, s)
        else:  # one call reads the whole list (skipped above DEEP_MAX_ENTRIES: forced here)
            integrity = Integrity(client, s, max_entries=trades + 1)
        verify, steps = integrity._verify, []

        def timed_verify(**kw):
            t0 = time.perf_counter()
            out = verify(**kw)
            steps.append(time.perf_counter() - t0)
            return out

        integrity._verify = timed_verify

        def advance(instant: int, clock: str):
            def call():
                raw = engine.scripts.apply_trades(
                    keys=apply_keys(token), args=[instant, clock, windows, s.max_token_trades, ""]
                )
                return raw, int(raw[0]) not in MORE, int(raw[8]) if len(raw) == 11 else None
            return call

        added = ",".join(sorted([*windows.split(","), "10m:600000", "45m:2700000"],
                                key=lambda x: int(x.split(":")[1])))

        def seed_windows():
            # a release adding 10m and 45m: apply_trades with them, until not BEHIND
            raw = engine.scripts.apply_trades(
                keys=apply_keys(token), args=[at, "event", added, s.max_token_trades, ""]
            )
            return raw, int(raw[0]) not in MORE, int(raw[8]) if len(raw) == 11 else None

        def read(instant: int | str):
            def call():
                return engine.scripts.read_window(keys=token_keys(token), args=[windows, instant])[0], True, None
            return call

        def reader_read(instant: int):
            """Reader.read as show/top/serve call it (after: catch-up calls, then the read);
            each round trip timed client side."""
            from redis.client import Pipeline

            from tradeagg.engine.read import Reader

            def call():
                reader, trips = Reader(client, s, engine.scripts), []
                direct, piped = redis.Redis.execute_command, Pipeline.execute

                def timed(fn):
                    def run(self, *a, **kw):
                        t0 = time.perf_counter()
                        try:
                            return fn(self, *a, **kw)
                        finally:
                            trips.append(time.perf_counter() - t0)
                    return run

                redis.Redis.execute_command, Pipeline.execute = timed(direct), timed(piped)
                try:
                    view = reader.read(token, instant)
                finally:
                    redis.Redis.execute_command, Pipeline.execute = direct, piped
                assert view.at == instant
                return None, True, None, max(trips), len(trips)
            return call

        def damage():
            # an unparsable element in the middle, indices deleted: the stepwise
            # rebuild meets it half way and falls back to the one-call repair
            client.lset(k.trades, trades // 2, "garbage")
            client.delete(k.indices)

        def check():
            # the first call (as the janitor's pipeline sends it), then the steps one by one
            client.delete(memo)
            t0 = time.perf_counter()
            verify(keys=apply_keys(token), args=[windows, integrity.max_entries, "check"])
            first = time.perf_counter() - t0
            steps.clear()
            client.delete(memo)  # a memo set by the call above would skip the check
            reasons = integrity.check([token])
            reasons = getattr(reasons, "corrupt", reasons)  # Checks (with the memo) or a dict
            assert not reasons, reasons
            return reasons, True, None, max([first, *steps]), len(steps) or 1

        rounds = {
            "rebuild (indices deleted)": (lambda: client.delete(k.indices), advance(at, "event")),
            "repairing rebuild (mid element damaged)": (damage, advance(at, "event")),
            "catch-up after 20 min quiet": (None, advance(at + IDLE, "at")),
            "deep check (forced)": (None, check),
            "windows 10m,45m added (seeding)": (None, seed_windows),
            "read at last_update": (None, read("")),
            "read 20 min ahead": (None, read(at + IDLE)),
            "Reader.read 20 min ahead (round trips)": (None, reader_read(at + IDLE)),
        }
        for name, (setup, call) in rounds.items():
            worst, calls, most_touched, server = 0.0, 0, None, 0.0
            durations.clear()
            for _ in range(reps):
                for key, value in dumps.items():
                    client.restore(key, 0, value, replace=True)
                if setup:
                    setup()
                client.slowlog_reset()
                calls = 0
                while calls < MAX_ROUNDS:
                    t0 = time.perf_counter()
                    _raw, done, touched, *inner = call()
                    if inner:  # the call timed its own Redis calls
                        worst, calls = max(worst, inner[0]), calls + inner[1]
                    else:
                        worst, calls = max(worst, time.perf_counter() - t0), calls + 1
                    if touched is not None:
                        most_touched = max(most_touched or 0, touched)
                    if done:
                        break
                server = max(server, redis_max_ms())
            fig = {"max_ms": worst * 1000, "calls": calls, "redis_ms": server,
                   "redis_median_ms": statistics.median(durations) if durations else 0.0}
            if most_touched is not None:
                fig["touched"] = most_touched
            out[name] = fig
        return out
    finally:
        emb.close()


def run_child(tree: str, trades: int, reps: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    cmd = [sys.executable, __file__, "--child", "--trades", str(trades), "--reps", str(reps)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd="/tmp")
    return json.loads(done.stdout.strip().splitlines()[-1])


def engine_bench(tree: str) -> float:
    """trades/s of one ``tradeagg bench`` run of ``tree``; NaN (and why) if it failed."""
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    cmd = [sys.executable, "-m", "tradeagg", "bench", "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd="/tmp")
    try:
        figures = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        print(f"bench of {tree} failed (exit {done.returncode}): {done.stderr[-500:]}")
        return float("nan")
    if figures.get("mismatches"):
        print(f"bench of {tree}: {figures['mismatches']} mismatches {figures['first_mismatch']}")
    return float(figures["trades_per_s"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", default="", help="code tree before the change (PYTHONPATH)")
    p.add_argument("--after", default=".", help="code tree after the change (PYTHONPATH)")
    p.add_argument("--trades", type=int, default=300_000)
    p.add_argument("--reps", type=int, default=3, help="calls per case per child")
    p.add_argument("--rounds", type=int, default=1, help="children per tree, alternating")
    p.add_argument("--bench-rounds", type=int, default=0, help="tradeagg bench runs per tree")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.trades, args.reps)))
        return
    trees = {"after": args.after, **({"before": args.before} if args.before else {})}
    got: dict[str, list[dict]] = {name: [] for name in trees}
    for r in range(args.rounds):
        order = list(trees.items()) if r % 2 else list(reversed(trees.items()))
        for name, tree in order:
            got[name].append(run_child(tree, args.trades, args.reps))
    print(f"{args.trades} trades in one token; longest EVALSHA per case (client side, ms; "
          f"'redis': longest server-side, from SLOWLOG), max over {args.rounds} x {args.reps} runs")
    cases = list(got["after"][0])
    header = f"{'case':<38}" + "".join(f"{n + ' max ms':>16}{'redis':>8}" for n in trees)
    print(header + f"{'before/after':>14}{'touched':>10}{'scanned':>10}{'calls':>7}")
    for case in cases:
        worst = {n: max(run[case]["max_ms"] for run in got[n]) for n in trees}
        server = {n: max(run[case].get("redis_ms", float("nan")) for run in got[n]) for n in trees}
        line = f"{case:<38}" + "".join(f"{worst[n]:>16.1f}{server[n]:>8.1f}" for n in trees)
        ratio = worst["before"] / worst["after"] if "before" in worst else float("nan")
        after = got["after"][0][case]
        line += f"{ratio:>14.1f}{after.get('touched', '-'):>10}{after.get('scanned', '-'):>10}"
        line += f"{after.get('calls', 1):>7}"
        if "redis_median_ms" in after:
            line += f"  (after: median call {after['redis_median_ms']:.1f} ms server side)"
        print(line)
    if args.bench_rounds and args.before:
        tput: dict[str, list[float]] = {name: [] for name in trees}
        for r in range(args.bench_rounds):
            order = list(trees.items()) if r % 2 else list(reversed(trees.items()))
            for name, tree in order:
                tput[name].append(engine_bench(tree))
        med = {n: statistics.median(x for x in v if x == x) for n, v in tput.items()}
        print(f"tradeagg bench trades/s: before {tput['before']} after {tput['after']}")
        print(f"throughput after/before (medians): {med['after'] / med['before']:.3f}")


if __name__ == "__main__":
    main()
