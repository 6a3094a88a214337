"""Failures that retrying cannot fix dead-letter at once, and bulk retries leave them alone."""

from __future__ import annotations

import json

import pytest
from conftest import submit, wait_for_state
from dramatiq.middleware import Shutdown

from jobcore.errors import PermanentError
from jobcore.execution.context import JobContext, JobInterrupted
from jobcore.execution.effects import EffectGuard, HumanCheckRequired
from jobcore.execution.job_lifecycle import attempt_outcome
from jobcore.model.backoff import Backoff
from jobcore.model.specs import JobSpec
from jobcore.model.states import AttemptOutcome


def _job(attempt: int = 1, max_attempts: int = 3) -> JobContext:
    return JobContext(
        id="j",
        type="t",
        payload={},
        attempt=attempt,
        max_attempts=max_attempts,
        generation=1,
        settings=None,  # type: ignore[arg-type]
        report_progress=lambda _p: None,
        effects=EffectGuard(None, "j", attempt),  # type: ignore[arg-type]
        backoff=Backoff(),
    )


SPEC = JobSpec(name="t", queue="q", payload_schema={}, permanent_errors=(KeyError,))


@pytest.mark.parametrize(
    ("exception", "attempt", "outcome"),
    [
        (None, 1, AttemptOutcome.COMPLETED),
        (ValueError("x"), 1, AttemptOutcome.RETRYING),
        (ValueError("x"), 3, AttemptOutcome.FAILED),
        (PermanentError("x"), 1, AttemptOutcome.FAILED_PERMANENTLY),
        (KeyError("x"), 1, AttemptOutcome.FAILED_PERMANENTLY),
        (HumanCheckRequired("x"), 1, AttemptOutcome.NEEDS_HUMAN_CHECK),
        (JobInterrupted(), 1, AttemptOutcome.REQUEUED),
        (Shutdown(), 3, AttemptOutcome.REQUEUED),
    ],
)
def test_the_outcome_of_an_attempt(exception, attempt, outcome):
    assert attempt_outcome(_job(attempt), exception, SPEC) is outcome


def test_a_job_that_returned_completed_whatever_was_raised_after():
    job = _job()
    job.finished = True
    assert attempt_outcome(job, Shutdown(), SPEC) is AttemptOutcome.COMPLETED


@pytest.mark.parametrize("job_type", ["test-permanent", "test-never-retried"])
def test_a_permanent_failure_dead_letters_at_the_first_attempt(api, runtime, worker, job_type):
    job_id = submit(api, {"type": job_type, "payload": {}})["jobId"]
    record = wait_for_state(runtime, job_id, "failed")
    assert record.attempts == 1 and record.max_attempts == 5
    assert record.failed_reason.startswith("failed permanently in attempt 1")
    dead = runtime.store.events(job_id)[-1]
    assert dead["event"] == "dead-lettered" and dead["permanent"] is True


def test_bulk_retry_skips_permanent_failures_unless_asked(api, runtime, worker):
    job_id = submit(api, {"type": "test-permanent", "payload": {}})["jobId"]
    wait_for_state(runtime, job_id, "failed")
    done = api.simulate_post("/jobs/dead/retry", json={"type": "test-permanent"}).json
    assert done["retried"] == 0 and done["skippedByFailure"]["permanent"] >= 1
    assert runtime.store.get(job_id).state == "failed"
    asked = {"type": "test-permanent", "includePermanent": True}
    done = api.simulate_post("/jobs/dead/retry", json=asked).json
    assert done["retried"] >= 1
    wait_for_state(runtime, job_id, "failed")
    assert [e["event"] for e in runtime.store.events(job_id)].count("retried") == 1


def test_bulk_retry_takes_effects_keep_or_reset_like_a_single_retry(api, runtime, worker, tmp_path):
    path = tmp_path / "effects.log"
    body = {"type": "test-effect-then-die", "payload": {"path": str(path), "dieOnce": True}}
    job_id = submit(api, body)["jobId"]
    wait_for_state(runtime, job_id, "failed", timeout=40)
    kept = api.simulate_post("/jobs/dead/retry", json={"type": "test-effect-then-die"}).json
    assert kept["retried"] == 0 and kept["skippedByFailure"]["human-check"] >= 1
    reset = {"type": "test-effect-then-die", "effects": "reset"}
    assert api.simulate_post("/jobs/dead/retry", json=reset).json["retried"] >= 1
    record = wait_for_state(runtime, job_id, "completed", timeout=20)
    assert record.result == "written" and path.read_text().count(job_id) == 2


def test_the_old_bulk_retry_field_is_refused_naming_the_new_ones(api):
    result = api.simulate_post("/jobs/dead/retry", json={"includeUnfinishedEffects": True})
    assert result.status_code == 422
    assert "effects" in result.json["errors"][0]["detail"]


@pytest.mark.parametrize("kind", ["datetime", "nan"])
def test_a_result_json_cannot_hold_fails_the_job_permanently_and_listings_stay_json(
    api, runtime, worker, kind
):
    job_id = submit(api, {"type": "test-unstorable-result", "payload": {"kind": kind}})["jobId"]
    record = wait_for_state(runtime, job_id, "failed")
    assert record.attempts == 1
    assert "a value JSON cannot hold" in record.failed_reason
    assert "return dicts, lists, strings, finite numbers" in record.failed_reason
    # Every reader still gets strict JSON (no NaN, no Infinity).
    listed = api.simulate_get("/jobs", params={"type": "test-unstorable-result"})
    assert listed.status_code == 200
    json.loads(listed.text, parse_constant=_refuse)
    json.loads(api.simulate_get(f"/jobs/{job_id}").text, parse_constant=_refuse)


def _refuse(constant: str) -> None:
    raise AssertionError(f"{constant} in a response body")
