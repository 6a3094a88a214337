"""Records hold the types their schema means, and a damaged record never breaks a read."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import BIN, submit
from falcon import testing

from jobcore.jobs import new_job_id
from jobcore.model.backoff import Backoff
from jobcore.runtime import Runtime
from jobcore.store import keys

#: Every read that can include a job, by path (``{id}`` is the damaged job's id).
READS = (
    "/jobs/{id}",
    "/jobs/{id}/status",
    "/jobs/{id}/events",
    "/jobs",
    "/jobs?state=failed",
    "/jobs?type=dummy",
    "/jobs?state=failed&type=dummy",
    "/jobs/dead",
    "/jobs/dead?type=dummy",
    "/jobs/stats",
)


def test_an_integral_float_max_attempts_is_stored_as_an_integer(api, runtime):
    job_id = submit(api, {"type": "dummy", "payload": {}, "maxAttempts": 1.0})["jobId"]
    assert runtime.client.hget(keys.job(job_id), "maxAttempts") == "1"
    record = api.simulate_get(f"/jobs/{job_id}").json
    assert record["maxAttempts"] == 1 and isinstance(record["maxAttempts"], int)
    assert api.simulate_get("/jobs").status_code == 200


def test_integral_floats_in_integer_fields_become_integers(api, runtime):
    body = {
        "type": "dummy",
        "payload": {"failTimes": 2.0, "sleepSeconds": 0.0},
        "backoff": {"type": "fixed", "delayMs": 100.0, "maxDelayMs": 200.0},
    }
    job_id = submit(api, body)["jobId"]
    stored = runtime.client.hgetall(keys.job(job_id))
    # failTimes is an integer in the payload schema; sleepSeconds a number (kept as sent).
    assert json.loads(stored["payload"]) == {"failTimes": 2, "sleepSeconds": 0.0}
    assert '"failTimes":2,' in stored["payload"]
    assert json.loads(stored["backoff"])["delayMs"] == 100
    assert '"delayMs":100,' in stored["backoff"]


def test_the_same_key_with_1_and_1_point_0_is_the_same_request(api):
    key = new_job_id()
    first = submit(api, {"type": "dummy", "payload": {}, "maxAttempts": 2, "idempotencyKey": key})
    again = submit(api, {"type": "dummy", "payload": {}, "maxAttempts": 2.0, "idempotencyKey": key})
    assert again["jobId"] == first["jobId"] and again["duplicate"] is True


def _damaged_job(runtime: Runtime) -> str:
    """A record written by hand with every field wrong, indexed like a failed dummy."""
    job_id = "damaged-" + new_job_id()
    runtime.client.hset(
        keys.job(job_id),
        mapping={
            "type": "dummy",
            "queue": "default",
            "state": "failed",
            "payload": "{not json",
            "attempts": "1.5",
            "maxAttempts": "1.0",
            "deliveries": "many",
            "progress": "-7",
            "createdAt": "yesterday",
            "finishedAt": "99999999999999999999",
            "result": "[",
            "history": 'garbage\n{"at": "noon", "event": "started"}',
            "generation": "x",
            "seq": "1",
        },
    )
    runtime.client.sadd(keys.TYPES, "dummy")
    runtime.client.zadd(keys.index_state_type("failed", "dummy"), {job_id: 10**15})
    return job_id


@pytest.fixture()
def damaged(runtime: Runtime):
    job_id = _damaged_job(runtime)
    yield job_id
    runtime.client.delete(keys.job(job_id))
    runtime.client.zrem(keys.index_state_type("failed", "dummy"), job_id)


@pytest.mark.parametrize("path", READS)
def test_a_damaged_record_never_turns_a_read_into_a_500(api: testing.TestClient, damaged, path):
    result = api.simulate_get(path.format(id=damaged))
    assert result.status_code == 200, result.text


def test_a_damaged_record_is_shown_with_the_fields_that_could_not_be_read(api, damaged):
    record = api.simulate_get(f"/jobs/{damaged}").json
    assert record["maxAttempts"] == 1  # "1.0" is still a whole number
    assert set(record["recordErrors"]) == {
        "payload",
        "attempts",
        "deliveries",
        "createdAt",
        "finishedAt",
        "result",
        "generation",
    }
    assert record["payload"] == {} and record["progress"] == 0
    listed = api.simulate_get("/jobs/dead").json["items"]
    assert any(item["jobId"] == damaged and item["recordErrors"] for item in listed)
    events = api.simulate_get(f"/jobs/{damaged}/events").json["items"]
    assert [e["event"] for e in events] == ["undecodable", "undecodable"]


@pytest.mark.parametrize(
    ("stored", "unreadable"),
    [
        ('{"echo": NaN}', True),
        ('{"echo": 1e999}', True),
        ('{"echo": "\\ud800"}', False),
        (b'{"echo": "\xff\xfe"}', False),
    ],
)
def test_a_stored_payload_no_answer_can_hold_is_still_answered(api, runtime, stored, unreadable):
    """NaN and infinities are damage (answered as the default, named in ``recordErrors``);
    a lone surrogate is answered escaped, bytes that are not UTF-8 as U+FFFD. Every read is
    a 200 with JSON a client can parse."""
    job_id = _damaged_job(runtime)
    runtime.client.hset(keys.job(job_id), "payload", stored)
    try:
        for path in READS:
            result = api.simulate_get(path.format(id=job_id))
            assert result.status_code == 200, (path, result.text)
            json.loads(result.content)
        record = api.simulate_get(f"/jobs/{job_id}").json
        assert ("payload" in record["recordErrors"]) is unreadable
        shown = "\ufffd\ufffd" if isinstance(stored, bytes) else "\ud800"
        assert record["payload"] == ({} if unreadable else {"echo": shown})
    finally:
        runtime.client.delete(keys.job(job_id))
        runtime.client.zrem(keys.index_state_type("failed", "dummy"), job_id)


def test_the_command_line_lists_and_shows_a_damaged_record(env, damaged):
    for args in (("jobs",), ("jobs", "--state", "failed"), ("status", damaged)):
        result = subprocess.run(
            [str(BIN / "jobcore"), *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        json.loads(result.stdout)


def test_retrying_a_damaged_dead_letter_answers_with_its_record(api, damaged):
    result = api.simulate_post(f"/jobs/{damaged}/retry")
    assert result.status_code == 200, result.text
    # A running worker may have claimed it (and failed it: its payload is damaged) already.
    assert result.json["state"] in ("waiting", "claimed", "active", "failed")


def test_a_stored_retry_policy_is_read_once_and_a_damaged_one_is_the_default():
    text = Backoff(type="fixed", delay_ms=250, max_delay_ms=None).stored
    assert Backoff.from_stored(text) is Backoff.from_stored(text)
    assert Backoff.from_stored(text) == Backoff(type="fixed", delay_ms=250, max_delay_ms=None)
    for damaged in ("", "[]", "nonsense", '{"delayMs": "soon"}', '{"jitter": {}}'):
        assert Backoff.from_stored(damaged) == Backoff.from_json({})
