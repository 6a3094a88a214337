"""``jobcore``: the command line producer and inspector, calling the same ``Jobs`` as the API.

Output is one line of JSON on stdout (``--table`` for people); errors go to stderr with the
API's titles and messages, and the exit code says what went wrong (each error's
``exit_code`` in ``jobcore.errors``). Redis is ``REDIS_URL``, else the one ``make run``
wrote to ``var/redis.url``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from jobcore.errors import (
    EXIT_INTERNAL,
    EXIT_INVALID,
    ConfigurationError,
    InvalidRequest,
    InvalidTransition,
    JobcoreError,
    MalformedRequest,
)
from jobcore.intake.listing import (
    CURSOR_RULE,
    DEFAULT_PAGE_SIZE,
    filter_problems,
    parse_cursor,
    raise_for,
)
from jobcore.intake.strict_json import parse_strict
from jobcore.model.catalogue import load_job_types
from jobcore.model.states import ALL_STATES
from jobcore.presence import live_processes
from jobcore.runtime import Runtime, build_runtime
from jobcore.scheduling.schedules import ScheduleBook
from jobcore.settings import DEFAULT_SOURCE, REDIS_URL_FILE, Settings
from jobcore.submit_flow import SubmitFlow
from jobcore.telemetry.tracing import configure_tracing, shutdown_tracing

#: Exit codes besides each error's own (``jobcore.errors``: 2 invalid, 3 not found,
#: 4 conflict, 5 unavailable, 70 internal).
EXIT_OK = 0
#: A health check found no live process of the kind on this host.
EXIT_UNHEALTHY = 1

#: Columns of ``jobs --table``.
LIST_COLUMNS = ("jobId", "type", "state", "attempts", "createdAt", "finishedAt")


class UsageError(JobcoreError):
    """The command line itself is wrong (exit 2)."""

    title = "Bad usage"
    exit_code = EXIT_INVALID


def parse_payload(text: str, max_depth: int) -> Any:
    """``--payload`` as JSON, refused as the API refuses a body (duplicates, NaN, depth)."""
    try:
        return parse_strict(text.encode("utf-8", "surrogatepass"), max_depth)
    except ValueError as exc:
        raise MalformedRequest(f"--payload: {exc}") from exc


def _seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


# --- commands --------------------------------------------------------------------------


def enqueue(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    """Submit through the same flow as ``POST /jobs``."""
    payload = parse_payload(args.payload, runtime.settings.max_json_depth)
    body: dict[str, Any] = {"type": args.type, "payload": payload}
    if args.key is not None:
        body["idempotencyKey"] = args.key
    if args.delay is not None:
        body["delaySeconds"] = args.delay
    return SubmitFlow.for_runtime(runtime).submit(body).to_api()


def status(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return runtime.jobs.get(args.id).to_api()


def list_jobs(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    filters, problems = filter_problems(
        runtime.job_types,
        state=args.state,
        job_type=args.type,
        limit=args.limit,
        max_limit=runtime.settings.max_list_limit,
    )
    raise_for(problems)
    page = runtime.jobs.list(
        state=filters.state, job_type=filters.job_type, limit=filters.limit, cursor=args.cursor
    )
    return {"items": [r.to_api() for r in page.items], "nextCursor": page.next_cursor}


def retry(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return runtime.jobs.retry(args.id, reset_effects=args.reset_effects).to_api()


def cancel(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return runtime.jobs.cancel(args.id).to_api()


def schedules(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return {"items": ScheduleBook(runtime).describe(datetime.now(UTC))}


def health(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    """Live processes of the kind on this host; exit 1 when there is none."""
    host = socket.gethostname()
    mine = [p for p in live_processes(runtime, args.kind) if p["host"] == host]
    return {"kind": args.kind, "host": host, "healthy": bool(mine), "processes": mine}


Command = Callable[[Runtime, argparse.Namespace], dict[str, Any]]


# --- output ----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = [list(columns), *cells]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def render_table(command: str, answer: dict[str, Any]) -> str:
    """What ``--table`` prints for a command's answer."""
    if command == "jobs":
        text = _table(answer["items"], LIST_COLUMNS)
        return text + (f"\nmore: --cursor {answer['nextCursor']}" if answer["nextCursor"] else "")
    if command == "schedules":
        rows = [
            {
                **item,
                "lastFireTime": (item["lastRun"] or {}).get("fireTime"),
                "lastJobId": (item["lastRun"] or {}).get("jobId"),
                "lastState": (item["lastRun"] or {}).get("state"),
            }
            for item in answer["items"]
        ]
        return _table(
            rows, ("name", "cron", "jobType", "nextRunAt", "lastFireTime", "lastJobId", "lastState")
        )
    if command == "health":
        rows = answer["processes"]
        head = f"{answer['kind']} on {answer['host']}: {'healthy' if answer['healthy'] else 'DOWN'}"
        process_columns = ("id", "pid", "queues", "inFlight", "lastHeartbeat")
        return head + ("\n" + _table(rows, process_columns) if rows else "")
    width = max(len(k) for k in answer)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in answer.items())


def describe_error(error: JobcoreError) -> tuple[dict[str, Any], int]:
    """The one mapping from Jobcore's errors to the command line: the problem the API would
    answer (its title, detail, errors) and the error's exit code."""
    problem: dict[str, Any] = {"title": error.title, "detail": str(error)}
    if isinstance(error, InvalidRequest):
        problem["errors"] = [{"pointer": p.pointer, "detail": p.detail} for p in error.problems]
    if isinstance(error, InvalidTransition):
        problem["state"] = error.state
    return problem, error.exit_code


