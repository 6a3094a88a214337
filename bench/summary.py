"""Several bench runs summarised: each figure's median with its minimum and maximum, and
ratios taken run by run (the two systems of one run shared the machine's mood)."""

from __future__ import annotations

import statistics
from typing import Any


def get(results: dict[str, Any], *path: str) -> Any:
    value: Any = results
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def numbers(runs: list[dict[str, Any]], *path: str) -> list[float]:
    """The figure at ``path`` in every run that has it."""
    found = [get(run, *path) for run in runs]
    return [v for v in found if isinstance(v, int | float) and not isinstance(v, bool)]


def ratios(runs: list[dict[str, Any]], ours: tuple[str, ...], base: tuple[str, ...]) -> list[float]:
    """``ours / base`` within each run that has both."""
    pairs = [(get(run, *ours), get(run, *base)) for run in runs]
    return [
        a / b for a, b in pairs if isinstance(a, int | float) and isinstance(b, int | float) and b
    ]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def text(values: list[float], digits: int = 0, suffix: str = "") -> str:
    """``median (min–max)``, or ``—`` without values; one value alone has no range."""
    if not values:
        return "—"
    mid = statistics.median(values)
    shown = f"{mid:,.{digits}f}{suffix}"
    if len(values) > 1:
        shown += f" ({min(values):,.{digits}f}–{max(values):,.{digits}f})"
    return shown


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs folded into one result of the same shape: numbers are medians, anything
    else is the last run's."""
    if not runs:
        return {}
    return _fold(runs)


def _fold(items: list[Any]) -> Any:
    last = items[-1]
    if isinstance(last, dict):
        keys = [k for k in last if all(isinstance(i, dict) and k in i for i in items)]
        return {k: _fold([i[k] for i in items]) for k in keys}
    if all(isinstance(i, int | float) and not isinstance(i, bool) for i in items):
        mid = statistics.median(items)
        return int(mid) if all(isinstance(i, int) for i in items) and mid == int(mid) else mid
    return last
