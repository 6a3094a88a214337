"""The store's Lua scripts and what they write: named slots, known key prefixes, and a
prepared message that is exactly the one Dramatiq's broker would have enqueued."""

from __future__ import annotations

import re
import uuid
from typing import Any
from unittest import mock

import dramatiq
import pytest
import redis
from dramatiq.middleware import Middleware

from jobcore.broker import (
    MessageSender,
    build_broker,
    encode_message,
    job_message,
    random_uuid_text,
)
from jobcore.settings import Settings
from jobcore.store import keys, scripts

LUA_FILES = sorted(p for p in scripts.LUA_DIR.glob("*.lua") if not p.name.startswith("_"))
#: A Lua string literal (single or double quoted).
STRING = re.compile(r"'([^'\\\n]*)'|\"([^\"\\\n]*)\"")


def _code(text: str) -> str:
    """The Lua without its comments."""
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


@pytest.mark.parametrize("path", LUA_FILES, ids=lambda p: p.name)
def test_every_script_names_its_slots_in_its_header(path):
    text = path.read_text()
    key_names, arg_names, rest = scripts.parse_header(text)
    assert key_names or arg_names or rest, f"{path.name} declares no KEYS or ARGV"
    # The body reads its slots by name only: the loader binds them from the header.
    assert not re.search(r"\b(KEYS|ARGV)\[", _code(text)), f"{path.name} indexes a slot"
    assert path.stem in scripts.ALL


@pytest.mark.parametrize(
    "path", [*LUA_FILES, scripts.LUA_DIR / "_records.lua"], ids=lambda p: p.name
)
def test_no_script_spells_a_key_prefix_the_keys_module_lacks(path):
    for match in STRING.finditer(_code(path.read_text())):
        literal = match.group(1) or match.group(2) or ""
        if re.match(r"^[a-z_]+:", literal):
            assert literal.startswith(keys.KNOWN_PREFIXES), f"{path.name} spells {literal!r}"
            pytest.fail(f"{path.name} spells the key {literal!r}: build it in keys.lua_prelude")


def test_a_call_must_name_every_slot():
    with pytest.raises(TypeError, match="takes keys"):
        scripts.PROGRESS.call(keys={}, args={"worker_id": "w", "progress": 1})
    with pytest.raises(TypeError, match="takes keys"):
        scripts.PROGRESS.call(keys={"job": "k"}, args={"worker_id": "w", "progress": 1, "extra": 2})


def test_the_generated_prelude_spells_every_prefix_the_scripts_use():
    prelude = scripts.prelude()
    assert keys.PREFIX + "job:" in prelude and keys.PREFIX + "idx:state:" in prelude
    for name in ("STATE", "OUTCOME", "FAILURE", "FAILURE_OF_OUTCOME", "TERMINAL"):
        assert f"local {name} = " in prelude


def test_a_prepared_message_is_the_message_dramatiqs_broker_would_enqueue(redis_server):
    settings = Settings(redis_url=redis_server.url)
    broker = build_broker(settings)
    client = redis.Redis.from_url(redis_server.url)
    fixed = uuid.UUID("00000000-0000-4000-8000-000000000001")
    prepared_queue, enqueued_queue = "prepared-test", "enqueued-test"
    traceparent = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    with mock.patch("jobcore.broker.random_uuid_text", return_value=str(fixed)):
        prepared = MessageSender(broker).prepare(
            "job-1",
            "dummy",
            prepared_queue,
            3,
            traceparent=traceparent,
        )
    assert prepared.message is None, "no middleware listens: no message object is built"
    ready = prepared.ready
    assert (ready.queue_key, ready.messages_key) == (
        keys.ready_queue(prepared_queue),
        keys.messages(prepared_queue),
    )
    # Dramatiq's own enqueue of the same message, with its random id fixed to the same value.
    same = job_message("job-1", "dummy", enqueued_queue, 3, traceparent=traceparent)
    with mock.patch("dramatiq.brokers.redis.uuid4", return_value=fixed):
        broker.enqueue(same)
    assert client.lrange(keys.ready_queue(enqueued_queue), 0, -1) == [str(fixed).encode()]
    written = client.hget(keys.messages(enqueued_queue), str(fixed))
    mine = dramatiq.Message.decode(ready.body)
    theirs = dramatiq.Message.decode(written)
    assert mine.asdict() | {"queue_name": "q", "message_timestamp": 0} == theirs.asdict() | {
        "queue_name": "q",
        "message_timestamp": 0,
    }
    assert ready.message_id == str(fixed) == theirs.options["redis_message_id"]


def test_a_prepared_message_id_is_a_random_version_4_uuid_as_dramatiq_writes_it():
    made = {random_uuid_text() for _ in range(1000)}
    assert len(made) == 1000
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize("traceparent", ["", "00-" + "1" * 32 + "-" + "2" * 16 + "-01"])
def test_an_encoded_job_message_is_dramatiqs_encoding_byte_for_byte(traceparent):
    message = job_message("job-1", "dummy", "default", 2, traceparent=traceparent)
    message = message.copy(options={"redis_message_id": "r-1"})
    assert message.encode() == encode_message(
        "job-1", "dummy", "default", message.options, message.message_timestamp
    )


def test_middleware_listening_for_enqueues_sees_each_prepared_message(redis_server):
    seen: list[tuple[str, str]] = []

    class Listening(Middleware):
        def before_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
            seen.append(("before", message.message_id))
            message.options["added"] = "by middleware"

        def after_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
            seen.append(("after", message.message_id))

    broker = build_broker(Settings(redis_url=redis_server.url))
    broker.add_middleware(Listening())
    sender = MessageSender(broker)
    prepared = sender.prepare("job-2", "dummy", "default", 1)
    sender.prepared_sent(prepared)
    assert seen == [("before", "job-2"), ("after", "job-2")]
    assert dramatiq.Message.decode(prepared.ready.body).options["added"] == "by middleware"
