"""A gunicorn-served API on a Redis of the test's own, for tests that break or flood it."""

from __future__ import annotations

from functools import partial

from conftest import ApiProcess

#: One gunicorn worker is enough for these tests and keeps their Redis traffic readable.
LiveApi = partial(ApiProcess, workers=1)
