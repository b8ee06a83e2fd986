"""`tradeagg serve`: the HTTP read API, Server-Sent Events and the live screener."""

from __future__ import annotations

import argparse
import logging

import gevent.pool
from gevent import monkey
from gevent.pywsgi import WSGIServer

from tradeagg.api.app import REDIS_CONCURRENCY, Api, Handler
from tradeagg.api.hub import Hub
from tradeagg.logs import kv
from tradeagg.observe.metrics import metrics_from_settings, run_flusher
from tradeagg.runtime.service import Service
from tradeagg.settings import Settings
from tradeagg.store.connection import connect

log = logging.getLogger("tradeagg.serve")

MAX_CONNECTIONS = 10_000  # open HTTP connections (SSE clients included); more wait to be accepted

EXAMPLES = """examples:
  tradeagg serve                               on $PORT, else $TRADEAGG_HTTP_PORT (8080)
  curl localhost:8080/v1/tokens/ADDR
  curl 'localhost:8080/v1/top?window=5m&by=volume&limit=50'
  curl -N 'localhost:8080/v1/stream?top=5m:volume:20'
  open http://localhost:8080/                  the live screener
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="HTTP read API, live updates (SSE) and the web screener, until SIGTERM/SIGINT.",
        description="Serves token reads, batch reads, the ranking, Server-Sent Events fed "
        "from the change streams, /healthz and the live screener at /. With "
        "TRADEAGG_API_TOKEN set, /v1/* needs 'Authorization: Bearer <token>'.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not monkey.is_module_patched("socket"):
        log.warning("gevent has not patched socket: run through the tradeagg entry point")
    metrics = metrics_from_settings(settings)
    service = Service("serve", metrics, drain_s=5.0)
    blocking = connect(settings, block_ms=1_000, max_connections=2)
    client = connect(settings, max_connections=REDIS_CONCURRENCY + 8)
    hub = Hub(blocking, client, settings, metrics)
    api = Api(client, hub, settings, metrics)

    def stopping() -> bool:
        return service.stopping.is_set()

    service.spawn("hub", hub.run, stopping)
    service.spawn("ranking", hub.rank_loop, stopping)
    service.spawn("metrics", run_flusher, service, metrics, settings.metrics_interval)
    server = WSGIServer(
        (settings.http_host, settings.http_port),
        api,
        spawn=gevent.pool.Pool(MAX_CONNECTIONS),
        handler_class=Handler,
        log=None,
        error_log=logging.getLogger("tradeagg.http"),
    )
    server.start()
    log.info(
        "serving %s",
        kv(host=settings.http_host, port=server.server_port, auth=bool(settings.api_token)),
    )
    code = service.run()
    hub.close()
    server.stop(timeout=3)
    log.info("serve stopped")
    return code