def _print_error(problem: dict[str, Any], code: int, table: bool) -> None:
    if not table:
        print(json.dumps({**problem, "exitCode": code}), file=sys.stderr)
        return
    print(f"error: {problem['title']}: {problem['detail']}", file=sys.stderr)
    for item in problem.get("errors", []):
        print(f"  {item['pointer'] or '/'}: {item['detail']}", file=sys.stderr)


# --- parsing ---------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own exit code is 2 as well
        raise UsageError(f"{self.prog}: {message} ({self.format_usage().strip()})")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--table", action="store_true", default=argparse.SUPPRESS, help="print for people"
    )
    parser = _Parser(prog="jobcore", description=__doc__, parents=[common])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, command: Command, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[common])
        sub.set_defaults(run=command)
        return sub

    sub = add("enqueue", enqueue, "submit a job (as POST /jobs)")
    sub.add_argument("type", help="job type, e.g. dummy")
    sub.add_argument("--payload", default="{}", help="the payload as JSON (default {})")
    sub.add_argument("--key", help="idempotency key: a replay returns the same job")
    sub.add_argument("--delay", type=_seconds, help="seconds to wait before the job runs")
    sub = add("status", status, "one job's record (as GET /jobs/{id})")
    sub.add_argument("id")
    sub = add("jobs", list_jobs, "jobs, newest first (as GET /jobs)")
    sub.add_argument("--state", help=f"one of {', '.join(ALL_STATES)}")
    sub.add_argument("--type", help="a job type")
    sub.add_argument("--limit", type=int, default=DEFAULT_PAGE_SIZE)
    sub.add_argument("--cursor", type=_cursor, help="nextCursor of the previous page")
    sub = add("retry", retry, "retry a failed or cancelled job")
    sub.add_argument("id")
    sub.add_argument(
        "--reset-effects",
        action="store_true",
        help="clear unfinished effect reservations (after a human checked them)",
    )
    sub = add("cancel", cancel, "cancel a waiting, delayed, retrying or claimed job")
    sub.add_argument("id")
    add("schedules", schedules, "schedules, their next run and last run (as GET /schedules)")
    sub = add("health", health, "exit 0 when a live process of the kind runs on this host")
    sub.add_argument("kind", choices=("worker", "scheduler"))
    return parser


def _quiet_logging() -> None:
    """Library log lines go to stderr: stdout carries only the answer."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


#: Commands whose one positional argument is a job id.
_ID_COMMANDS = ("status", "retry", "cancel")
#: Every flag those commands take.
_ID_COMMAND_FLAGS = frozenset({"--table", "-h", "--help", "--reset-effects"})


def protect_job_ids(raw: list[str]) -> list[str]:
    """Job ids may begin with "-" (URL-safe base64): put them after "--" so argparse takes
    them as the id, not as an unknown option."""
    at = next((i for i, arg in enumerate(raw) if arg in _ID_COMMANDS), None)
    if at is None or "--" in raw:
        return raw
    rest = raw[at + 1 :]
    flags = [arg for arg in rest if arg in _ID_COMMAND_FLAGS]
    others = [arg for arg in rest if arg not in _ID_COMMAND_FLAGS]
    return [*raw[: at + 1], *flags, "--", *others]


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code."""
    raw = protect_job_ids(list(sys.argv[1:] if argv is None else argv))
    table = "--table" in raw
    try:
        _refuse_undecodable(raw)
        args = build_parser().parse_args(raw)
        table = getattr(args, "table", False)
        _quiet_logging()
        configure_tracing("jobcore-cli")
        settings = Settings.from_env()
        if settings.redis_url_source == DEFAULT_SOURCE:
            raise ConfigurationError(
                f"no Redis named: set REDIS_URL, or start `make run`, which writes its Redis "
                f"URL to {Path(settings.var_dir) / REDIS_URL_FILE} (looked for it there from "
                f"{Path.cwd()})"
            )
        runtime = build_runtime(settings, job_types=load_job_types(settings.job_modules))
        try:
            answer = args.run(runtime, args)
        finally:
            shutdown_tracing()
    except JobcoreError as error:
        problem, code = describe_error(error)
        _print_error(problem, code, table)
        return code
    except Exception as error:  # a bug of ours: still one JSON line, never a traceback
        detail = f"{type(error).__name__}: {error}"
        _print_error({"title": "Internal error", "detail": detail}, EXIT_INTERNAL, table)
        return EXIT_INTERNAL
    # One line of JSON, as the API answers (``--table`` is for people).
    print(render_table(args.command, answer) if table else json.dumps(answer))
    if args.command == "health" and not answer["healthy"]:
        return EXIT_UNHEALTHY
    return EXIT_OK


def _refuse_undecodable(raw: Sequence[str]) -> None:
    """An argument that is not UTF-8 (Python keeps its bytes as lone surrogates) can name no
    job, key or payload Jobcore holds."""
    for position, arg in enumerate(raw):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
            raise MalformedRequest(
                f"argument {position + 1} ({shown[:100]}) is not valid UTF-8; send text in UTF-8"
            ) from None


def _cursor(text: str) -> int:
    cursor = parse_cursor(text)
    if cursor is None:
        raise argparse.ArgumentTypeError(CURSOR_RULE)
    return cursor


def main() -> None:
    try:
        code = run()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (``| head``) left: not an error of ours; keep Python quiet about it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_OK
    sys.exit(code)
