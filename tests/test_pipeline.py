"""The whole pipeline on real Redis and real worker processes."""

from __future__ import annotations

from pathlib import Path

from conftest import submit, wait_for_state, wait_until

SEED_000 = {
    "type": "welcome-email",
    "payload": {
        "email": "Albert@example.com",
        "name": "Albert",
        "message": "Congratulations! Your background job system is live.",
    },
}
SEED_004_CSV = {"type": "csv-generation", "payload": {"name": "Alice", "score": 95}}


def test_seed_000_welcome_email_completes_and_mails_once(api, runtime, worker, smtp_sink):
    job_id = submit(api, SEED_000)["jobId"]
    record = wait_for_state(runtime, job_id, "completed")
    mails = wait_until(lambda: [m for m in smtp_sink.messages if m.job_id == job_id])
    assert len(mails) == 1
    assert mails[0].recipients == ["Albert@example.com"]
    assert "Congratulations!" in mails[0].message.get_payload()
    assert record.result == {"messageId": mails[0].message["Message-ID"]}
    status = api.simulate_get(f"/jobs/{job_id}/status").json
    assert status["state"] == "completed" and status["processedAt"] is not None


def test_seed_004_csv_generation_writes_key_value_file(api, runtime, worker, settings):
    job_id = submit(api, SEED_004_CSV)["jobId"]
    record = wait_for_state(runtime, job_id, "completed")
    assert record.type == "csv-export"
    assert record.result == str(Path(settings.output_dir) / f"{job_id}.csv")
    assert Path(record.result).read_text() == "key,value\nname,Alice\nscore,95\n"


def test_csv_export_rows_become_header_and_lines(api, runtime, worker):
    body = {"type": "csv-export", "payload": {"rows": [{"a": 1, "b": "x"}, {"a": 2, "c": True}]}}
    record = wait_for_state(runtime, submit(api, body)["jobId"], "completed")
    assert Path(record.result).read_text() == "a,b,c\n1,x,\n2,,true\n"


def test_email_job_result_is_the_message_id(api, runtime, worker, smtp_sink):
    body = {
        "type": "email",
        "payload": {
            "to": "test@example.com",
            "subject": "Job Notification",
            "body": "Your job has been processed successfully.",
        },
    }
    job_id = submit(api, body)["jobId"]
    record = wait_for_state(runtime, job_id, "completed")
    mail = wait_until(lambda: [m for m in smtp_sink.messages if m.job_id == job_id])[0]
    assert mail.message["Subject"] == "Job Notification"
    assert record.result["messageId"] == mail.message["Message-ID"]


def test_report_reports_progress_and_a_summary(api, runtime, worker):
    job_id = submit(api, {"type": "report", "payload": {"durationSeconds": 1.5, "steps": 5}})[
        "jobId"
    ]
    seen = wait_until(lambda: 0 < runtime.store.get(job_id).progress < 100, timeout=10)
    assert seen
    record = wait_for_state(runtime, job_id, "completed")
    assert record.progress == 100
    assert record.result["steps"] == 5 and record.result["durationSeconds"] >= 1.5


def test_dummy_succeeds_with_an_echo(api, runtime, worker):
    job_id = submit(api, {"type": "dummy", "payload": {"echo": "hi"}})["jobId"]
    record = wait_for_state(runtime, job_id, "completed")
    assert record.result == {"echo": {"echo": "hi"}, "attempt": 1}
    assert record.attempts == 1 and record.deliveries == 1


def test_dummy_failing_twice_retries_then_completes(api, runtime, worker):
    body = {
        "type": "dummy",
        "payload": {"failTimes": 2},
        "maxAttempts": 3,
        "backoff": {"type": "fixed", "delayMs": 200},
    }
    job_id = submit(api, body)["jobId"]
    wait_for_state(runtime, job_id, "retrying")
    record = wait_for_state(runtime, job_id, "completed")
    assert record.attempts == 3
    events = [e["event"] for e in runtime.store.events(job_id)]
    assert events == [
        "accepted",
        "started",
        "attempt-failed",
        "started",
        "attempt-failed",
        "started",
        "completed",
    ]


def test_dummy_always_failing_is_dead_lettered_with_its_reason(api, runtime, worker):
    body = {
        "type": "dummy",
        "payload": {"alwaysFail": True},
        "maxAttempts": 2,
        "backoff": {"type": "fixed", "delayMs": 100},
    }
    job_id = submit(api, body)["jobId"]
    record = wait_for_state(runtime, job_id, "failed")
    assert record.attempts == 2
    assert record.failed_reason.startswith("failed after 2 attempt(s): DummyFailure")
    status = api.simulate_get(f"/jobs/{job_id}/status").json
    assert status["failedReason"] == record.failed_reason
    dead = api.simulate_get("/jobs/dead", params={"type": "dummy"}).json["items"]
    assert job_id in [item["jobId"] for item in dead]
