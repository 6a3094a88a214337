"""Jobcore's scheduler: periodiq ticks turned into job submissions."""
