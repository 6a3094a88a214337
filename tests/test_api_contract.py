"""The HTTP contract under hostile input: every bad-input class, and the shapes of good answers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests
from conftest import submit
from falcon import testing
from prometheus_client.parser import text_string_to_metric_families

from jobcore import json_text
from jobcore.jobs import Jobs, new_job_id
from jobcore_api.app import create_app

PROBLEM_JSON = "application/problem+json"
#: UTC, RFC 3339, milliseconds, Z: ``2026-01-18T10:12:30.000Z``.
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

SEED_000 = {
    "type": "welcome-email",
    "payload": {
        "email": "Albert@example.com",
        "name": "Albert",
        "message": "Congratulations! Your background job system is live.",
    },
}
SEED_004_CSV = {"type": "csv-generation", "payload": {"name": "Alice", "score": 95}}
SEED_004_EMAIL_SEND = {
    "type": "EMAIL_SEND",
    "payload": {
        "to": "test@example.com",
        "subject": "Job Notification",
        "body": "Your job has been processed successfully.",
    },
}


def seed_001_body() -> dict[str, object]:
    """Seed 001's body; the key made unique so each test run starts fresh."""
    return {
        "type": "welcome-email",
        "idempotencyKey": f"welcome-email-anoop-v1-{new_job_id()}",
        "payload": {
            "email": "anoop@example.com",
            "name": "Anoop",
            "message": "Background job system is live!",
        },
    }


def post_raw(api: testing.TestClient, body: bytes, content_type: str = "application/json"):
    return api.simulate_post("/jobs", body=body, headers={"Content-Type": content_type})


def assert_problem(result, status: int) -> dict[str, object]:
    assert result.status_code == status, result.text
    assert result.headers["Content-Type"] == PROBLEM_JSON
    body = json.loads(result.text)
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    return body


def pointers(problem: dict[str, object]) -> set[str]:
    return {e["pointer"] for e in problem["errors"]}  # type: ignore[attr-defined]


# --- 400: bodies the parser refuses -----------------------------------------------------

