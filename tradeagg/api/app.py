"""The HTTP read API (CONTRACT §7) as one WSGI application.

Routes (all GET; OPTIONS answers CORS preflights):

* ``/v1/tokens/{ADDR}?at=MS``: ``show --json`` object of one token
* ``/v1/tokens?ids=A,B&at=MS``: array of up to 100 such objects, one instant
* ``/v1/top?window=5m&by=volume&limit=50&at=MS&min_volume=Q``: array of ``top --json`` rows
* ``/v1/stream?tokens=A,B`` or ``?top=5m:volume:50``: Server-Sent Events
* ``/v1/windows``: the configured window labels and the default one
* ``/healthz``: 200 when Redis answers PING, else 503
* ``/`` and ``/static/{file}``: the live screener

``/v1/*`` needs ``Authorization: Bearer $TRADEAGG_API_TOKEN`` when that is
set. Every input goes through ``params`` before any Redis call; a bad one is
a 4xx with ``{"error": ...}``; an unexpected failure is logged and a 500
without details; a Redis failure is a 503.
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.lock
import redis
from gevent.pywsgi import WSGIHandler
from gevent.socket import wait_read

from tradeagg.api import http, params
from tradeagg.api.hub import Hub, Subscriber, update_event
from tradeagg.api.params import ApiError
from tradeagg.api.push import DirectWriter
from tradeagg.api.static import Static
from tradeagg.engine.rank import Ranker, default_window
from tradeagg.engine.read import Reader
from tradeagg.engine.viewjson import row_json, view_json
from tradeagg.errors import StoreError, UsageError
from tradeagg.logs import kv
from tradeagg.observe.metrics import Metrics
from tradeagg.settings import Settings

log = logging.getLogger("tradeagg.api")

REDIS_CONCURRENCY = 32  # requests reading Redis at once; the rest wait their turn
KEEPALIVE_S = 15.0
SSE_HEADERS = [
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-store"),
    ("X-Accel-Buffering", "no"),
]

SOCKET = "tradeagg.socket"  # environ key of the client's socket (see ``Handler``)
HANDLER = "tradeagg.handler"  # environ key of the connection's pywsgi handler

Route = Callable[..., http.Response]


class Handler(WSGIHandler):
    """pywsgi's handler, also handing the client socket to the application, so that an
    idle event stream notices at once when its client hangs up, and itself, so that
    the hub can write an event stream once its headers are out (``push``)."""

    def get_environ(self) -> dict:
        environ = super().get_environ()
        environ[SOCKET] = self.socket
        environ[HANDLER] = self
        return environ


def watch_hangup(sock: Any, sub: Subscriber) -> None:
    """Close ``sub`` when its client hangs up (readable with nothing to read)."""
    try:
        wait_read(sock.fileno())
        if not sock.recv(1, socket.MSG_PEEK):
            sub.close()
    except OSError:
        sub.close()


def push(sub: Subscriber, writer: DirectWriter) -> None:
    """A stream the hub writes (``Hub.flush``): this greenlet writes only what the hub
    could not (``backlog``, then whatever came meanwhile) and the keepalives, cooperatively;
    returns when the client is gone or dropped."""
    try:
        while not sub.closed:
            while sub.writing and not sub.closed:
                data, sub.backlog = sub.backlog, b""
                if sub.mailbox:
                    data += writer.frame(sub.pending())
                if not data:
                    sub.writing = False  # the hub writes again
                    break
                writer.send(data)
                sub.taken_at = time.monotonic()
            if not sub.ready.wait(KEEPALIVE_S) and not sub.writing and not sub.closed:
                sub.backlog, sub.writing = writer.frame(b": keepalive\n\n"), True
            sub.ready.clear()
    except OSError:  # the client is gone
        sub.close()


class Api:
    def __init__(self, client: Any, hub: Hub, settings: Settings, metrics: Metrics) -> None:
        self.client = client
        self.hub = hub
        self.settings = settings
        self.metrics = metrics
        self.reader = Reader(client, settings)
        self.ranker = Ranker(client, settings, self.reader)
        self.static = Static()
        self.slots = gevent.lock.BoundedSemaphore(REDIS_CONCURRENCY)
        self.routes: list[tuple[re.Pattern[str], Route, bool]] = [
            (re.compile(r"^/v1/tokens/([^/]*)$"), self.token, True),
            (re.compile(r"^/v1/tokens$"), self.tokens, True),
            (re.compile(r"^/v1/top$"), self.top, True),
            (re.compile(r"^/v1/stream$"), self.stream, True),
            (re.compile(r"^/v1/windows$"), self.windows, True),
            (re.compile(r"^/healthz$"), self.health, False),
            (re.compile(r"^/$"), self.page, False),
            (re.compile(r"^/static/([A-Za-z0-9_.-]{1,64})$"), self.asset, False),
        ]

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Any:
        response = self.respond(environ)
        headers = [*response.headers, *http.CORS]
        start_response(response.status_line(), headers)
        self.metrics.incr(f"http.{response.status // 100}xx")
        return response.body

    def respond(self, environ: dict) -> http.Response:
        path = environ.get("PATH_INFO", "")
        try:
            method = environ.get("REQUEST_METHOD", "")
            if method == "OPTIONS":
                return http.preflight()
            if method != "GET":
                raise ApiError(405, f"method {method[:10]!r} not allowed: GET only")
            for pattern, handler, guarded in self.routes:
                match = pattern.match(path)
                if match:
                    if guarded:
                        http.authorize(environ, self.settings.api_token)
                    return handler(environ, *match.groups())
            raise ApiError(404, f"no route {path[:80]!r}")
        except ApiError as exc:
            return http.error(exc)
        except UsageError as exc:
            return http.error(ApiError(400, str(exc)))
        except (StoreError, redis.RedisError) as exc:
            log.error("redis failed during a request %s", kv(path=path[:80], error=str(exc)[:200]))
            return http.error(ApiError(503, "storage unavailable, try again"))
        except Exception as exc:  # a bug: logged with its type, never shown to the client
            log.exception("request failed %s", kv(path=path[:80], error=type(exc).__name__))
            return http.error(ApiError(500, "internal error"))

    # -- routes --

    def token(self, environ: dict, addr: str) -> http.Response:
        qs = environ.get("QUERY_STRING", "")
        q = params.query(qs, ("at",))
        token, at = params.token(addr), params.at(q.get("at"))
        with self.slots:
            view = self.reader.read(token, at)
        return http.json_text(200, view_json(view))

    def tokens(self, environ: dict) -> http.Response:
        qs = environ.get("QUERY_STRING", "")
        q = params.query(qs, ("ids", "at"))
        if "ids" not in q:
            raise ApiError(400, "ids: give up to 100 comma-separated token addresses")
        tokens, at = params.tokens(q["ids"]), params.at(q.get("at"))
        with self.slots:
            _, views = self.ranker.read_all(tokens, at)
        return http.json_text(200, "[" + ", ".join(view_json(v) for v in views) + "]")

    def top(self, environ: dict) -> http.Response:
        qs = environ.get("QUERY_STRING", "")
        q = params.query(qs, ("window", "by", "limit", "at", "min_volume"))
        window = params.window(q.get("window"), self.settings, default_window(self.settings))
        by, limit = params.by(q.get("by")), params.limit(q.get("limit"), 50)
        at, least = params.at(q.get("at")), params.min_volume(q.get("min_volume"))
        if at is None:  # the shared pass (see Hub.top): its instant is each row's "at"
            ranking = self.hub.top(window, by, limit, least)
        else:
            with self.slots:
                ranking = self.ranker.top(window, by, limit, at, min_volume=least)
        return http.json_text(
            200, "[" + ", ".join(row_json(r, ranking) for r in ranking.rows) + "]"
        )

    def stream(self, environ: dict) -> http.Response:
        qs = environ.get("QUERY_STRING", "")
        q = params.query(qs, ("tokens", "top"))
        if ("tokens" in q) == ("top" in q):
            raise ApiError(400, "give either tokens=A,B,... or top=WINDOW:BY:LIMIT")
        if "tokens" in q:
            sub = Subscriber(tokens=params.tokens(q["tokens"], "tokens"))
        else:
            sub = Subscriber(top=params.top_spec(q["top"], self.settings))
        sub.taken_at = math.inf  # not stalled while its greeting waits for Redis (however long)
        self.hub.subscribe(sub)
        try:
            if sub.tokens:
                first, ticket = self.hub.greeting(sub.tokens)  # the newest, where known
                rest = sorted(t for t in sub.tokens if t not in first)
                if rest:
                    with self.slots:
                        views = self.reader.read_many(rest)  # each as of now
                    read = {view.token: update_event(view) for view in views}
                    self.hub.remember(read, ticket)
                    first.update(read)
                for token in sorted(first):  # the current state first, unless a newer one came
                    sub.mailbox.setdefault(token, first[token])
                sub.ready.set()
        except BaseException:
            self.hub.unsubscribe(sub)
            raise
        sub.taken_at = time.monotonic()  # stalled counts from here: waiting for Redis is ours
        body = self._events(sub, environ.get(SOCKET), environ.get(HANDLER))
        return http.Response(200, body, SSE_HEADERS)

    def _events(self, sub: Subscriber, sock: Any, handler: Any = None) -> Iterator[bytes]:
        watcher = gevent.spawn(watch_hangup, sock, sub) if sock is not None else None
        try:
            yield b"retry: 2000\n\n"  # pywsgi sends the headers and this before we go on
            writer = DirectWriter.of(sock, handler)
            if writer is not None:
                sub.writer, sub.writing = writer, True  # the greeting is ours to write
                push(sub, writer)
                return
            while not sub.closed:
                items = sub.take(KEEPALIVE_S)
                if sub.closed:
                    break
                yield b"".join(items) if items else b": keepalive\n\n"
        finally:
            self.hub.unsubscribe(sub)
            if watcher is not None:
                watcher.kill(block=False)

    def windows(self, environ: dict) -> http.Response:
        qs = environ.get("QUERY_STRING", "")
        params.query(qs, ())
        labels = [w.label for w in self.settings.windows]
        doc = {"windows": labels, "default": default_window(self.settings)}
        return http.json_text(200, json.dumps(doc))

    def health(self, environ: dict) -> http.Response:
        qs = environ.get("QUERY_STRING", "")
        params.query(qs, ())
        try:
            with self.slots:
                self.client.ping()
        except redis.RedisError as exc:
            return http.json_text(503, json.dumps({"ok": False, "error": type(exc).__name__}))
        return http.json_text(200, json.dumps({"ok": True, "sse_clients": self.hub.clients()}))

    def page(self, environ: dict) -> http.Response:
        return self.asset(environ, "index.html")

    def asset(self, environ: dict, name: str) -> http.Response:
        found = self.static.get(name)
        if found is None:
            raise ApiError(404, f"no file {name!r}")
        return found
