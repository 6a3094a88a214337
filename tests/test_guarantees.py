"""Delivery guarantees on real Redis and real workers: idempotency, retries, operations."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from conftest import new_job, submit, wait_for_state, wait_until
from falcon import testing

from jobcore.broker import job_message
from jobcore.clock import format_ms, now_ms
from jobcore.jobs import new_job_id
from jobcore.runtime import Runtime
from jobcore_api.app import create_app


def unique(prefix: str = "key") -> str:
    return f"{prefix}-{new_job_id()}"


# --- idempotent creation ------------------------------------------------------------


def test_same_body_key_replays_the_job_with_200_and_replayed_header(api):
    body = {"type": "dummy", "payload": {"echo": 1}, "idempotencyKey": unique()}
    first = api.simulate_post("/jobs", json=body)
    again = api.simulate_post("/jobs", json=body)
    assert first.status_code == 202 and "duplicate" not in first.json
    assert again.status_code == 200
    assert again.json["jobId"] == first.json["jobId"] and again.json["duplicate"] is True
    assert again.headers["Idempotent-Replayed"] == "true"


def test_quoted_and_bare_header_keys_are_the_same_key(api):
    key = unique()
    body = {"type": "dummy", "payload": {}}
    first = api.simulate_post("/jobs", json=body, headers={"Idempotency-Key": f'"{key}"'})
    again = api.simulate_post("/jobs", json=body, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json["jobId"] == again.json["jobId"]


def test_header_and_body_keys_that_differ_are_a_400(api):
    body = {"type": "dummy", "payload": {}, "idempotencyKey": "a"}
    result = api.simulate_post("/jobs", json=body, headers={"Idempotency-Key": "b"})
    assert result.status_code == 400
    assert "differ" in result.json["detail"]


def test_same_key_with_a_different_request_is_a_422(api):
    key = unique()
    api.simulate_post(
        "/jobs", json={"type": "dummy", "payload": {"echo": 1}, "idempotencyKey": key}
    )
    result = api.simulate_post(
        "/jobs", json={"type": "dummy", "payload": {"echo": 2}, "idempotencyKey": key}
    )
    assert result.status_code == 422
    assert result.json["errors"][0]["pointer"] == "/idempotencyKey"


def test_job_ids_are_not_derived_from_the_key(api, runtime):
    key = unique()
    job_id = submit(api, {"type": "dummy", "payload": {}, "idempotencyKey": key})["jobId"]
    assert key not in job_id
    raw_keys = runtime.client.keys("jobcore:idem:*")
    assert not [k for k in raw_keys if key in k], "raw keys must be hashed before Redis"


def test_a_missing_key_is_a_400_when_keys_are_required(settings, runtime):
    from dataclasses import replace

    strict = testing.TestClient(
        create_app(replace(settings, require_idempotency_key=True), runtime)
    )
    result = strict.simulate_post("/jobs", json={"type": "dummy", "payload": {}})
    assert result.status_code == 400 and "idempotency key is required" in result.json["detail"]


def test_fifty_concurrent_posts_with_one_key_create_one_job(http_api, runtime):
    body = {"type": "dummy", "payload": {"echo": "race"}, "idempotencyKey": unique("race")}

    def post(_: int) -> requests.Response:
        return requests.post(f"{http_api}/jobs", json=body, timeout=10)

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(post, range(50)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 49 + [202]
    assert len({a.json()["jobId"] for a in answers}) == 1
    page = runtime.store.list(None, "dummy", 500, None)
    same = [r for r in page.items if r.payload == {"echo": "race"}]
    assert len(same) == 1


# --- retries, time limits, delays --------------------------------------------------


def test_fixed_backoff_waits_the_exact_delay_and_shows_next_attempt(api, runtime, worker):
    body = {
        "type": "dummy",
        "payload": {"failTimes": 1},
        "maxAttempts": 2,
        "backoff": {"type": "fixed", "delayMs": 1500},
    }
    job_id = submit(api, body)["jobId"]
    retrying = wait_for_state(runtime, job_id, "retrying")
    assert retrying.next_attempt_at is not None
    wait_for_state(runtime, job_id, "completed")
    events = runtime.store.events(job_id)
    failed = next(e for e in events if e["event"] == "attempt-failed")
    second_start = [e for e in events if e["event"] == "started"][1]
    assert failed["nextAttemptAt"] <= second_start["at"]


def test_a_success_after_retries_is_logged_as_a_recovery(api, runtime, worker):
    body = {
        "type": "dummy",
        "payload": {"failTimes": 1},
        "maxAttempts": 2,
        "backoff": {"type": "fixed", "delayMs": 100},
    }
    job_id = submit(api, body)["jobId"]
    wait_for_state(runtime, job_id, "completed")
    wait_until(
        lambda: any(job_id in line and "recovered" in line for line in worker.log().splitlines())
    )


def test_time_limit_fails_the_attempt_with_a_clear_reason(api, runtime, worker):
    job_id = submit(api, {"type": "test-cpu-loop", "payload": {"seconds": 5}})["jobId"]
    record = wait_for_state(runtime, job_id, "failed", timeout=15)
    assert "time limit of 1 s exceeded" in record.failed_reason


def test_a_delayed_job_is_delayed_then_runs_after_its_delay(api, runtime, worker):
    accepted = submit(api, {"type": "dummy", "payload": {}, "delaySeconds": 1.5})
    assert accepted["state"] == "delayed"
    start = time.monotonic()
    record = wait_for_state(runtime, accepted["jobId"], "completed")
    assert time.monotonic() - start >= 1.0
    assert record.processed_at - record.created_at >= 1500


def test_run_at_in_the_future_delays_the_job(api, runtime, worker):
    run_at = format_ms(now_ms() + 1200)
    accepted = submit(api, {"type": "dummy", "payload": {}, "runAt": run_at})
    assert accepted["state"] == "delayed"
    record = wait_for_state(runtime, accepted["jobId"], "completed")
    assert record.processed_at >= record.run_at


# --- cancel and manual retry --------------------------------------------------------


def test_cancelling_a_delayed_job_stops_it_from_running(api, runtime, worker):
    job_id = submit(api, {"type": "dummy", "payload": {}, "delaySeconds": 1})["jobId"]
    result = api.simulate_post(f"/jobs/{job_id}/cancel")
    assert result.status_code == 200 and result.json["state"] == "cancelled"
    time.sleep(2.5)
    record = runtime.store.get(job_id)
    assert record.state == "cancelled" and record.deliveries == 0


def test_a_job_cancelled_while_claimed_sends_no_email(api, runtime, worker, smtp_sink):
    """A cancel can land between a worker's claim and the attempt's first write: the
    attempt then stops before its first guarded effect, so no cancelled job mails."""
    cancelled: list[str] = []
    claimed: list[str] = []
    # Whether a cancel lands in the claim window depends on timing: try until a few have
    # (on a loaded machine the worker may claim later than the first tries' cancels).
    for n in range(300):
        body = {
            "type": "email",
            "payload": {"to": f"c{n}@example.com", "subject": "s", "body": "b"},
        }
        job_id = submit(api, body)["jobId"]
        if api.simulate_post(f"/jobs/{job_id}/cancel").status_code == 200:
            cancelled.append(job_id)
            if runtime.store.events(job_id)[-1].get("from") == "claimed":
                claimed.append(job_id)
        if len(claimed) >= 3:
            break
    assert claimed, "no cancel landed while a worker held its job claimed"
    time.sleep(2)
    mailed = {m.job_id for m in smtp_sink.messages}
    assert not mailed & set(cancelled)
    for job_id in cancelled:
        assert runtime.store.get(job_id).state == "cancelled"


def test_cancelling_a_finished_job_is_a_409(api, runtime, worker):
    job_id = submit(api, {"type": "dummy", "payload": {}})["jobId"]
    wait_for_state(runtime, job_id, "completed")
    result = api.simulate_post(f"/jobs/{job_id}/cancel")
    assert result.status_code == 409 and result.json["state"] == "completed"


def test_retrying_a_failed_job_resets_attempts_and_keeps_history(api, runtime, worker):
    body = {"type": "dummy", "payload": {"alwaysFail": True}, "maxAttempts": 1}
    job_id = submit(api, body)["jobId"]
    wait_for_state(runtime, job_id, "failed")
    result = api.simulate_post(f"/jobs/{job_id}/retry")
    assert result.status_code == 200 and result.json["state"] in (
        "waiting",
        "claimed",
        "active",
        "failed",
    )
    wait_until(lambda: [e for e in runtime.store.events(job_id) if e["event"] == "started"][1:])
    record = wait_for_state(runtime, job_id, "failed")
    assert record.attempts == 1
    events = [e["event"] for e in api.simulate_get(f"/jobs/{job_id}/events").json["items"]]
    assert events.count("dead-lettered") == 2 and "retried" in events


def test_retrying_a_completed_job_is_a_409(api, runtime, worker):
    job_id = submit(api, {"type": "dummy", "payload": {}})["jobId"]
    wait_for_state(runtime, job_id, "completed")
    assert api.simulate_post(f"/jobs/{job_id}/retry").status_code == 409


def test_retry_body_must_name_keep_or_reset(api):
    job_id = submit(api, {"type": "dummy", "payload": {}, "delaySeconds": 600})["jobId"]
    result = api.simulate_post(f"/jobs/{job_id}/retry", json={"effects": "maybe"})
    assert result.status_code == 422


# --- dead letters, listing, stats ---------------------------------------------------


def test_dead_letters_bulk_retry_and_purge(api, runtime, worker):
    tag = unique()
    ids = [
        submit(
            api,
            {
                "type": "dummy",
                "payload": {"alwaysFail": True, "echo": f"{tag}-{n}"},
                "maxAttempts": 1,
            },
        )["jobId"]
        for n in range(3)
    ]
    for job_id in ids:
        wait_for_state(runtime, job_id, "failed")
    retried = api.simulate_post("/jobs/dead/retry", json={"type": "dummy"}).json
    assert retried["retried"] >= 3
    for job_id in ids:
        wait_until(
            lambda j=job_id: (
                runtime.store.get(j).attempts == 1
                and runtime.store.get(j).state == "failed"
                and len(runtime.store.events(j)) > 4
            )
        )
    purged = api.simulate_delete("/jobs/dead", params={"type": "dummy"}).json
    assert purged["purged"] >= 3
    for job_id in ids:
        assert api.simulate_get(f"/jobs/{job_id}").status_code == 404


def test_listing_pages_newest_first_by_state_and_type(api, runtime):
    tag = unique()
    ids = [
        submit(api, {"type": "dummy", "payload": {"echo": tag}, "delaySeconds": 600})["jobId"]
        for _ in range(5)
    ]
    seen, cursor = [], None
    while True:
        params = {"state": "delayed", "type": "dummy", "limit": "2"}
        if cursor:
            params["cursor"] = cursor
        page = api.simulate_get("/jobs", params=params).json
        assert len(page["items"]) <= 2
        seen += [item["jobId"] for item in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    ours = [job_id for job_id in seen if job_id in ids]
    assert ours == list(reversed(ids))
    assert len(seen) == len(set(seen))


def test_listing_rejects_an_unknown_state_with_a_422(api):
    result = api.simulate_get("/jobs", params={"state": "sleeping"})
    assert result.status_code == 422 and result.json["errors"][0]["pointer"] == "/query/state"


def test_stats_count_states_types_and_queues(api):
    before = api.simulate_get("/jobs/stats").json
    submit(api, {"type": "report", "payload": {"durationSeconds": 1}, "delaySeconds": 600})
    after = api.simulate_get("/jobs/stats").json
    assert after["states"]["delayed"] == before["states"]["delayed"] + 1
    assert after["types"]["report"] == before["types"]["report"] + 1
    assert set(after["queues"]) >= {"email", "reports", "default"}
    assert after["deadLetters"] == after["states"]["failed"]


# --- exactly-once records -----------------------------------------------------------


def test_a_duplicate_message_does_not_run_a_finished_job_again(api, runtime: Runtime, worker):
    job_id = submit(api, {"type": "dummy", "payload": {}})["jobId"]
    wait_for_state(runtime, job_id, "completed")
    for generation in (1, 7):
        runtime.broker.enqueue(job_message(job_id, "dummy", "default", generation))
    time.sleep(1.5)
    starts = [e for e in runtime.store.events(job_id) if e["event"] == "started"]
    assert len(starts) == 1


def test_a_job_recorded_without_its_message_is_sent_by_the_promoter(
    runtime: Runtime, worker, settings
):
    job = new_job("default", payload_json=json.dumps({"echo": "lost"}), max_attempts=1)
    job_id = job.id
    runtime.store.create(job)
    record = wait_for_state(runtime, job_id, "completed", timeout=10)
    events = [e["event"] for e in runtime.store.events(job_id)]
    assert events == ["accepted", "started", "completed"]
    assert record.attempts == 1


def test_a_worker_killed_inside_a_guarded_effect_needs_a_human(api, runtime, worker, tmp_path):
    """The effect ran once; the job fails asking a human; keep fails fast; reset runs it."""
    path = tmp_path / "effects.log"
    body = {"type": "test-effect-then-die", "payload": {"path": str(path), "dieOnce": True}}
    job_id = submit(api, body)["jobId"]
    record = wait_for_state(runtime, job_id, "failed", timeout=40)
    assert path.read_text().count(job_id) == 1
    assert record.failed_reason.startswith("needs a human check")
    assert record.attempts == 1

    kept = api.simulate_post(f"/jobs/{job_id}/retry", json={"effects": "keep"})
    assert kept.status_code == 200
    wait_until(
        lambda: (
            runtime.store.events(job_id)[-1]["event"] == "dead-lettered"
            and runtime.store.get(job_id).state == "failed"
        ),
        timeout=20,
    )
    assert path.read_text().count(job_id) == 1

    skipped = api.simulate_post("/jobs/dead/retry", json={"type": "test-effect-then-die"}).json
    assert skipped["skipped"] >= 1 and runtime.store.get(job_id).state == "failed"

    reset = api.simulate_post(f"/jobs/{job_id}/retry", json={"effects": "reset"})
    assert reset.status_code == 200
    record = wait_for_state(runtime, job_id, "completed", timeout=20)
    assert record.result == "written"
    assert path.read_text().count(job_id) == 2


def test_a_stale_duplicate_skipped_beside_its_running_job_does_not_strand_it(
    tmp_path, smtp_sink, runtime
):
    """One worker process: the duplicate is skipped on another thread of the same process
    while the job runs; the job still finishes."""
    from conftest import WorkerProcess, service_env

    from jobcore.intake.submission import SubmissionParser
    from jobcore.runtime import build_runtime
    from jobcore.settings import ENV, Settings
    from jobcore_devstack.redis_server import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    try:
        env = service_env(server.url, smtp_sink.url, tmp_path)
        settings = Settings.from_env({k: v for k, v in env.items() if k in ENV.values()})
        private = build_runtime(settings, job_types=runtime.job_types)
        worker = WorkerProcess(
            env, tmp_path / "worker.log", "--processes", "1", "--threads", "4"
        ).start()
        try:
            body = {"type": "dummy", "payload": {"sleepSeconds": 1.5}}
            submission = SubmissionParser(private.job_types).parse(body, now_ms=0)
            job_id = private.jobs.submit(submission).job_id
            wait_for_state(private, job_id, "active")
            for _ in range(3):
                private.broker.enqueue(job_message(job_id, "dummy", "default", 1))
            wait_until(lambda: worker.log().count('"busy"') >= 1, timeout=10)
            record = wait_for_state(private, job_id, "completed", timeout=15)
            assert record.attempts == 1
        finally:
            worker.stop()
    finally:
        server.stop()


# --- idempotency keys that outlive their jobs, and keys from headers ---------------------


def test_a_key_replayed_after_its_job_was_purged_creates_a_new_job(api, runtime, worker):
    body = {
        "type": "dummy",
        "payload": {"alwaysFail": True},
        "maxAttempts": 1,
        "idempotencyKey": unique("purged"),
    }
    first = submit(api, body)
    wait_for_state(runtime, first["jobId"], "failed")
    assert api.simulate_delete("/jobs/dead", query_string="type=dummy").json["purged"] >= 1
    assert api.simulate_get(f"/jobs/{first['jobId']}").status_code == 404
    again = api.simulate_post("/jobs", json=body)
    assert again.status_code == 202, again.text
    assert again.json["jobId"] != first["jobId"] and "duplicate" not in again.json


def test_retention_deletes_the_idempotency_key_with_the_job(api, runtime, settings):
    from jobcore.store.retention import RetentionPruner

    key = unique("pruned")
    job_id = submit(
        api, {"type": "dummy", "payload": {}, "delaySeconds": 600, "idempotencyKey": key}
    )["jobId"]
    api.simulate_post(f"/jobs/{job_id}/cancel")
    later = now_ms() + int(settings.retention * 1000) + 60_000
    pruner = RetentionPruner(runtime.executor, settings)
    while not pruner.prune_batch("cancelled", "dummy", later)[2]:
        pass
    assert api.simulate_get(f"/jobs/{job_id}").status_code == 404
    again = api.simulate_post(
        "/jobs", json={"type": "dummy", "payload": {}, "delaySeconds": 600, "idempotencyKey": key}
    )
    assert again.status_code == 202 and again.json["jobId"] != job_id


def test_a_key_naming_a_job_that_is_gone_is_taken_over_by_the_new_job(api, runtime):
    from jobcore.store import keys

    key = unique("gone")
    first = submit(api, {"type": "dummy", "payload": {}, "idempotencyKey": key})["jobId"]
    runtime.client.delete(keys.job(first))  # as a lost write or a hand-made deletion would
    again = api.simulate_post("/jobs", json={"type": "dummy", "payload": {}, "idempotencyKey": key})
    assert again.status_code == 202 and again.json["jobId"] != first
    assert again.json["state"] == "waiting"


def test_a_non_ascii_idempotency_header_is_a_400_pointing_to_the_body_field(http_api):
    response = requests.post(
        http_api + "/jobs",
        json={"type": "dummy", "payload": {}},
        headers={"Idempotency-Key": "héllo-ключ".encode()},
        timeout=10,
    )
    assert response.status_code == 400
    assert "idempotencyKey" in response.json()["detail"]


def test_a_non_ascii_key_in_the_body_is_one_key(api):
    key = unique("héllo-ключ")
    body = {"type": "dummy", "payload": {}, "idempotencyKey": key}
    first, again = api.simulate_post("/jobs", json=body), api.simulate_post("/jobs", json=body)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json["jobId"] == again.json["jobId"]


def test_a_job_whose_type_the_worker_lacks_becomes_a_dead_letter_saying_so(
    tmp_path, smtp_sink, runtime
):
    """The API knows a type (its module is loaded there) that the worker does not: the job
    must not stay claimed while Dramatiq dead-letters its message."""
    from conftest import WorkerProcess, service_env

    from jobcore.intake.submission import SubmissionParser
    from jobcore.runtime import build_runtime
    from jobcore.settings import ENV, Settings
    from jobcore_devstack.redis_server import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    try:
        env = service_env(server.url, smtp_sink.url, tmp_path, JOBCORE_JOB_MODULES="")
        settings = Settings.from_env({k: v for k, v in env.items() if k in ENV.values()})
        private = build_runtime(settings, job_types=runtime.job_types)
        worker = WorkerProcess(
            env,
            tmp_path / "worker.log",
            "--processes",
            "1",
            "--threads",
            "2",
            "--queues",
            "default",
        ).start()
        try:
            submission = SubmissionParser(private.job_types).parse(
                {"type": "test-cpu-loop", "payload": {}}, now_ms=0
            )
            job_id = private.jobs.submit(submission).job_id
            record = wait_for_state(private, job_id, "failed", timeout=15)
            assert "has no implementation of job type 'test-cpu-loop'" in record.failed_reason
            assert "JOBCORE_JOB_MODULES" in record.failed_reason
        finally:
            worker.stop()
    finally:
        server.stop()
