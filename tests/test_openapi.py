"""The OpenAPI document at /openapi.json and the app's routes describe the same operations."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import falcon.inspect
import pytest
from falcon import testing
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from jobcore.intake.submission import SUBMISSION_SCHEMA
from jobcore_api.app import create_app
from jobcore_api.openapi import SUBMIT_EXAMPLES
from jobcore_api.routes import ROUTES, openapi_path, routes_markdown

README = Path(__file__).resolve().parent.parent / "README.md"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


@pytest.fixture(scope="module")
def app(settings, runtime):
    return create_app(settings, runtime)


@pytest.fixture(scope="module")
def spec(app) -> dict:
    result = testing.TestClient(app).simulate_get("/openapi.json")
    assert result.status_code == 200 and result.headers["Content-Type"] == "application/json"
    return result.json


def spec_operations(spec: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), _template(path))
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def app_operations(app) -> set[tuple[str, str]]:
    return {
        (method.method, _template(route.path))
        for route in falcon.inspect.inspect_routes(app)
        for method in route.methods
        if not method.internal
    }


def test_the_app_the_spec_and_the_readme_serve_the_route_table(spec, app):
    table = {(route.method, _template(route.path)) for route in ROUTES}
    served = app_operations(app)
    # HEAD is each GET route's, without the body, and OPTIONS every path's, naming its
    # methods (HTTP's own rules: not in the contract).
    heads = {(method, path) for method, path in served if method == "HEAD"}
    assert heads == {("HEAD", path) for method, path in table if method == "GET"}
    options = {(method, path) for method, path in served if method == "OPTIONS"}
    assert options == {("OPTIONS", path) for _, path in table}
    assert served - heads - options == table
    assert spec_operations(spec) == table
    assert routes_markdown() in README.read_text()


def test_every_route_answers_with_the_statuses_it_documents(spec):
    for route in ROUTES:
        operation = spec["paths"][openapi_path(route.path)][route.method.lower()]
        assert sorted(int(code) for code in operation["responses"]) == list(route.statuses)


def test_the_spec_is_openapi_3_1(spec):
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] == "Jobcore"


def test_the_submission_body_is_the_parsers_envelope_schema(spec):
    body = spec["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]
    submission = spec["components"]["schemas"]["Submission"]
    assert body["schema"] == {"$ref": "#/components/schemas/Submission"}
    assert submission["allOf"][0] == SUBMISSION_SCHEMA


def test_the_seed_examples_are_valid_submissions(spec):
    validator = _validator(spec, "Submission")
    for name, example in SUBMIT_EXAMPLES.items():
        errors = list(validator.iter_errors(example["value"]))
        assert not errors, (name, errors)


def test_every_error_response_is_problem_json(spec):
    responses = spec["components"]["responses"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")) and path != "/readyz":
                    resolved = responses[response["$ref"].rsplit("/", 1)[1]]
                    assert list(resolved["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        code,
                    )


def test_a_422_documents_its_errors_list(spec):
    invalid = spec["components"]["responses"]["Invalid"]["content"]["application/problem+json"]
    assert invalid["schema"] == {"$ref": "#/components/schemas/ValidationProblem"}


def test_every_body_operation_documents_400_413_415_and_422(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS and "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= set(operation["responses"]), path


def test_real_answers_match_their_response_schemas(spec, api):
    accepted = api.simulate_post("/jobs", json=SUBMIT_EXAMPLES["welcomeEmail"]["value"])
    job_id = accepted.json["jobId"]
    _validator(spec, "Accepted").validate(accepted.json)
    _validator(spec, "Job").validate(api.simulate_get(f"/jobs/{job_id}").json)
    _validator(spec, "JobStatus").validate(api.simulate_get(f"/jobs/{job_id}/status").json)
    _validator(spec, "JobEvents").validate(api.simulate_get(f"/jobs/{job_id}/events").json)
    _validator(spec, "JobPage").validate(api.simulate_get("/jobs").json)
    _validator(spec, "Stats").validate(api.simulate_get("/jobs/stats").json)
    _validator(spec, "JobTypes").validate(api.simulate_get("/job-types").json)
    _validator(spec, "Schedules").validate(api.simulate_get("/schedules").json)
    invalid = api.simulate_post("/jobs", json={"type": "nope"})
    _validator(spec, "ValidationProblem").validate(invalid.json)


def test_with_api_keys_on_the_spec_requires_them_except_for_open_paths(settings, runtime):
    keyed = create_app(replace(settings, api_keys="ops:admin:" + "k" * 20), runtime)
    spec = testing.TestClient(keyed).simulate_get("/openapi.json").json
    assert spec["security"] == [{"bearer": []}, {"apiKey": []}]
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert spec["paths"][path]["get"]["security"] == []


def _validator(spec: dict, name: str) -> Draft202012Validator:
    resource = Resource(contents=spec, specification=DRAFT202012)
    registry = Registry().with_resource("urn:spec", resource)
    return Draft202012Validator({"$ref": f"urn:spec#/components/schemas/{name}"}, registry=registry)
