"""Extra job types from the modules named in ``JOBCORE_JOB_MODULES``.

Each module defines ``SPECS`` (a list of ``JobSpec``) and ``IMPLEMENTATIONS`` (a dict
from type name to function). The API is given the same modules so it can validate and
enqueue them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from jobcore.execution.job_lifecycle import JobFunction
from jobcore.model.catalogue import load_job_types
from jobcore.model.specs import JobTypes


def load_plugins(
    modules: str, builtin: Mapping[str, JobFunction]
) -> tuple[JobTypes, dict[str, JobFunction]]:
    implementations = dict(builtin)
    for name in filter(None, (m.strip() for m in modules.split(","))):
        implementations.update(getattr(importlib.import_module(name), "IMPLEMENTATIONS", {}))
    return load_job_types(modules), implementations
