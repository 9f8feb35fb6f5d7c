"""Benchmarks for issue 10: a generated clinic on PostgreSQL, timed beside its baselines."""
