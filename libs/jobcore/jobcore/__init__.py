"""Jobcore: every rule about jobs, shared by the API, the worker, the scheduler and the CLI."""

__version__ = "0.1.0"
