"""Pipelines split across connections: parts sent at once, answers in order."""

from __future__ import annotations

import gevent
import gevent.event
import pytest

from tradeagg.api.pipelines import LEAST, WAYS, fetch_split, split


def test_split_keeps_order_and_bounds_the_parts() -> None:
    items = list(range(1000))
    parts = split(items)
    assert len(parts) == WAYS and [x for p in parts for x in p] == items
    assert split(list(range(LEAST))) == [list(range(LEAST))]  # a few items: one part
    assert all(len(p) >= LEAST for p in split(list(range(3 * LEAST)))[:-1])


def test_parts_are_fetched_at_once_and_answered_in_order() -> None:
    started, release = [], gevent.event.Event()

    def fetch(part):  # stands in for a pipeline: each waits until every part has started
        started.append(part[0])
        if len(started) == WAYS:
            release.set()
        assert release.wait(5), "parts were fetched one after another"
        return [x * 2 for x in part]

    items = list(range(WAYS * LEAST))
    assert fetch_split(fetch, items) == [x * 2 for x in items]


def test_a_failed_part_fails_the_fetch() -> None:
    def fetch(part):
        if 0 in part:
            raise ConnectionError("gone")
        return list(part)

    with pytest.raises(ConnectionError):
        fetch_split(fetch, list(range(WAYS * LEAST)))
