"""Settings read from the environment: durations, booleans, and the rules between them."""

from __future__ import annotations

import pytest

from jobcore.errors import ConfigurationError
from jobcore.jobs import new_job_id
from jobcore.settings import Settings, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("30s", 30), ("5m", 300), ("24h", 86400), ("7d", 604800), ("12", 12)],
)
def test_durations_take_units_or_bare_seconds(text, seconds):
    assert parse_duration(text) == seconds


def test_a_bad_value_names_its_variable():
    with pytest.raises(ConfigurationError, match="JOBCORE_OWNER_TTL"):
        Settings.from_env({"JOBCORE_OWNER_TTL": "soon"})


def test_retention_shorter_than_the_idempotency_window_is_refused():
    with pytest.raises(ConfigurationError, match="JOBCORE_RETENTION"):
        Settings.from_env({"JOBCORE_RETENTION": "1h", "JOBCORE_IDEMPOTENCY_WINDOW": "24h"})


def test_booleans_accept_true_and_false():
    assert Settings.from_env({"JOBCORE_REQUIRE_IDEMPOTENCY_KEY": "true"}).require_idempotency_key
    with pytest.raises(ConfigurationError):
        Settings.from_env({"JOBCORE_REQUIRE_IDEMPOTENCY_KEY": "maybe"})


def test_job_ids_never_start_with_an_option_character():
    assert all(new_job_id()[0].isalnum() for _ in range(2000))
