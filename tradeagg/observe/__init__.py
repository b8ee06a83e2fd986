"""Metrics, deployment probes and heartbeats."""
