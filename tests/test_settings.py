"""Settings read from the environment: durations, booleans, and the rules between them."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobcore.errors import ConfigurationError
from jobcore.jobs import new_job_id
from jobcore.settings import ENV, Settings, declarations, env_example, parse_duration, readme_table


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("30s", 30), ("5m", 300), ("24h", 86400), ("7d", 604800), ("12", 12)],
)
def test_durations_take_units_or_bare_seconds(text, seconds):
    assert parse_duration(text) == seconds


def test_a_bad_value_names_its_variable():
    with pytest.raises(ConfigurationError, match="JOBCORE_OWNER_TTL"):
        Settings.from_env({"JOBCORE_OWNER_TTL": "soon"})


def test_an_owner_ttl_a_heartbeat_could_miss_is_refused():
    with pytest.raises(ConfigurationError, match="more than twice JOBCORE_HEARTBEAT_INTERVAL"):
        Settings.from_env({"JOBCORE_OWNER_TTL": "5s", "JOBCORE_HEARTBEAT_INTERVAL": "30s"})


def test_retention_shorter_than_the_idempotency_window_is_refused():
    with pytest.raises(ConfigurationError, match="JOBCORE_RETENTION"):
        Settings.from_env({"JOBCORE_RETENTION": "1h", "JOBCORE_IDEMPOTENCY_WINDOW": "24h"})


def test_booleans_accept_true_and_false():
    assert Settings.from_env({"JOBCORE_REQUIRE_IDEMPOTENCY_KEY": "true"}).require_idempotency_key
    with pytest.raises(ConfigurationError):
        Settings.from_env({"JOBCORE_REQUIRE_IDEMPOTENCY_KEY": "maybe"})


def test_job_ids_never_start_with_an_option_character():
    assert all(new_job_id()[0].isalnum() for _ in range(2000))


# --- each setting declared once -------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def test_every_field_of_the_settings_is_declared():
    from dataclasses import fields

    declared = set(declarations())
    # redis_url_source says where redis_url came from; it is read from nothing.
    assert {f.name for f in fields(Settings)} - declared == {"redis_url_source"}
    assert set(ENV) == declared and len(set(ENV.values())) == len(ENV)


def test_the_readme_configuration_table_is_the_declarations():
    assert readme_table() in (ROOT / "README.md").read_text()


def test_env_example_is_the_declarations():
    assert (ROOT / ".env.example").read_text() == env_example()


def test_every_declared_bound_is_enforced():
    for declaration in declarations().values():
        if declaration.minimum is not None and declaration.minimum > 0:
            with pytest.raises(ConfigurationError, match=declaration.env):
                Settings.from_env({declaration.env: declaration.show(declaration.minimum / 2)})
        if declaration.maximum is not None:
            with pytest.raises(ConfigurationError, match=declaration.env):
                Settings.from_env({declaration.env: declaration.show(declaration.maximum * 2)})


def test_a_default_reads_back_as_itself():
    for name, declaration in declarations().items():
        if not declaration.secret:
            value = getattr(Settings(), name)
            assert declaration.parse(declaration.show(value)) == value, name
