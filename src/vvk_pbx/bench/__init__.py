"""Benchmark tools: timing calls on the wire."""
