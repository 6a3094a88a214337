"""``csv-export`` (alias ``csv-generation``): a payload written as a CSV file."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from jobcore.execution.context import JobContext


def csv_rows(payload: dict[str, Any]) -> list[list[Any]]:
    """A flat object → ``key,value`` lines; ``{rows: [...]}`` → a header and one line per row
    (columns in the order they first appear); ``{rows: []}`` → no lines at all."""
    if "rows" in payload:
        rows = payload["rows"]
        if not rows:
            return []  # no rows, no columns: an empty file
        header: list[str] = []
        for row in rows:
            header += [name for name in row if name not in header]
        return [header, *[[_cell(row.get(name)) for name in header] for row in rows]]
    return [["key", "value"], *[[key, _cell(value)] for key, value in payload.items()]]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def write_csv(job: JobContext) -> str:
    """Writes ``<output dir>/<job id>.csv`` atomically; the result is its path."""
    output_dir = Path(job.settings.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{job.id}.csv"
    partial = path.with_suffix(".csv.part")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        # RFC 4180: CRLF line ends; a field holding a comma, a quote, CR or LF is quoted.
        csv.writer(handle, lineterminator="\r\n").writerows(csv_rows(job.payload))
    os.replace(partial, path)
    return str(path)
