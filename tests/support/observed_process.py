"""A small real process for observability tests: Service + observe.start + a fake feed.

``python -m tests.support.observed_process KIND NAME [--feed N] [--forever] [--block-ms MS]``
patches gevent first, like ``python -m tradeagg``, reads Settings from the
environment and runs until SIGTERM. ``--feed N`` counts N ``trades.received``
and N ``apply.latency`` samples, then logs ``fed``; ``--forever`` keeps
counting 100 a tick; ``--block-ms`` blocks the event loop once, after the
first heartbeat, with an unpatched sleep.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402

from tradeagg import logs  # noqa: E402
from tradeagg.observe import heartbeat  # noqa: E402
from tradeagg.observe.metrics import metrics_from_settings  # noqa: E402
from tradeagg.runtime.service import Service  # noqa: E402
from tradeagg.settings import Settings  # noqa: E402
from tradeagg.store.connection import connect  # noqa: E402

log = logging.getLogger("tests.observed")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("kind")
    p.add_argument("name")
    p.add_argument("--feed", type=int, default=0)
    p.add_argument("--forever", action="store_true")
    p.add_argument("--block-ms", type=int, default=0)
    args = p.parse_args()
    settings = Settings.from_env()
    logs.setup(settings.log_level, process=f"{args.kind}.{args.name}")
    metrics = metrics_from_settings(settings)
    service = Service(args.kind, metrics, drain_s=5)
    client = connect(settings)
    observer = heartbeat.start(service, client, settings, metrics, args.kind, args.name)

    def feed() -> None:
        for i in range(args.feed):
            metrics.incr("trades.received")
            metrics.timing("apply.latency", float(i % 10))
        log.info("fed %s", logs.kv(count=args.feed))
        while args.forever and not service.sleep(0.01):
            metrics.incr("trades.received", 100)

    def block() -> None:
        while not client.exists(observer.key):
            gevent.sleep(0.01)
        monkey.get_original("time", "sleep")(args.block_ms / 1000)
        log.info("blocked %s", logs.kv(ms=args.block_ms))

    service.spawn("feed", feed, restart=False)
    if args.block_ms:
        service.spawn("block", block, restart=False)
    return service.run()


if __name__ == "__main__":
    sys.exit(main())
