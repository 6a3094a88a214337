"""What-if switches for measuring a proposed optimisation without changing Jobcore's code.

``BENCH_EXPERIMENT`` (comma-separated) is applied in the bench process and, through
``bench/hooks/sitecustomize.py``, in every worker and API process it starts:

- ``no-redis-spans``: no OpenTelemetry CLIENT span per Redis command (the Redis
  instrumentation is not installed); job and request spans stay.
"""

from __future__ import annotations

import os

#: Variable naming the experiments to apply.
EXPERIMENT_ENV = "BENCH_EXPERIMENT"
KNOWN = frozenset({"no-redis-spans"})


def requested() -> frozenset[str]:
    names = {n.strip() for n in os.environ.get(EXPERIMENT_ENV, "").split(",") if n.strip()}
    unknown = names - KNOWN
    if unknown:
        raise SystemExit(f"{EXPERIMENT_ENV}: unknown experiment(s) {sorted(unknown)}")
    return frozenset(names)


def apply() -> None:
    if "no-redis-spans" in requested():
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor.instrument = lambda self, **kwargs: None  # type: ignore[method-assign]
