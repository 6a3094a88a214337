"""Jobcore's HTTP API: Falcon resources that parse, call ``jobcore``, and render."""
