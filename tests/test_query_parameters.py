"""Unknown and repeated query parameters are refused with a 422 on every endpoint."""

from __future__ import annotations

import pytest
from conftest import submit, wait_for_state

#: A GET of every path that reads, with the query parameters it takes.
READ_PATHS = (
    "/jobs",
    "/jobs/stats",
    "/jobs/dead",
    "/job-types",
    "/schedules",
    "/workers",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
)


@pytest.mark.parametrize("path", READ_PATHS)
def test_an_unknown_query_parameter_is_a_422_naming_it(api, path):
    result = api.simulate_get(path, query_string="foo=1")
    assert result.status_code == 422, result.text
    assert result.json["errors"][0]["pointer"] == "/query/foo"
    assert "unknown query parameter" in result.json["errors"][0]["detail"]


def test_a_typo_in_a_bulk_purge_purges_nothing(api, runtime, worker):
    job_id = submit(api, {"type": "dummy", "payload": {"alwaysFail": True}, "maxAttempts": 1})[
        "jobId"
    ]
    wait_for_state(runtime, job_id, "failed")
    for query in ("Type=email", "foo=1", "type=dummy&type=email", "state=failed"):
        result = api.simulate_delete("/jobs/dead", query_string=query)
        assert result.status_code == 422, (query, result.text)
    assert runtime.store.get(job_id).state == "failed"


def test_a_repeated_query_parameter_is_a_422(api):
    result = api.simulate_get("/jobs", query_string="state=failed&state=completed")
    assert result.status_code == 422
    assert result.json["errors"] == [
        {"pointer": "/query/state", "detail": "given more than once; send it once"}
    ]


def test_operations_take_no_query_parameters(api):
    job_id = submit(api, {"type": "dummy", "payload": {}, "delaySeconds": 600})["jobId"]
    result = api.simulate_post(f"/jobs/{job_id}/cancel", query_string="force=1")
    assert result.status_code == 422
    assert api.simulate_get(f"/jobs/{job_id}").json["state"] == "delayed"
    assert api.simulate_post("/jobs", query_string="x=1", json={"type": "dummy"}).status_code == 422


def test_the_declared_parameters_still_work(api):
    assert (
        api.simulate_get("/jobs", query_string="state=failed&type=dummy&limit=5").status_code == 200
    )
    assert api.simulate_get("/jobs/dead", query_string="type=dummy&limit=5").status_code == 200
    assert api.simulate_delete("/jobs/dead", query_string="type=csv-export").status_code == 200


def test_a_filter_sent_in_the_body_of_a_bulk_purge_purges_nothing(api, runtime, worker):
    job_id = submit(api, {"type": "dummy", "payload": {"alwaysFail": True}, "maxAttempts": 1})[
        "jobId"
    ]
    wait_for_state(runtime, job_id, "failed")
    result = api.simulate_delete("/jobs/dead", json={"type": "email"})
    assert result.status_code == 422, result.text
    assert "takes no body" in result.json["errors"][0]["detail"]
    assert '"type"' in result.json["errors"][0]["detail"]
    assert runtime.store.get(job_id).state == "failed"


def test_a_cancel_refuses_a_body_but_takes_an_empty_object(api):
    job_id = submit(api, {"type": "dummy", "payload": {}, "delaySeconds": 600})["jobId"]
    for body in ('{"reason": "x"}', "[]", "not json"):
        result = api.simulate_post(
            f"/jobs/{job_id}/cancel", body=body, headers={"Content-Type": "application/json"}
        )
        assert result.status_code == 422, (body, result.text)
    assert api.simulate_get(f"/jobs/{job_id}").json["state"] == "delayed"
    result = api.simulate_post(f"/jobs/{job_id}/cancel", json={})
    assert result.status_code == 200, result.text
