"""Fixtures for kafka tests (see tests/conftest.py)."""
