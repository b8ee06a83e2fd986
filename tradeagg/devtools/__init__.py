"""Synthetic feed, demo and benchmarks: tooling, never imported by the service's runtime."""
