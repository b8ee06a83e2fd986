"""Blocking calls off the gevent hub.

librdkafka's waits (poll, consume, flush, a topic's creation) block the
native thread they run on; run on the hub they would stop every greenlet.
``on_hub_threadpool`` runs one on gevent's native threadpool and waits for it
cooperatively (STYLE.md: a 10 ms greenlet woke 0 times in 3 s without it).
"""

from __future__ import annotations

from typing import Any

import gevent


def on_hub_threadpool(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` on a native thread; the calling greenlet yields until it returns."""
    return gevent.get_hub().threadpool.spawn(fn, *args, **kwargs).get()


def direct(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in place: for callers outside any gevent loop."""
    return fn(*args, **kwargs)
