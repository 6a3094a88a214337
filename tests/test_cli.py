"""The ``jobcore`` command line, run as the real script against the test Redis.

JSON on stdout, errors on stderr with the API's titles and messages, and exit codes:
2 invalid, 3 not found, 4 conflict, 5 store unavailable; ``health`` exits 1 when down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, wait_for_state, wait_until

from jobcore.intake.listing import CURSOR_RULE
from jobcore.presence import live_processes
from jobcore_devstack.redis_server import free_port


def jobcore(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "jobcore"), *args], env=env, capture_output=True, text=True, timeout=60
    )


def answer(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def problem(result: subprocess.CompletedProcess[str], code: int) -> dict[str, Any]:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    found: dict[str, Any] = json.loads(result.stderr.strip().splitlines()[-1])
    assert found["exitCode"] == code
    return found


def test_enqueue_prints_a_job_id_that_reaches_completed(env, runtime, worker):
    accepted = answer(jobcore(env, "enqueue", "dummy", "--payload", '{"echo": "cli"}'))
    assert accepted["status"] == "accepted" and accepted["state"] == "waiting"
    record = wait_for_state(runtime, accepted["jobId"], "completed")
    assert record.result["echo"] == {"echo": "cli"}
    status = answer(jobcore(env, "status", accepted["jobId"]))
    assert status["state"] == "completed" and status["type"] == "dummy"


def test_enqueue_with_the_same_key_twice_returns_the_same_job(env):
    args = ("enqueue", "dummy", "--payload", '{"echo": "once"}', "--key", "cli-once")
    first, second = answer(jobcore(env, *args)), answer(jobcore(env, *args))
    assert second["jobId"] == first["jobId"] and second["duplicate"] is True
    assert "duplicate" not in first


def test_a_key_reused_for_another_payload_exits_4_with_the_apis_message(env, api):
    body = {"type": "dummy", "payload": {"echo": "a"}, "idempotencyKey": "cli-reused"}
    first = api.simulate_post("/jobs", json=body).json["jobId"]
    found = problem(
        jobcore(env, "enqueue", "dummy", "--payload", '{"echo": "b"}', "--key", "cli-reused"), 4
    )
    again = api.simulate_post("/jobs", json=dict(body, payload={"echo": "b"})).json
    assert found["title"] == again["title"] == "Idempotency key reused"
    assert found["detail"] == again["detail"] and first in found["detail"]


def test_delay_cancel_and_retry_move_the_job_through_its_states(env, runtime):
    delayed = answer(jobcore(env, "enqueue", "dummy", "--delay", "300"))
    assert delayed["state"] == "delayed"
    cancelled = answer(jobcore(env, "cancel", delayed["jobId"]))
    assert cancelled["state"] == "cancelled"
    refused = problem(jobcore(env, "cancel", delayed["jobId"]), 4)
    assert refused["title"] == "Conflict with the job's state" and refused["state"] == "cancelled"
    retried = answer(jobcore(env, "retry", delayed["jobId"]))
    assert retried["state"] in ("waiting", "claimed", "active", "completed")


def test_jobs_lists_newest_first_filtered_by_state_and_type(env, runtime):
    ids = [
        answer(jobcore(env, "enqueue", "report", "--payload", p, "--delay", "300"))["jobId"]
        for p in ('{"durationSeconds": 1}', '{"durationSeconds": 2}')
    ]
    listed = answer(jobcore(env, "jobs", "--state", "delayed", "--type", "report", "--limit", "2"))
    assert [item["jobId"] for item in listed["items"]] == ids[::-1]
    assert {item["state"] for item in listed["items"]} == {"delayed"}
    for job_id in ids:
        runtime.jobs.cancel(job_id)


def test_table_output_is_for_people(env):
    job_id = answer(jobcore(env, "enqueue", "dummy", "--delay", "300"))["jobId"]
    table = jobcore(env, "jobs", "--state", "delayed", "--table")
    assert table.returncode == 0
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["jobId", "type", "state", "attempts", "createdAt", "finishedAt"]
    assert any(row.startswith(job_id) for row in rows)
    status = jobcore(env, "status", job_id, "--table")
    assert "\nstate " in status.stdout and "delayed" in status.stdout
    jobcore(env, "cancel", job_id)


@pytest.mark.parametrize(
    "body",
    [
        {"type": "no-such-type", "payload": {}},
        {"type": "dummy", "payload": {"failTimes": -1, "extra": 1}},
    ],
    ids=["unknown-type", "bad-payload"],
)
def test_invalid_submissions_exit_2_with_the_apis_messages(env, api, body):
    found = problem(
        jobcore(env, "enqueue", body["type"], "--payload", json.dumps(body["payload"])), 2
    )
    expected = api.simulate_post("/jobs", json=body)
    assert expected.status_code == 422
    assert found["title"] == expected.json["title"]
    assert found["errors"] == expected.json["errors"]


def test_a_payload_that_is_not_json_exits_2(env):
    found = problem(jobcore(env, "enqueue", "dummy", "--payload", '{"a": 1, "a": 2}'), 2)
    assert "duplicate key" in found["detail"]


@pytest.mark.parametrize(
    "args",
    [("enqueue", "dummy", "--key", "k\udcff"), ("status", "id\udcff"), ("enqueue", "dum\udcffmy")],
)
def test_an_argument_that_is_not_utf8_exits_2(env, args):
    # Python hands bytes that are not UTF-8 over as lone surrogates (surrogateescape).
    raw = [os.fsencode(arg) for arg in args]
    result = subprocess.run(
        [os.fsencode(BIN / "jobcore"), *raw], env=env, capture_output=True, timeout=60
    )
    found = problem(
        subprocess.CompletedProcess(
            result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
        ),
        2,
    )
    assert "not valid UTF-8" in found["detail"]


def test_a_bad_command_line_exits_2(env):
    assert problem(jobcore(env, "jobs", "--limit", "many"), 2)["title"] == "Bad usage"


def test_a_cursor_the_api_would_refuse_exits_2_with_the_apis_rule(env, api):
    refused = problem(jobcore(env, "jobs", "--cursor", "-5"), 2)
    assert CURSOR_RULE in refused["detail"]
    assert api.simulate_get("/jobs", params={"cursor": "-5"}).status_code == 422


def test_an_unknown_job_id_exits_3_even_when_it_begins_with_a_dash(env):
    # Job ids are URL-safe base64: some begin with "-", which is not an option here.
    found = problem(jobcore(env, "status", "-no-such-job"), 3)
    assert found["title"] == "Job not found"
    assert found["detail"] == 'No job with id "-no-such-job"'


def test_an_unreachable_redis_exits_5(env):
    down = dict(env, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    found = problem(jobcore(down, "enqueue", "dummy"), 5)
    assert found["title"] == "Service unavailable"


def test_without_redis_url_it_finds_the_redis_of_make_run_in_var(env, tmp_path: Path):
    var = tmp_path / "var"
    var.mkdir()
    (var / "redis.url").write_text(env["REDIS_URL"] + "\n")
    local = {k: v for k, v in env.items() if k != "REDIS_URL"}
    local["JOBCORE_VAR_DIR"] = str(var)
    job_id = answer(jobcore(local, "enqueue", "dummy", "--delay", "300"))["jobId"]
    assert answer(jobcore(env, "cancel", job_id))["state"] == "cancelled"


def test_without_redis_url_or_the_file_of_make_run_it_names_no_redis_and_says_so(
    env, tmp_path: Path
):
    local = {k: v for k, v in env.items() if k != "REDIS_URL"}
    local["JOBCORE_VAR_DIR"] = str(tmp_path / "nothing-here")
    found = problem(jobcore(local, "jobs"), 2)
    assert found["title"] == "Configuration error"
    assert "REDIS_URL" in found["detail"] and "redis.url" in found["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379",
        "redis://127.0.0.1:notaport/0",
        "redis://:6379",
        "localhost",
        "redis://127.0.0.1:1/0?foo=bar",
        "redis://127.0.0.1:1/0?socket_timeout=abc",
        "redis://127.0.0.1:1/2147483648",
    ],
)
def test_a_malformed_redis_url_is_a_json_error_not_a_traceback(env, url):
    result = jobcore(dict(env, REDIS_URL=url), "jobs")
    found = problem(result, 2)
    assert found["title"] == "Configuration error" and "REDIS_URL" in found["detail"]
    assert "Traceback" not in result.stderr


def test_a_database_the_redis_lacks_is_a_configuration_error(env):
    url = env["REDIS_URL"].rsplit("/", 1)[0] + "/16"
    found = problem(jobcore(dict(env, REDIS_URL=url), "jobs"), 2)
    assert found["title"] == "Configuration error", found
    assert "a database this Redis does not have" in found["detail"]
    assert "REDIS_URL" in found["detail"]


def test_answers_are_one_line_of_json(env):
    result = jobcore(env, "enqueue", "dummy", "--delay", "300")
    assert result.returncode == 0 and result.stdout.count("\n") == 1
    assert json.loads(result.stdout)["status"] == "accepted"


def test_health_worker_passes_while_a_worker_of_this_host_beats(env, worker):
    health = answer(jobcore(env, "health", "worker"))
    assert health["healthy"] is True and health["processes"]
    process = health["processes"][0]
    assert isinstance(process["pid"], int) and isinstance(process["inFlight"], int)
    assert process["lastHeartbeat"].endswith("Z") and "heartbeat" not in process
    shown = {k for item in answer(jobcore(env, "jobs", "--limit", "1"))["items"] for k in item}
    assert "jobId" in shown


def test_attempts_count_the_attempt_that_is_running(env, api, runtime, worker):
    job_id = answer(jobcore(env, "enqueue", "dummy", "--payload", '{"sleepSeconds": 2}'))["jobId"]
    wait_for_state(runtime, job_id, "active")
    assert answer(jobcore(env, "status", job_id))["attempts"] == 1
    assert wait_for_state(runtime, job_id, "completed").attempts == 1


def test_health_scheduler_follows_the_scheduler_process(env, runtime, tmp_path: Path):
    assert not live_processes(runtime, "scheduler"), "a scheduler from elsewhere is running"
    down = jobcore(env, "health", "scheduler")
    assert down.returncode == 1 and json.loads(down.stdout)["healthy"] is False
    log = (tmp_path / "scheduler.log").open("wb")
    scheduler = subprocess.Popen(
        [str(BIN / "jobcore-scheduler")], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_until(lambda: live_processes(runtime, "scheduler"), timeout=30, message="a beat")
        assert answer(jobcore(env, "health", "scheduler"))["healthy"] is True
    finally:
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(timeout=20) == 0
    # A scheduler that stopped takes its heartbeat with it.
    assert jobcore(env, "health", "scheduler").returncode == 1


def test_schedules_lists_the_shipped_schedules(env):
    items = {i["name"]: i for i in answer(jobcore(env, "schedules"))["items"]}
    assert set(items) >= {"heartbeat", "cleanup"}
    assert items["heartbeat"]["cron"] == "* * * * *" and items["heartbeat"]["jobType"] == "dummy"
