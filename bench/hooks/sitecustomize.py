"""Loaded by every Python process started with ``bench/hooks`` on ``PYTHONPATH``: counts the
process's Redis round trips when ``BENCH_ROUNDTRIP_DIR`` is set, and applies the what-if
switches of ``BENCH_EXPERIMENT`` (see ``bench.experiments``)."""

import os

if os.environ.get("BENCH_EXPERIMENT"):
    from bench.experiments import apply

    apply()

if os.environ.get("BENCH_ROUNDTRIP_DIR"):
    from bench.roundtrips import DIRECTORY_ENV, write_to

    write_to(os.environ[DIRECTORY_ENV])