MALFORMED = {
    "syntax error": b'{"type": "dummy", "payload": {',
    "trailing garbage": b'{"type": "dummy"} x',
    "duplicate key": b'{"type": "dummy", "type": "email", "payload": {}}',
    "duplicate key inside the payload": b'{"type": "dummy", "payload": {"echo": 1, "echo": 2}}',
    "NaN": b'{"type": "dummy", "payload": {"echo": NaN}}',
    "Infinity": b'{"type": "dummy", "payload": {"echo": Infinity}}',
    "-Infinity": b'{"type": "dummy", "payload": {"echo": -Infinity}}',
    "a number overflowing to infinity": b'{"type": "dummy", "payload": {"echo": 1e400}}',
    "an integer of 5000 digits": b'{"type": "dummy", "payload": {"echo": ' + b"9" * 5000 + b"}}",
    "a lone surrogate": b'{"type": "dummy", "payload": {"echo": "\\ud800"}}',
    "a lone surrogate in a key": b'{"type": "dummy", "payload": {"\\udfff": 1}}',
    "a NUL character": b'{"type": "dummy", "payload": {"echo": "a\\u0000b"}}',
    "a NUL character in a key": b'{"type": "dummy", "payload": {"a\\u0000": 1}}',
    "invalid UTF-8": b'{"type": "dummy", "payload": {"echo": "\xff\xfe"}}',
    "nesting one level deeper than the limit": (
        b'{"type": "csv-export", "payload": {"a": ' + b"[" * 31 + b"]" * 31 + b"}}"
    ),
    "nesting 100000 levels deep": b"[" * 100_000 + b"]" * 100_000,
    "an empty body": b"",
    "only whitespace": b"   \n",
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_body_the_parser_refuses_is_a_400_problem(api, body):
    problem = assert_problem(post_raw(api, body), 400)
    assert problem["detail"]


def test_nesting_at_the_limit_gets_past_the_parser(api):
    # The body, the payload, then 30 arrays: 32 levels, so the schema answers, not the parser.
    body = b'{"type": "csv-export", "payload": {"a": ' + b"[" * 30 + b"]" * 30 + b"}}"
    problem = assert_problem(post_raw(api, body), 422)
    assert pointers(problem) == {"/payload/a"}


def test_the_nesting_limit_is_a_setting(settings, runtime):
    shallow = testing.TestClient(create_app(replace(settings, max_json_depth=3), runtime))
    body = {"type": "csv-export", "payload": {"rows": [{"a": 1}]}}
    problem = assert_problem(shallow.simulate_post("/jobs", json=body), 400)
    assert "deeper than 3" in str(problem["detail"])


# --- 413, 415 ---------------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413_by_its_content_length(api, settings):
    body = b'{"type": "dummy", "payload": {"echo": "' + b"x" * settings.max_body_bytes + b'"}}'
    problem = assert_problem(post_raw(api, body), 413)
    assert str(settings.max_body_bytes) in str(problem["detail"])


def test_the_body_limit_is_a_setting(settings, runtime):
    small = testing.TestClient(create_app(replace(settings, max_body_bytes=64), runtime))
    body = {"type": "dummy", "payload": {"echo": "x" * 64}}
    assert_problem(small.simulate_post("/jobs", json=body), 413)
    assert small.simulate_post("/jobs", json={"type": "dummy", "payload": {}}).status_code == 202


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A JSON body of ``total`` bytes or more, sent without a Content-Length."""
    yield b'{"type": "dummy", "payload": {"echo": "'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}}'


def test_a_chunked_body_over_the_limit_is_a_413(http_api, settings):
    result = requests.post(
        http_api + "/jobs",
        data=_chunks(settings.max_body_bytes + 1),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert result.status_code == 413
    assert result.headers["Content-Type"] == PROBLEM_JSON


def test_a_chunked_body_within_the_limit_is_read_whole(http_api):
    body = json.dumps(SEED_000).encode()
    result = requests.post(
        http_api + "/jobs",
        data=iter([body[:10], body[10:]]),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert result.status_code == 202, result.text
    assert "Content-Length" not in result.request.headers


@pytest.mark.parametrize("body", [b'{"type": "no-such-type"}', b"not json"])
def test_a_chunked_retry_body_is_read_not_ignored(http_api, body):
    # Ignored, its filter would be dropped and every dead letter retried.
    result = requests.post(
        http_api + "/jobs/dead/retry",
        data=iter([body[:5], body[5:]]),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert "Content-Length" not in result.request.headers
    assert result.status_code in (400, 422), result.text
    assert result.headers["Content-Type"] == PROBLEM_JSON


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "",
        "+json",
        "text/json+json",
        "application/+json",
        "application/jsonx",
    ],
)
def test_a_body_that_is_not_json_is_a_415(api, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    result = api.simulate_post("/jobs", body=b'{"type": "dummy"}', headers=headers)
    assert_problem(result, 415)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        'Application/JSON; charset="UTF-8"',
        "application/json;charset=utf8",
        "application/vnd.jobcore+json",
    ],
)
def test_json_in_utf_8_is_json_however_its_type_is_spelled(api, content_type):
    body = json.dumps({"type": "dummy", "payload": {}}).encode()
    assert post_raw(api, body, content_type).status_code == 202


@pytest.mark.parametrize("charset", ["latin-1", "utf-16", "windows-1252"])
def test_json_declared_in_another_charset_is_a_415_naming_utf_8(api, charset):
    body = json.dumps({"type": "dummy", "payload": {}}).encode()
    problem = assert_problem(post_raw(api, body, f"application/json; charset={charset}"), 415)
    assert "UTF-8" in problem["detail"] and charset in problem["detail"]


# --- 422: parsed, but breaking a schema or a limit ---------------------------------------


def test_each_problem_is_listed_once(api):
    problem = assert_problem(
        api.simulate_post("/jobs", json={"type": "dummy", "payload": {}, "backoff": {}}), 422
    )
    assert problem["errors"] == [
        {"pointer": "/backoff", "detail": '"type", "delayMs" are required'}
    ]


def test_an_unknown_type_is_a_422_naming_the_known_types(api):
    problem = assert_problem(api.simulate_post("/jobs", json={"type": "nope", "payload": {}}), 422)
    assert problem["errors"] == [
        {"pointer": "/type", "detail": problem["errors"][0]["detail"]}  # type: ignore[index]
    ]
    assert "welcome-email" in problem["errors"][0]["detail"]  # type: ignore[index]


def test_a_payload_failing_its_schema_lists_each_problem(api):
    body = {
        "type": "welcome-email",
        "payload": {"email": "not-an-address", "name": "", "message": 5, "extra": True},
    }
    problem = assert_problem(api.simulate_post("/jobs", json=body), 422)
    assert {"/payload/email", "/payload/name", "/payload/message", "/payload"} <= pointers(problem)
    for error in problem["errors"]:  # type: ignore[attr-defined]
        assert set(error) == {"pointer", "detail"} and error["detail"]


def test_a_missing_required_payload_field_points_at_the_payload(api):
    body = {"type": "email", "payload": {"to": "a@example.com", "subject": "s"}}
    problem = assert_problem(api.simulate_post("/jobs", json=body), 422)
    assert problem["errors"] == [{"pointer": "/payload", "detail": '"body" is required'}]


def test_the_body_must_be_an_object(api):
    for body in (b"[]", b'"dummy"', b"42", b"null"):
        problem = assert_problem(post_raw(api, body), 422)
        assert pointers(problem) == {""}


def test_an_unknown_envelope_field_is_a_422(api):
    body = {"type": "dummy", "payload": {}, "priority": 1}
    problem = assert_problem(api.simulate_post("/jobs", json=body), 422)
    assert pointers(problem) == {""} and "priority" in str(problem["errors"])


LIMIT_BREAKS = {
    "an integer above 64 bits": ({"type": "csv-export", "payload": {"n": 2**63}}, "/payload/n"),
    "an integer below 64 bits": (
        {"type": "csv-export", "payload": {"rows": [{"n": -(2**63) - 1}]}},
        "/payload/rows/0/n",
    ),
    "more payload keys than the limit": (
        {
            "type": "csv-export",
            "payload": {"rows": [{f"k{i}": i for i in range(100)} for _ in range(10)]},
        },
        "/payload",
    ),
    "a negative delay": ({"type": "dummy", "payload": {}, "delaySeconds": -1}, "/delaySeconds"),
    "a delay over seven days": (
        {"type": "dummy", "payload": {}, "delaySeconds": 7 * 86400},
        "/delaySeconds",
    ),
    "runAt a year ahead": (
        {"type": "dummy", "payload": {}, "runAt": "2099-01-01T00:00:00.000Z"},
        "/runAt",
    ),
    "runAt long past": (
        {"type": "dummy", "payload": {}, "runAt": "2000-01-01T00:00:00Z"},
        "/runAt",
    ),
    "runAt without an offset": (
        {"type": "dummy", "payload": {}, "runAt": "2026-01-18T10:12:30"},
        "/runAt",
    ),
    "runAt as an ISO week date": (
        {"type": "dummy", "payload": {}, "runAt": "2026-W03-1"},
        "/runAt",
    ),
    "runAt on February 31st": (
        {"type": "dummy", "payload": {}, "runAt": "2026-02-31T00:00:00Z"},
        "/runAt",
    ),
    "zero attempts": ({"type": "dummy", "payload": {}, "maxAttempts": 0}, "/maxAttempts"),
    "101 attempts": ({"type": "dummy", "payload": {}, "maxAttempts": 101}, "/maxAttempts"),
    "a fractional attempt count": (
        {"type": "dummy", "payload": {}, "maxAttempts": 2.5},
        "/maxAttempts",
    ),
    "a backoff over a day": (
        {"type": "dummy", "payload": {}, "backoff": {"type": "fixed", "delayMs": 86_400_001}},
        "/backoff/delayMs",
    ),
    "an unknown backoff type": (
        {"type": "dummy", "payload": {}, "backoff": {"type": "linear", "delayMs": 1}},
        "/backoff/type",
    ),
    "a backoff cap below its delay": (
        {
            "type": "dummy",
            "payload": {},
            "backoff": {"type": "exponential", "delayMs": 1000, "maxDelayMs": 10},
        },
        "/backoff/maxDelayMs",
    ),
    "an idempotency key of 256 characters": (
        {"type": "dummy", "payload": {}, "idempotencyKey": "k" * 256},
        "/idempotencyKey",
    ),
    "an idempotency key with a control character": (
        {"type": "dummy", "payload": {}, "idempotencyKey": "a\tb"},
        "/idempotencyKey",
    ),
    "an empty idempotency key": (
        {"type": "dummy", "payload": {}, "idempotencyKey": ""},
        "/idempotencyKey",
    ),
    "a report longer than five minutes": (
        {"type": "report", "payload": {"durationSeconds": 301}},
        "/payload/durationSeconds",
    ),
    "a dummy sleeping over a minute": (
        {"type": "dummy", "payload": {"sleepSeconds": 61}},
        "/payload/sleepSeconds",
    ),
    "an e-mail body over 100000 characters": (
        {
            "type": "email",
            "payload": {"to": "a@example.com", "subject": "s", "body": "x" * 100_001},
        },
        "/payload/body",
    ),
}


@pytest.mark.parametrize("body,pointer", LIMIT_BREAKS.values(), ids=LIMIT_BREAKS.keys())
def test_a_body_breaking_a_limit_is_a_422_pointing_at_it(api, body, pointer):
    problem = assert_problem(api.simulate_post("/jobs", json=body), 422)
    assert pointer in pointers(problem), problem


def test_integers_at_the_64_bit_bounds_are_accepted(api):
    body = {"type": "csv-export", "payload": {"max": 2**63 - 1, "min": -(2**63)}}
    assert api.simulate_post("/jobs", json=body).status_code == 202


def test_payload_key_and_attempt_limits_are_settings(settings, runtime):
    strict = testing.TestClient(
        create_app(replace(settings, max_payload_keys=2, max_attempts_limit=3), runtime)
    )
    keys = {"type": "csv-export", "payload": {"a": 1, "b": 2, "c": 3}}
    assert pointers(assert_problem(strict.simulate_post("/jobs", json=keys), 422)) == {"/payload"}
    attempts = {"type": "dummy", "payload": {}, "maxAttempts": 4}
    assert_problem(strict.simulate_post("/jobs", json=attempts), 422)


def test_an_idempotency_header_too_long_is_a_422(api):
    result = api.simulate_post(
        "/jobs", json={"type": "dummy", "payload": {}}, headers={"Idempotency-Key": "k" * 256}
    )
    assert pointers(assert_problem(result, 422)) == {"/idempotencyKey"}


@pytest.mark.parametrize("limit", ["0", "501", "-1", "abc", "²", "1" * 40, "1.5"])
def test_a_listing_limit_out_of_range_is_a_422(api, limit):
    problem = assert_problem(api.simulate_get("/jobs", params={"limit": limit}), 422)
    assert pointers(problem) == {"/query/limit"}


@pytest.mark.parametrize("cursor", ["x", "²", "9" * 40])
def test_a_bad_cursor_is_a_422(api, cursor):
    problem = assert_problem(api.simulate_get("/jobs", params={"cursor": cursor}), 422)
    assert pointers(problem) == {"/query/cursor"}


def test_the_listing_limit_is_a_setting(settings, runtime):
    smaller = replace(settings, max_list_limit=5)
    jobs = Jobs(smaller, runtime.store, runtime.jobs.sender, runtime.job_types)
    small = testing.TestClient(create_app(smaller, replace(runtime, settings=smaller, jobs=jobs)))
    assert_problem(small.simulate_get("/jobs", params={"limit": "6"}), 422)
    assert small.simulate_get("/jobs", params={"limit": "5"}).status_code == 200


# --- 404 --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/status", "/events"])
def test_an_unknown_id_is_a_404_problem(api, suffix):
    assert_problem(api.simulate_get(f"/jobs/{new_job_id()}{suffix}"), 404)


@pytest.mark.parametrize("operation", ["cancel", "retry"])
def test_operations_on_an_unknown_id_are_a_404_problem(api, operation):
    assert_problem(api.simulate_post(f"/jobs/{new_job_id()}/{operation}"), 404)


def test_an_unknown_path_is_a_404_problem(api):
    assert_problem(api.simulate_get("/nothing-here"), 404)


# --- good answers: 202 and the record's shapes -------------------------------------------


def test_seed_000_is_accepted_with_202_the_job_id_and_its_location(api):
    result = api.simulate_post("/jobs", json=SEED_000)
    assert result.status_code == 202
    assert result.headers["Content-Type"] == "application/json"
    assert set(result.json) == {"status", "jobId", "state"}
    assert result.json["status"] == "accepted" and result.json["state"] == "waiting"
    assert re.fullmatch(r"[A-Za-z0-9_-]+", result.json["jobId"])
    assert result.headers["Location"] == f"/jobs/{result.json['jobId']}"


def test_seed_001_with_an_idempotency_key_replays_the_same_job(api):
    body = seed_001_body()
    first = api.simulate_post("/jobs", json=body)
    again = api.simulate_post("/jobs", json=body)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json["jobId"] == first.json["jobId"] and again.json["duplicate"] is True
    assert again.headers["Location"] == first.headers["Location"]


@pytest.mark.parametrize(
    "spellings",
    [
        ('"delaySeconds":10', '"delaySeconds":10.0', '"delaySeconds":1e1'),
        ('"payload":{"sleepSeconds":1}', '"payload":{"sleepSeconds":1.0}'),
        (
            '"backoff":{"type":"fixed","delayMs":100,"jitter":0}',
            '"backoff":{"type":"fixed","delayMs":100,"jitter":0.0}',
        ),
    ],
)
def test_a_retry_spelling_a_number_differently_is_the_same_request(api, spellings):
    key = f"numbers-{abs(hash(spellings))}"
    answers = [
        post_raw(
            api,
            b'{"type":"dummy",%s,"idempotencyKey":"%s"}' % (spelled.encode(), key.encode()),
        )
        for spelled in spellings
    ]
    assert [a.status_code for a in answers] == [202] + [200] * (len(spellings) - 1), [
        a.text for a in answers
    ]
    assert len({a.json["jobId"] for a in answers}) == 1


def test_a_retry_with_a_different_number_is_a_conflict(api):
    first = post_raw(api, b'{"type":"dummy","delaySeconds":10,"idempotencyKey":"num-diff"}')
    second = post_raw(api, b'{"type":"dummy","delaySeconds":10.5,"idempotencyKey":"num-diff"}')
    assert first.status_code == 202
    assert_problem(second, 422)


def test_seed_004_csv_generation_is_accepted_as_csv_export(api, runtime):
    job_id = submit(api, SEED_004_CSV)["jobId"]
    record = api.simulate_get(f"/jobs/{job_id}").json
    assert record["type"] == "csv-export" and record["payload"] == {"name": "Alice", "score": 95}


def test_seed_004_email_send_is_accepted_as_email(api):
    job_id = submit(api, SEED_004_EMAIL_SEND)["jobId"]
    record = api.simulate_get(f"/jobs/{job_id}").json
    assert record["type"] == "email" and record["queue"] == "email"
    assert record["payload"] == SEED_004_EMAIL_SEND["payload"]


def test_get_job_shows_the_whole_record_with_millisecond_utc_times(api):
    job_id = submit(api, {"type": "dummy", "payload": {"echo": "shape"}, "delaySeconds": 60})[
        "jobId"
    ]
    result = api.simulate_get(f"/jobs/{job_id}")
    assert result.status_code == 200 and result.headers["Content-Type"] == "application/json"
    record = result.json
    assert {
        "jobId",
        "type",
        "queue",
        "payload",
        "state",
        "attempts",
        "maxAttempts",
        "deliveries",
        "progress",
        "result",
        "failedReason",
        "createdAt",
        "processedAt",
        "finishedAt",
        "nextAttemptAt",
        "traceId",
    } <= set(record)
    assert record["jobId"] == job_id and record["state"] == "delayed"
    assert record["payload"] == {"echo": "shape"}
    assert (record["attempts"], record["deliveries"], record["progress"]) == (0, 0, 0)
    assert record["result"] is None and record["failedReason"] is None
    assert TIME.match(record["createdAt"]) and TIME.match(record["runAt"])
    assert record["processedAt"] is None and record["finishedAt"] is None
    assert re.fullmatch(r"[0-9a-f]{32}", record["traceId"])


def test_get_status_has_seed_000s_shape(api):
    job_id = submit(api, {**SEED_000, "delaySeconds": 60})["jobId"]
    status = api.simulate_get(f"/jobs/{job_id}/status").json
    assert set(status) == {
        "jobId",
        "type",
        "state",
        "createdAt",
        "processedAt",
        "failedReason",
        "attempts",
    }
    assert status["jobId"] == job_id and status["type"] == "welcome-email"
    assert status["state"] == "delayed" and TIME.match(status["createdAt"])
    assert status["processedAt"] is None and status["failedReason"] is None


def test_seed_000_over_real_http_answers_202_then_the_status(http_api):
    accepted = requests.post(http_api + "/jobs", json=SEED_000, timeout=5)
    assert accepted.status_code == 202
    status = requests.get(http_api + accepted.headers["Location"] + "/status", timeout=5)
    assert status.status_code == 200 and status.json()["jobId"] == accepted.json()["jobId"]


def test_malformed_json_over_real_http_is_a_400_problem(http_api):
    result = requests.post(
        http_api + "/jobs",
        data=b"[" * 50_000,
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert result.status_code == 400 and result.headers["Content-Type"] == PROBLEM_JSON


# --- refusal messages ----------------------------------------------------------------------


def test_a_refusal_quotes_a_huge_value_briefly_once(api):
    body = {"type": "dummy", "payload": {"echo": "x" * 1_000_000}}
    result = api.simulate_post("/jobs", json=body)
    assert result.status_code == 422
    assert len(result.content) < 2_000
    assert result.json["errors"] == [
        {"pointer": "/payload/echo", "detail": "must have at most 10000 character(s)"}
    ]


@pytest.mark.parametrize(
    ("body", "pointer", "detail"),
    [
        ({"type": "dummy", "maxAttempts": True}, "/maxAttempts", "must be an integer, not true"),
        ({"type": "dummy", "payload": None}, "/payload", "must be an object, not null"),
        (
            {"type": "dummy", "payload": {"echo": {"a": 1}}},
            "/payload/echo",
            "must be a string or a number or true or false or null, not an object",
        ),
        (
            {"type": "dummy", "backoff": {"type": "linear", "delayMs": 1}},
            "/backoff/type",
            'must be one of "fixed", "exponential"; got "linear"',
        ),
    ],
)
def test_refusals_speak_json_not_python(api, body, pointer, detail):
    problem = assert_problem(api.simulate_post("/jobs", json=body), 422)
    assert {"pointer": pointer, "detail": detail} in problem["errors"]  # type: ignore[operator]
    for python_spelling in ("None", "True", "False", "{'"):
        assert python_spelling not in json.dumps(problem)


def test_an_unknown_type_is_quoted_briefly(api):
    problem = assert_problem(api.simulate_post("/jobs", json={"type": "t" * 100}), 422)
    detail = problem["errors"][0]["detail"]  # type: ignore[index]
    assert detail.startswith('unknown job type "' + "t" * 90) and "…" in detail


def test_backoff_max_delay_null_means_no_cap_as_job_types_shows(api):
    shown = api.simulate_get("/job-types").json["items"]
    assert any(t["retry"]["backoff"]["maxDelayMs"] is None for t in shown)
    body = {"type": "dummy", "backoff": {"type": "exponential", "delayMs": 10, "maxDelayMs": None}}
    result = api.simulate_post("/jobs", json=body)
    assert result.status_code == 202, result.text


def test_an_unknown_route_or_method_says_what_to_do(api):
    missing = api.simulate_get("/jobz")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "/openapi.json" in missing.json["detail"]
    wrong = api.simulate_delete("/healthz")
    assert wrong.status_code == 405
    assert wrong.json["detail"] == "/healthz does not take DELETE; it takes GET, HEAD, OPTIONS"


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/jobs", "GET, HEAD, OPTIONS, POST"),
        ("/jobs/abc", "GET, HEAD, OPTIONS"),
        ("/jobs/dead", "DELETE, GET, HEAD, OPTIONS"),
        ("/healthz", "GET, HEAD, OPTIONS"),
    ],
)
def test_options_names_the_methods_a_route_takes_as_a_405_does(api, path, allow):
    answer = api.simulate_options(path)
    assert answer.status_code == 204 and answer.content == b""
    assert answer.headers["allow"] == allow
    assert api.simulate_request("TRACE", path).headers["allow"] == allow


def test_head_answers_as_get_without_a_body(api):
    health = api.simulate_head("/healthz")
    assert health.status_code == 200 and health.content == b""
    assert api.simulate_head("/jobs/no-such-job").status_code == 404


@pytest.mark.parametrize(
    ("payload_type", "payload", "key", "pointer"),
    [
        ("dummy", {}, "order-1\n", "/idempotencyKey"),
        ("email", {"to": "a@x.org", "subject": "hi\n", "body": "b"}, None, "/payload/subject"),
        ("welcome-email", {"email": "a@example.com", "name": "Ada\r"}, None, "/payload/name"),
    ],
)
def test_a_line_break_at_the_very_end_is_refused_too(api, payload_type, payload, key, pointer):
    body = {"type": payload_type, "payload": payload}
    if key is not None:
        body["idempotencyKey"] = key
    refused = api.simulate_post("/jobs", json=body)
    assert refused.status_code == 422, refused.json
    assert pointer in [e["pointer"] for e in refused.json["errors"]]


def test_every_answer_is_compact_json_problems_included(api):
    answers = [
        api.simulate_get("/healthz"),
        api.simulate_post("/jobs", json={"type": "dummy", "payload": {"echo": "hé"}}),
        api.simulate_post("/jobs", json={}),  # 422
        api.simulate_post("/jobs", body=b"{", headers={"Content-Type": "application/json"}),
        api.simulate_get("/no-such-route"),  # 404
        api.simulate_delete("/healthz"),  # 405
    ]
    assert [a.status_code for a in answers] == [200, 202, 422, 400, 404, 405]
    for answer in answers:
        # No spaces, UTF-8 as is: the text orjson writes for the same value, key order kept.
        assert answer.content == json_text.answer(answer.json), answer.text


def test_a_scrape_shows_the_requests_this_process_answered_before_it(api):
    def count() -> float:
        text = api.simulate_get("/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "jobcore_api_requests_total" and sample.labels == {
                    "route": "/jobs/{job_id}",
                    "method": "GET",
                    "status": "404",
                }:
                    return sample.value
        return 0.0

    before = count()
    for _ in range(3):
        assert api.simulate_get("/jobs/no-such-job").status_code == 404
    # Counted in memory, written to the metric files before this scrape is rendered.
    assert count() == before + 3
