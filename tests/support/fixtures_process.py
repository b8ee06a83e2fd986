"""Fixtures for process tests (see tests/conftest.py)."""
