"""Benchmarks (not tests): each module prints its figures (medians, ratios) and exposes `run(...) -> dict`."""
