"""The table a bench run prints: each Jobcore figure beside bare Dramatiq's and their ratio."""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, str]
#: The request behind each timed read of the scale part.
READ_PATHS = {
    "status": "/jobs/{id}/status",
    "list": "/jobs?limit=50",
    "list_by_state": "/jobs?state=completed&type=dummy",
    "stats": "/jobs/stats",
}


def _get(results: dict[str, Any], *path: str) -> Any:
    value: Any = results
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}"


def _ratio(ours: Any, bare: Any, digits: int = 2) -> str:
    if not isinstance(ours, int | float) or not isinstance(bare, int | float) or not bare:
        return ""
    return f"{ours / bare:.{digits}f}x"


def queue_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []

    def add(label: str, path: tuple[str, ...], digits: int = 0, ratio: bool = True) -> None:
        ours, bare = _get(results, "jobcore", *path), _get(results, "bare", *path)
        rows.append(
            (label, _fmt(ours, digits), _fmt(bare, digits), _ratio(ours, bare) if ratio else "")
        )

    def pair(label: str, path: tuple[str, ...], digits: int = 1) -> None:
        def text(system: str) -> str:
            found = _get(results, system, *path)
            if not found:
                return "—"
            return f"{found['p50']:.{digits}f} / {found['p99']:.{digits}f}"

        rows.append((label, text("jobcore"), text("bare"), ""))

    jobs = _get(results, "jobcore", "drain", "jobs") or _get(results, "bare", "drain", "jobs")
    add(f"drain jobs/s ({jobs or 0:,} pre-filled, warm workers)", ("drain", "jobs_per_s"))
    add("  worker CPU per job, µs", ("drain", "worker_cpu_us_per_job"))
    add("  Redis CPU per job, µs", ("drain", "redis_cpu_us_per_job"))
    add("submit-and-drain jobs/s", ("submit_and_drain", "jobs_per_s"))
    fills = _get(results, "jobcore", "producer", "processes") or 1
    add(f"pre-fill submit jobs/s, {fills} producer processes", ("producer", "jobs_per_s"))
    add("  producer CPU per job, µs", ("producer", "cpu_us_per_job"))
    add("Redis round trips per job", ("redis_cost", "round_trips_per_job"), 2)
    add("  producer side", ("redis_cost", "producer_round_trips_per_job"), 2)
    add("  worker side", ("redis_cost", "worker_round_trips_per_job"), 2)
    add("Redis commands per job (incl. Lua)", ("redis_cost", "commands_per_job"), 1)
    rate = _get(results, "jobcore", "latency", "rate") or _get(results, "bare", "latency", "rate")
    pair(f"submit→start ms p50 / p99 at {rate or 0:g}/s", ("latency", "submit_to_start_ms"))
    pair("submit→finish ms p50 / p99", ("latency", "submit_to_finish_ms"))
    return rows


def http_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    http = results.get("http")
    if not http:
        return []
    healthz, post = http["healthz"], http["post_jobs"]

    def split(run: dict[str, Any]) -> str:
        return "/".join(f"{share:.0%}" for share in run["worker_cpu_share"])

    return [
        (
            f"req/s (wrk, {post['connections']} connections, {post['seconds']:g} s)",
            _fmt(post["requests_per_s"]),
            _fmt(healthz["requests_per_s"]),
            _ratio(post["requests_per_s"], healthz["requests_per_s"]),
        ),
        (
            "  latency p50 / p99 ms",
            f"{post['latency_p50_ms']:.1f} / {post['latency_p99_ms']:.1f}",
            f"{healthz['latency_p50_ms']:.1f} / {healthz['latency_p99_ms']:.1f}",
            "",
        ),
        (
            "  gunicorn workers' CPU per request, µs",
            _fmt(post["cpu_us_per_request"]),
            _fmt(healthz["cpu_us_per_request"]),
            _ratio(post["cpu_us_per_request"], healthz["cpu_us_per_request"]),
        ),
        ("  gunicorn worker CPU split", split(post), split(healthz), ""),
        ("  non-2xx responses", _fmt(post["non_2xx"]), _fmt(healthz["non_2xx"]), ""),
    ]


def scale_rows(results: dict[str, Any]) -> tuple[tuple[str, str, str, str], list[Row]]:
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
                _ratio(b["p50"], a["p50"]),
            )
        )
    rows.append(
        (
            "Redis bytes per finished record (INFO memory)",
            _fmt(small["memory_bytes_per_record"]),
            _fmt(large["memory_bytes_per_record"]),
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


def print_table(results: dict[str, Any]) -> None:
    machine = results.get("machine", {})
    print(
        f"\nJobcore bench {results.get('run_id')} — {machine.get('cores')} cores "
        f"({machine.get('cpu')}), Redis {machine.get('redis')}, Python {machine.get('python')}, "
        f"Dramatiq {machine.get('dramatiq')}, commit {machine.get('commit')}"
    )
    config = results.get("config", {})
    sink = results.get("otlp_sink", {})
    print(
        f"workers {config.get('processes')} processes x {config.get('threads')} threads; "
        f"tracing {'on' if results.get('tracing') else 'off'}"
        + (f" ({sink['requests']} OTLP exports, {sink['bytes']:,} bytes)" if sink else "")
        + f"; log level {config.get('log_level')}"
        + (
            f"; experiments: {', '.join(results['experiments'])}"
            if results.get("experiments")
            else ""
        )
    )
    rows = queue_rows(results) if "jobcore" in results or "bare" in results else []
    http = http_rows(results)
    scale_header, scale = scale_rows(results)
    width = max([len(r[0]) for r in rows + http + scale] + [10])
    for header, body in (
        (("", "Jobcore", "bare Dramatiq", "ratio"), rows),
        (("HTTP, gunicorn gthread 2 x 4", "POST /jobs", "GET /healthz", "ratio"), http),
        (scale_header, scale),
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
