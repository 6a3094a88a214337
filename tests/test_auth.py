"""API keys: off by default; when on, 401 without a known key, 403 for the wrong role."""

from __future__ import annotations

from dataclasses import replace

import pytest
import structlog
from conftest import submit
from falcon import testing

from jobcore.errors import ConfigurationError
from jobcore.jobs import new_job_id
from jobcore_api.app import create_app
from jobcore_api.auth import parse_api_keys

SUBMIT_SECRET = "submit-secret-" + "s" * 24
ADMIN_SECRET = "admin-secret-" + "a" * 24
OTHER_SUBMIT_SECRET = "other-secret-" + "o" * 24
API_KEYS = (
    f"frontend:submit:{SUBMIT_SECRET}, ops:admin:{ADMIN_SECRET},batch:submit:{OTHER_SUBMIT_SECRET}"
)


@pytest.fixture(scope="module")
def keyed(settings, runtime) -> testing.TestClient:
    return testing.TestClient(create_app(replace(settings, api_keys=API_KEYS), runtime))


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def dummy() -> dict[str, object]:
    return {"type": "dummy", "payload": {}, "delaySeconds": 300}


def test_api_keys_are_off_by_default(api):
    assert api.simulate_post("/jobs", json=dummy()).status_code == 202
    assert api.simulate_get("/jobs").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer "}, {"Authorization": f"Basic {SUBMIT_SECRET}"}],
    ids=["no header", "empty bearer", "another scheme"],
)
def test_a_request_without_a_key_is_a_401_with_a_challenge(keyed, headers):
    result = keyed.simulate_post("/jobs", json=dummy(), headers=headers)
    assert result.status_code == 401
    assert result.headers["Content-Type"] == "application/problem+json"
    assert result.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_key_is_a_401(keyed):
    result = keyed.simulate_get("/jobs", headers=bearer(SUBMIT_SECRET + "x"))
    assert result.status_code == 401


def test_a_submit_key_creates_and_reads_jobs(keyed):
    created = keyed.simulate_post("/jobs", json=dummy(), headers=bearer(SUBMIT_SECRET))
    assert created.status_code == 202
    job_id = created.json["jobId"]
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/status", "/jobs", "/jobs/stats"):
        assert keyed.simulate_get(path, headers=bearer(SUBMIT_SECRET)).status_code == 200


def test_the_x_api_key_header_works_too(keyed):
    result = keyed.simulate_post("/jobs", json=dummy(), headers={"X-API-Key": SUBMIT_SECRET})
    assert result.status_code == 202


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/jobs/{id}/cancel"),
        ("POST", "/jobs/{id}/retry"),
        ("POST", "/jobs/dead/retry"),
        ("DELETE", "/jobs/dead"),
    ],
)
def test_a_submit_key_may_not_operate_on_jobs(keyed, method, path):
    job_id = keyed.simulate_post("/jobs", json=dummy(), headers=bearer(SUBMIT_SECRET)).json["jobId"]
    result = keyed.simulate_request(method, path.format(id=job_id), headers=bearer(SUBMIT_SECRET))
    assert result.status_code == 403
    assert result.headers["Content-Type"] == "application/problem+json"
    assert "admin" in result.json["detail"]


def test_an_admin_key_cancels_and_purges(keyed, runtime):
    job_id = keyed.simulate_post("/jobs", json=dummy(), headers=bearer(ADMIN_SECRET)).json["jobId"]
    cancelled = keyed.simulate_post(f"/jobs/{job_id}/cancel", headers=bearer(ADMIN_SECRET))
    assert cancelled.status_code == 200 and cancelled.json["state"] == "cancelled"
    purged = keyed.simulate_delete("/jobs/dead", headers={"X-API-Key": ADMIN_SECRET})
    assert purged.status_code == 200 and "purged" in purged.json


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
def test_probes_metrics_and_the_spec_stay_open(keyed, path):
    assert keyed.simulate_get(path).status_code == 200


def test_idempotency_keys_are_scoped_per_api_key(keyed, api):
    body = {**dummy(), "idempotencyKey": f"shared-{new_job_id()}"}
    first = keyed.simulate_post("/jobs", json=body, headers=bearer(SUBMIT_SECRET))
    replay = keyed.simulate_post("/jobs", json=body, headers=bearer(SUBMIT_SECRET))
    other = keyed.simulate_post("/jobs", json=body, headers=bearer(OTHER_SUBMIT_SECRET))
    anonymous = submit(api, body)
    assert (first.status_code, replay.status_code, other.status_code) == (202, 200, 202)
    assert replay.json["jobId"] == first.json["jobId"]
    assert len({first.json["jobId"], other.json["jobId"], anonymous["jobId"]}) == 3


def test_secrets_never_reach_logs_or_reprs(keyed, settings):
    with structlog.testing.capture_logs() as logs:
        keyed.simulate_get("/jobs", headers=bearer(SUBMIT_SECRET + "wrong"))
        keyed.simulate_post("/jobs/x/cancel", headers=bearer(SUBMIT_SECRET))
        keyed.simulate_get("/jobs", headers=bearer(ADMIN_SECRET))
    text = repr(logs) + repr(replace(settings, api_keys=API_KEYS)) + repr(parse_api_keys(API_KEYS))
    for secret in (SUBMIT_SECRET, ADMIN_SECRET, OTHER_SUBMIT_SECRET):
        assert secret not in text


@pytest.mark.parametrize(
    "value,complaint",
    [
        ("justone", "name:role:secret"),
        ("a:superuser:" + "x" * 20, "role"),
        ("a:submit:short", "at least 16"),
        ("bad name:submit:" + "x" * 20, "name"),
        ("a:submit:" + "x" * 20 + ",a:admin:" + "y" * 20, "twice"),
        ("ops:admin:" + "x" * 20 + ",fe:submit:" + "x" * 20, "the same secret"),
        # A header carries UTF-8 as Latin-1 to the app: no client could send this secret.
        ("a:submit:" + "x" * 20 + "é", "printable ASCII"),
        ("a:submit:" + "x" * 20 + "\ty", "printable ASCII"),
    ],
)
def test_a_bad_api_keys_setting_is_refused_without_echoing_secrets(value, complaint):
    with pytest.raises(ConfigurationError) as refused:
        parse_api_keys(value)
    assert complaint in str(refused.value)
    assert "x" * 20 not in str(refused.value) and "short" not in str(refused.value)


def test_a_secret_may_contain_colons():
    (key,) = parse_api_keys("svc:admin:abc:def:ghi:jkl:mnop")
    assert (key.name, key.role) == ("svc", "admin")
