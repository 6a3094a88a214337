"""``csv-export`` writes RFC 4180: CRLF line ends, quoting as needed, columns as submitted."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from conftest import submit, wait_for_state

from jobcore.jobs import new_job_id
from jobcore.store import keys


def _written(runtime, api, payload) -> bytes:
    job_id = submit(api, {"type": "csv-export", "payload": payload})["jobId"]
    record = wait_for_state(runtime, job_id, "completed")
    return Path(record.result).read_bytes()


def test_fields_with_cr_lf_commas_and_quotes_are_quoted_and_lines_end_in_crlf(api, runtime, worker):
    payload = {"bare cr": "a\rb", "lf": "c\nd", "comma": "e,f", "quote": 'g"h', "plain": "i"}
    data = _written(runtime, api, payload)
    assert data == (
        b'key,value\r\nbare cr,"a\rb"\r\nlf,"c\nd"\r\ncomma,"e,f"\r\nquote,"g""h"\r\nplain,i\r\n'
    )
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows[1:] == [[k, v] for k, v in payload.items()]


def test_columns_keep_the_order_they_were_submitted_in(api, runtime, worker):
    assert _written(runtime, api, {"zeta": 1, "alpha": 2}) == b"key,value\r\nzeta,1\r\nalpha,2\r\n"
    rows = {"rows": [{"zeta": 1, "alpha": 2}, {"alpha": 3, "mid": 4}]}
    assert _written(runtime, api, rows) == b"zeta,alpha,mid\r\n1,2,\r\n,3,4\r\n"


def test_the_record_keeps_the_payload_in_submitted_order(api, runtime):
    job_id = submit(api, {"type": "csv-export", "payload": {"zeta": 1, "alpha": 2}})["jobId"]
    assert list(json.loads(runtime.client.hget(keys.job(job_id), "payload"))) == ["zeta", "alpha"]
    assert api.simulate_get(f"/jobs/{job_id}").text.index('"zeta"') < api.simulate_get(
        f"/jobs/{job_id}"
    ).text.index('"alpha"')


def test_no_rows_write_an_empty_file(api, runtime, worker):
    assert _written(runtime, api, {"rows": []}) == b""


def test_the_same_payload_in_another_key_order_is_the_same_idempotent_request(api):
    key = "csv-order-" + new_job_id()
    first = submit(api, {"type": "csv-export", "payload": {"a": 1, "b": 2}, "idempotencyKey": key})
    again = submit(api, {"type": "csv-export", "payload": {"b": 2, "a": 1}, "idempotencyKey": key})
    assert again["jobId"] == first["jobId"]
