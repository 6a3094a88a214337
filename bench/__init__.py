"""Benchmarks of Jobcore beside bare Dramatiq (``make bench``); not tests."""
