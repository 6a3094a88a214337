"""Summarise py-spy collapsed stacks (``BENCH_PROFILE=1``): where each process's samples go.

``python -m bench.profile_summary FILE...`` prints, over the samples of active threads,
the share of each top self-time function and the inclusive share of each frame.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

#: Frames shown by inclusive share: the places a job's CPU goes.
TOP = 40
_FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:]+)(?::\d+)?\)$")


#: Where a sample's CPU goes, first match wins (checked on the stack's frames, outermost first
#: for export and logging, innermost for the Redis client).
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("OTel span export (BatchSpanProcessor: encode + POST)", ("BatchProcessor.worker",)),
    ("structlog + logging", ("structlog", "logging/__init__.py")),
    ("Prometheus metrics", ("prometheus_client",)),
    ("Redis client I/O and parsing (redis-py)", ("Redis.execute_command", "Pipeline.execute")),
    ("OTel Redis instrumentation (CLIENT span per command)", ("_traced_execute",)),
    (
        "OTel spans and context (start/end/attach)",
        ("opentelemetry", "trace/__init__.py", "context/", "_decorator.py", "Span.", "Tracer."),
    ),
    ("Jobcore code (records, lifecycle, submission)", ("jobcore/",)),
    ("Dramatiq (consumer, worker, middleware dispatch)", ("dramatiq/",)),
]


def category(frames: list[str]) -> str:
    for label, needles in CATEGORIES:
        if any(needle in frame for frame in frames for needle in needles):
            return label
    return "other (bench hooks, interpreter, threads)"


def short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "libs/jobcore/", "services/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarise(paths: list[Path]) -> None:
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    total = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            frames = [short(f) for f in stack.split(";")]
            # Idle threads wait in these; they are not CPU.
            if any(idle in frames[-1] for idle in ("wait (", "select (", "sleep", "_wait_for")):
                continue
            count = int(count_text)
            total += count
            self_time[frames[-1]] += count
            categories[category(frames)] += count
            for frame in set(frames):
                inclusive[frame] += count
    print(f"{total} samples holding the GIL in {len(paths)} file(s)\n\nby category:")
    for label, count in categories.most_common():
        print(f"{100 * count / total:6.1f}%  {label}")
    print("\ninclusive:")
    for frame, count in inclusive.most_common(TOP):
        print(f"{100 * count / total:6.1f}%  {frame}")
    print("\nself:")
    for frame, count in self_time.most_common(TOP // 2):
        print(f"{100 * count / total:6.1f}%  {frame}")


if __name__ == "__main__":
    summarise([Path(p) for p in sys.argv[1:]])
