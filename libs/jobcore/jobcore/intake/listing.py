"""Listing filters: which state, job type and page size a listing may ask for, checked once
for the API and the command line alike."""

from __future__ import annotations

import re
from dataclasses import dataclass

from jobcore.errors import InvalidRequest, Problem, quoted
from jobcore.model.specs import JobTypes
from jobcore.model.states import ALL_STATES

#: Page size of a listing that names none (``GET /jobs``, ``jobcore jobs``).
DEFAULT_PAGE_SIZE = 50
#: What a cursor must be, for the API's and the CLI's refusals alike.
CURSOR_RULE = "must be a nextCursor value from a previous page"
_CURSOR = re.compile(r"[0-9]{1,18}")


def parse_cursor(text: str) -> int | None:
    """A page cursor (a whole number, as ``nextCursor`` gives it), or ``None`` if ``text``
    is not one."""
    return int(text) if _CURSOR.fullmatch(text) else None


@dataclass(frozen=True)
class ListFilters:
    state: str | None
    #: The canonical type name (an alias is resolved).
    job_type: str | None
    limit: int


def filter_problems(
    job_types: JobTypes, *, state: str | None, job_type: str | None, limit: int, max_limit: int
) -> tuple[ListFilters, list[Problem]]:
    """The filters with aliases resolved, and what is wrong with them (pointers ``/query/...``).

    Callers add their own problems (a cursor, a limit that is not a number: pass ``-1``)
    and raise ``InvalidRequest`` once, so a client learns everything in one answer.
    """
    problems = []
    if state is not None and state not in ALL_STATES:
        problems.append(
            Problem("/query/state", f"unknown state; use one of {', '.join(ALL_STATES)}")
        )
    canonical = None
    if job_type is not None:
        canonical = job_types.canonical_name(job_type)
        if canonical is None:
            problems.append(Problem("/query/type", f"unknown job type {quoted(job_type)}"))
    if not 1 <= limit <= max_limit:
        problems.append(Problem("/query/limit", f"must be a whole number from 1 to {max_limit}"))
    return ListFilters(state, canonical, limit), problems


def raise_for(problems: list[Problem]) -> None:
    if problems:
        raise InvalidRequest(problems, title="Invalid query")
