"""How a Jobcore process refuses to start: one line saying why, and ``EX_CONFIG``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from jobcore.errors import EXIT_REFUSED_TO_START, ConfigurationError


@contextmanager
def refuse_to_start_on_configuration_errors(service: str) -> Iterator[None]:
    """A ``ConfigurationError`` inside becomes one JSON line on stderr and exit status 78,
    which tells a supervisor that restarting the process cannot help."""
    try:
        yield
    except ConfigurationError as exc:
        line = {"event": "cannot start", "service": service, "error": str(exc), "level": "error"}
        print(json.dumps(line), file=sys.stderr, flush=True)
        raise SystemExit(EXIT_REFUSED_TO_START) from None
