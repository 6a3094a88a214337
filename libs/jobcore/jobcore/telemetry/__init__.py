"""Tracing, metrics and logs for every Jobcore process."""
