"""Benchmarks that print figures (speed, accuracy); targets live here, not in unit tests."""
