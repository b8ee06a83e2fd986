"""The brute-force reference lives in tradeagg.reference (bench uses it too)."""

from tradeagg.engine.reference import distinct, previous, start, window, windows

__all__ = ["distinct", "previous", "start", "window", "windows"]
