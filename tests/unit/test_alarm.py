"""Alarm: one WARNING when a threshold is crossed, rate-limited while on, INFO when it clears."""

from __future__ import annotations

import logging

from tradeagg.observe.heartbeat import Alarm
from tradeagg.observe.metrics import MemoryMetrics


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def lines(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_warns_once_then_every_repeat_then_clears(caplog):
    caplog.set_level(logging.INFO, logger="tradeagg.observe")
    clock, metrics = Clock(), MemoryMetrics()
    alarm = Alarm("backlog", metrics, repeat_s=60, clock=clock)
    alarm.check(False, backlog=3)
    assert caplog.records == []
    for _ in range(30):  # 30 probes, 1 s apart: one line
        alarm.check(True, backlog=20_000, threshold=10_000)
        clock.t += 1
    assert lines(caplog, logging.WARNING) == [
        "warning warning=backlog on_for_s=0 backlog=20000 threshold=10000"
    ]
    clock.t += 31  # 61 s after the first line
    alarm.check(True, backlog=25_000, threshold=10_000)
    assert len(lines(caplog, logging.WARNING)) == 2
    assert "on_for_s=61" in lines(caplog, logging.WARNING)[1]
    clock.t += 5
    alarm.check(False, backlog=0)
    alarm.check(False, backlog=0)
    assert lines(caplog, logging.INFO) == ["warning cleared warning=backlog on_for_s=66 backlog=0"]
    assert metrics.counters == {"warnings.backlog": 31}  # one per probe while on


def test_turning_on_again_logs_at_once(caplog):
    caplog.set_level(logging.INFO, logger="tradeagg.observe")
    clock = Clock()
    alarm = Alarm("memory", MemoryMetrics(), repeat_s=60, clock=clock)
    alarm.check(True, pct=91)
    clock.t += 1
    alarm.check(False, pct=50)
    clock.t += 1
    alarm.check(True, pct=92)
    assert len(lines(caplog, logging.WARNING)) == 2
    assert len(lines(caplog, logging.INFO)) == 1
