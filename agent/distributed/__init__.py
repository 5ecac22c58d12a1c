"""Batch and eval spread over a Ray cluster (`--ray ADDRESS`); imported only when asked for."""
