"""The table a bench run prints: each Jobcore figure beside bare Dramatiq's and their ratio,
as the median of the runs with their minimum and maximum (``median (min–max)``)."""

from __future__ import annotations

from typing import Any

from bench.summary import get, numbers, ratios, text

Row = tuple[str, str, str, str]
#: The request behind each timed read of the scale part.
READ_PATHS = {
    "status": "/jobs/{id}/status",
    "list": "/jobs?limit=50",
    "list_by_state": "/jobs?state=completed&type=dummy",
    "stats": "/jobs/stats",
}


def queue_rows(runs: list[dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []

    def add(label: str, path: tuple[str, ...], digits: int = 0, ratio: bool = True) -> None:
        ours, bare = numbers(runs, "jobcore", *path), numbers(runs, "bare", *path)
        per_run = ratios(runs, ("jobcore", *path), ("bare", *path)) if ratio else []
        rows.append((label, text(ours, digits), text(bare, digits), text(per_run, 2, "x")))

    def pair(label: str, path: tuple[str, ...], digits: int = 1) -> None:
        def shown(system: str) -> str:
            p50 = numbers(runs, system, *path, "p50")
            p99 = numbers(runs, system, *path, "p99")
            return f"{text(p50, digits)} / {text(p99, digits)}" if p50 else "—"

        rows.append((label, shown("jobcore"), shown("bare"), ""))

    last = runs[-1]
    jobs = get(last, "jobcore", "drain", "jobs") or get(last, "bare", "drain", "jobs")
    add(f"drain jobs/s ({jobs or 0:,} pre-filled, warm workers)", ("drain", "jobs_per_s"))
    add("  worker CPU per job, µs", ("drain", "worker_cpu_us_per_job"))
    add("  Redis CPU per job, µs", ("drain", "redis_cpu_us_per_job"))
    add("submit-and-drain jobs/s", ("submit_and_drain", "jobs_per_s"))
    fills = get(last, "jobcore", "producer", "processes") or 1
    add(f"pre-fill submit jobs/s, {fills} producer processes", ("producer", "jobs_per_s"))
    add("  producer CPU per job, µs", ("producer", "cpu_us_per_job"))
    add("Redis round trips per job", ("redis_cost", "round_trips_per_job"), 2)
    add("  producer side", ("redis_cost", "producer_round_trips_per_job"), 2)
    add("  worker side", ("redis_cost", "worker_round_trips_per_job"), 2)
    add("Redis commands per job (incl. Lua)", ("redis_cost", "commands_per_job"), 1)
    rate = get(last, "jobcore", "latency", "rate") or get(last, "bare", "latency", "rate")
    pair(f"submit→start ms p50 / p99 at {rate or 0:g}/s", ("latency", "submit_to_start_ms"))
    pair("submit→finish ms p50 / p99", ("latency", "submit_to_finish_ms"))
    return rows


def http_rows(runs: list[dict[str, Any]]) -> list[Row]:
    with_http = [run for run in runs if run.get("http")]
    if not with_http:
        return []
    post, healthz = ("http", "post_jobs"), ("http", "healthz")

    def row(label: str, field: str, digits: int = 0, ratio: bool = True) -> Row:
        ours = numbers(with_http, *post, field)
        base = numbers(with_http, *healthz, field)
        per_run = ratios(with_http, (*post, field), (*healthz, field)) if ratio else []
        return (label, text(ours, digits), text(base, digits), text(per_run, 2, "x"))

    def split(name: str) -> str:
        shares = get(with_http[-1], "http", name, "worker_cpu_share") or []
        return "/".join(f"{share:.0%}" for share in shares)

    last_post = get(with_http[-1], *post)
    return [
        row(
            f"req/s (wrk, {last_post['connections']} connections, {last_post['seconds']:g} s)",
            "requests_per_s",
        ),
        row("  latency p50 ms", "latency_p50_ms", 1, ratio=False),
        row("  latency p99 ms", "latency_p99_ms", 1, ratio=False),
        row("  gunicorn workers' CPU per request, µs", "cpu_us_per_request"),
        ("  gunicorn worker CPU split (last run)", split("post_jobs"), split("healthz"), ""),
        row("  non-2xx responses", "non_2xx", ratio=False),
        *drain_rows(with_http),
    ]


def drain_rows(with_http: list[dict[str, Any]]) -> list[Row]:
    """wrk posting while 2 worker processes drain: end-to-end jobs completed per second."""
    runs = [run for run in with_http if get(run, "http", "submit_and_drain")]
    if not runs:
        return []
    drain = ("http", "submit_and_drain")
    return [
        (
            "submit-and-drain over HTTP, jobs completed/s",
            text(numbers(runs, *drain, "jobs_per_s"), 0),
            "",
            "",
        ),
        (
            "  posted/s meanwhile",
            text(numbers(runs, *drain, "posted_per_s"), 0),
            "",
            "",
        ),
    ]


def scale_rows(results: dict[str, Any]) -> tuple[Row, list[Row]]:
    """Reads and memory at the smallest and largest store; the ratio says how flat."""
    scale = results.get("scale")
    if not scale:
        return ("", "", "", ""), []
    sizes = sorted(int(size) for size in scale if size.isdigit())
    small, large = scale[str(sizes[0])], scale[str(sizes[-1])]
    header = ("Reads, p50 / p99 ms", f"{sizes[0]:,} records", f"{sizes[-1]:,} records", "ratio")
    rows: list[Row] = []
    for name in small["reads_ms"]:
        a, b = small["reads_ms"][name], large["reads_ms"][name]
        rows.append(
            (
                f"  GET {READ_PATHS.get(name, name)}",
                f"{a['p50']:.1f} / {a['p99']:.1f}",
                f"{b['p50']:.1f} / {b['p99']:.1f}",
                f"{b['p50'] / a['p50']:.2f}x" if a["p50"] else "",
            )
        )
    rows.append(
        (
            "Redis bytes per finished record (INFO memory)",
            f"{small['memory_bytes_per_record']:,.0f}",
            f"{large['memory_bytes_per_record']:,.0f}",
            "",
        )
    )
    one = scale.get("one_record")
    if one:
        rows.append(
            (
                "  MEMORY USAGE of one record (history included)",
                f"{one['record_bytes']} ({one['encoding']})",
                "",
                "",
            )
        )
    return header, rows


def replica_ack_rows(runs: list[dict[str, Any]]) -> list[Row]:
    """``JOBCORE_MIN_REPLICAS_ACK`` 1 beside 0, on a primary with one replica."""
    with_ack = [run for run in runs if run.get("replica_ack")]
    if not with_ack:
        return []
    on, off = ("replica_ack", "acks_1"), ("replica_ack", "acks_0")

    def row(label: str, path: tuple[str, ...], digits: int = 0, ratio: bool = True) -> Row:
        ours, base = numbers(with_ack, *on, *path), numbers(with_ack, *off, *path)
        per_run = ratios(with_ack, (*on, *path), (*off, *path)) if ratio else []
        return (label, text(ours, digits), text(base, digits), text(per_run, 2, "x"))

    rows: list[Row] = []
    post = get(with_ack[-1], *on, "post_jobs")
    if post:
        rows += [
            row(
                f"POST /jobs req/s (wrk, {post['connections']} connections, {post['seconds']:g} s)",
                ("post_jobs", "requests_per_s"),
            ),
            row("  latency p50 ms", ("post_jobs", "latency_p50_ms"), 2, ratio=False),
            row("  latency p99 ms", ("post_jobs", "latency_p99_ms"), 2, ratio=False),
            row("  non-2xx responses", ("post_jobs", "non_2xx"), ratio=False),
        ]
    jobs = get(with_ack[-1], *on, "drain", "jobs") or 0
    rows += [
        row(f"drain jobs/s ({jobs:,} pre-filled, warm workers)", ("drain", "jobs_per_s")),
        row("  worker CPU per job, µs", ("drain", "worker_cpu_us_per_job")),
        row("  Redis CPU per job, µs", ("drain", "redis_cpu_us_per_job")),
        row("pre-fill submit jobs/s (Jobs.submit)", ("producer", "jobs_per_s")),
        row("Redis commands per job (incl. Lua)", ("redis_cost", "commands_per_job"), 1),
    ]
    return rows


def recovery_cell(runs: list[dict[str, Any]], *path: str) -> str:
    """Seconds until a crashed worker's job ran again: the median of the runs where it did,
    and how many runs it did not (``not recovered in N s``) or could not be measured."""
    found = [get(run, "recovery", *path) for run in runs]
    found = [f for f in found if isinstance(f, dict)]
    if not found:
        return "—"
    seconds = [f["seconds"] for f in found if f.get("recovered")]
    missed = [f for f in found if f.get("recovered") is False]
    errors = [f for f in found if "error" in f]
    parts = [text(seconds, 2)] if seconds else []
    if missed:
        timeout = max(f.get("timeout_s", 0) for f in missed)
        count = f"{len(missed)} of {len(found)} " if seconds or errors else ""
        parts.append(f"{count}not recovered in {timeout:g} s")
    if errors:
        parts.append(f"{len(errors)} failed (see JSON)")
    return "; ".join(parts)


def recovery_rows(runs: list[dict[str, Any]]) -> list[Row]:
    """Idle workers and crashed workers (the ``recovery`` part), Jobcore beside bare."""
    with_recovery = [run for run in runs if run.get("recovery")]
    if not with_recovery:
        return []
    latency = ("recovery", "idle_latency")
    commands = ("recovery", "idle_commands")

    def pair(system: str) -> str:
        p50 = numbers(with_recovery, *latency, system, "submit_to_start_ms", "p50")
        p99 = numbers(with_recovery, *latency, system, "submit_to_start_ms", "p99")
        return f"{text(p50, 1)} / {text(p99, 1)}" if p50 else "—"

    ours = numbers(with_recovery, *commands, "jobcore", "commands_per_s")
    bare = numbers(with_recovery, *commands, "bare", "commands_per_s")
    rate = ("commands_per_s",)
    per_run = ratios(with_recovery, (*commands, "jobcore", *rate), (*commands, "bare", *rate))
    return [
        ("submit→start p50 / p99 ms on an idle system", pair("jobcore"), pair("bare"), ""),
        (
            "a worker process SIGKILLed under its supervisor: its job running again, s",
            recovery_cell(with_recovery, "worker_killed", "jobcore"),
            "no supervisor",
            "",
        ),
        (
            "a whole worker host lost (supervisor included): its job running again, s",
            recovery_cell(with_recovery, "host_lost", "jobcore"),
            recovery_cell(with_recovery, "host_lost", "bare"),
            "",
        ),
        (
            "idle Redis commands/s with default settings",
            text(ours, 1),
            text(bare, 1),
            text(per_run, 2, "x"),
        ),
    ]


def recovery_note(runs: list[dict[str, Any]]) -> str:
    """The recovery settings the crash rows were measured with (the shipped defaults)."""
    with_recovery = [run for run in runs if run.get("recovery")]
    settings = get(with_recovery[-1], "recovery", "settings") if with_recovery else None
    if not settings:
        return ""
    return "Crash rows measured with the shipped defaults: " + ", ".join(
        f"{name}={value}" for name, value in settings.items()
    )


def print_table(results: dict[str, Any]) -> None:
    machine = results.get("machine", {})
    runs: list[dict[str, Any]] = results.get("runs", [])
    print(
        f"\nJobcore bench {results.get('run_id')} — {machine.get('cores')} cores "
        f"({machine.get('cpu')}), Redis {machine.get('redis')} ({machine.get('redis_server')}), "
        f"Python {machine.get('python')}, Dramatiq {machine.get('dramatiq')}, "
        f"commit {machine.get('commit')}"
    )
    config = results.get("config", {})
    sink = runs[-1].get("otlp_sink", {}) if runs else {}
    print(
        f"{len(runs)} run(s): each figure is the median (min–max); ratios are taken within each "
        f"run. Workers {config.get('processes')} processes x {config.get('threads')} threads; "
        f"tracing {'on' if results.get('tracing') else 'off'}"
        + (f" ({sink['requests']} OTLP exports in the last run)" if sink else "")
        + f"; log level {config.get('log_level')}"
        + (
            f"; experiments: {', '.join(results['experiments'])}"
            if results.get("experiments")
            else ""
        )
    )
    rows = queue_rows(runs) if any("jobcore" in r or "bare" in r for r in runs) else []
    http = http_rows(runs)
    scale_header, scale = scale_rows(results)
    acks = replica_ack_rows(runs)
    recovery = recovery_rows(runs)
    width = max([len(r[0]) for r in rows + http + scale + acks + recovery] + [10])
    ack_header = ("Replica acknowledgement, 1 replica", "ACK 1", "ACK 0", "ratio")
    for header, body in (
        (("", "Jobcore", "bare Dramatiq", "ratio"), rows),
        (("HTTP, gunicorn + uvicorn workers", "POST /jobs", "GET /healthz", "ratio"), http),
        (scale_header, scale),
        (ack_header, acks),
        (("Idle workers and crash recovery", "Jobcore", "bare Dramatiq", "ratio"), recovery),
    ):
        if not body:
            continue
        cols = [max([len(r[i]) for r in body] + [len(header[i])]) for i in (1, 2, 3)]
        line = f"{header[0]:<{width}}  {header[1]:>{cols[0]}}  {header[2]:>{cols[1]}}  {header[3]}"
        print()
        print(line)
        print("-" * len(line))
        for label, ours, bare, ratio in body:
            print(f"{label:<{width}}  {ours:>{cols[0]}}  {bare:>{cols[1]}}  {ratio}")
    if recovery:
        print(recovery_note(runs))
