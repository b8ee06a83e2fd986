"""Test helpers: real servers, processes, the reference check, strategies."""
