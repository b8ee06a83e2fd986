"""The brute-force reference lives in tradeagg.reference (bench uses it too)."""

from tradeagg.engine.reference import distinct, window, windows

__all__ = ["distinct", "window", "windows"]
