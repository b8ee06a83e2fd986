"""Redis behind Sentinel: ``redis+sentinel://[:password@]h1:26379,h2:26379/SERVICE[/DB]``.

The client asks the Sentinels for SERVICE's current primary on every new
connection (redis-py's ``SentinelConnectionPool``); after a failover the
connections to the old primary fail or are told READONLY, are dropped, and the
next attempt (every caller retries Redis failures) reaches the promoted one.
The password, if any, is the data nodes'; the Sentinels are asked without one.
``rediss+sentinel://`` speaks TLS to the data nodes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

from tradeagg.errors import ConfigError


def parse(url: str) -> tuple[list[tuple[str, int]], str, int, str | None, bool]:
    """``(sentinels, service, db, password, tls)``; ConfigError naming what is wrong."""
    parts = urlsplit(url)
    tls = parts.scheme == "rediss+sentinel"
    hosts = parts.netloc.rpartition("@")[2]
    sentinels: list[tuple[str, int]] = []
    for item in filter(None, hosts.split(",")):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError("REDIS_URL: Sentinel addresses must be host:port,host:port")
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not sentinels or not path:
        raise ConfigError("REDIS_URL: expected redis+sentinel://host:port[,host:port]/SERVICE[/DB]")
    db = int(path[1]) if len(path) > 1 and path[1].isdigit() else 0
    password = unquote(parts.password) if parts.password else None
    return sentinels, path[0], db, password, tls


def connect(url: str, options: dict[str, Any]) -> redis.Redis:
    """A client of the service's current primary, following failovers.

    ``options`` are ``connect()``'s: socket timeouts, ``max_connections``, TLS
    options; the blocking-pool wait (``timeout``) has no meaning here.
    """
    sentinels, service, db, password, tls = parse(url)
    sentinel = Sentinel(
        sentinels,
        sentinel_kwargs={
            "socket_timeout": options.get("socket_connect_timeout", 5.0),
            "socket_connect_timeout": options.get("socket_connect_timeout", 5.0),
        },
    )
    kwargs = {k: v for k, v in options.items() if k != "timeout"}
    if tls:
        kwargs["ssl"] = True
    return sentinel.master_for(service, db=db, password=password, **kwargs)
