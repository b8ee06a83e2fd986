"""The brute-force reference lives in tradeagg.reference (bench uses it too)."""

from tradeagg.engine.reference import distinct, start, window, windows

__all__ = ["distinct", "start", "window", "windows"]
