"""Exact window arithmetic: apply trades, read, rank, check integrity; the brute-force reference."""
