"""Jobcore's worker: Dramatiq processes running the job implementations."""
