"""Extra job types from modules named in ``JOBCORE_JOB_MODULES``.

Each module defines ``SPECS`` (a list of ``JobSpec``) and ``IMPLEMENTATIONS`` (a dict
from type name to function). The API must be given the same modules so it can
validate and enqueue them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping

from jobcore.execution import JobFunction
from jobcore.specs import JobTypes, load_job_types

#: Environment variable naming the plugin modules, comma separated.
ENV_VAR = "JOBCORE_JOB_MODULES"


def load_plugins(
    builtin: Mapping[str, JobFunction],
) -> tuple[JobTypes, dict[str, JobFunction]]:
    implementations = dict(builtin)
    for name in filter(None, (m.strip() for m in os.environ.get(ENV_VAR, "").split(","))):
        implementations.update(getattr(importlib.import_module(name), "IMPLEMENTATIONS", {}))
    job_types = load_job_types()
    return job_types, implementations
