"""Schedules: a tick becomes one job per fire time, whoever ticks and how often; retention pruning.

The tick-to-job logic runs in-process with an injected clock (the tick's ``now``), on a
Redis database of its own so that last runs and pruning never touch other tests' jobs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import dramatiq
import pytest
from conftest import start_job, submit, wait_for_state

from jobcore.clock import now_ms
from jobcore.errors import ConfigurationError
from jobcore.intake.submission import SubmissionParser
from jobcore.model.states import ALL_STATES, AttemptOutcome
from jobcore.runtime import Runtime, build_runtime
from jobcore.scheduling.cron import Cron
from jobcore.scheduling.schedules import (
    CLEANUP,
    HEARTBEAT,
    Schedule,
    ScheduleBook,
    fire_time,
    idempotency_key,
    last_run_view,
)
from jobcore.store import keys
from jobcore.store.retention import RetentionPruner

#: The Redis database these tests own (the shared fixtures use database 0).
OWN_DB = 7
MINUTE = datetime(2026, 1, 18, 10, 12, tzinfo=UTC)
WORKER_ID = "test-worker"


def _runtime_on_own_db(settings, runtime) -> Runtime:
    url = settings.redis_url.rsplit("/", 1)[0] + f"/{OWN_DB}"
    own = build_runtime(replace(settings, redis_url=url), job_types=runtime.job_types)
    # build_runtime sets Dramatiq's global broker; leave the shared one in place.
    dramatiq.set_broker(runtime.broker)
    return own


@pytest.fixture(scope="module")
def runtimes(settings, runtime) -> tuple[Runtime, Runtime]:
    """Two runtimes (two connections, as two scheduler processes have) on the same database."""
    return _runtime_on_own_db(settings, runtime), _runtime_on_own_db(settings, runtime)


@pytest.fixture()
def own(runtimes) -> Iterator[Runtime]:
    runtimes[0].client.flushdb()
    yield runtimes[0]
    runtimes[0].client.flushdb()


def _jobs_of(runtime: Runtime, job_type: str) -> list[str]:
    client = runtime.client
    return [j for s in ALL_STATES for j in client.zrange(keys.index_state_type(s, job_type), 0, -1)]


# --- the bucket: a pure function of now ---------------------------------------------------


def test_a_tick_belongs_to_the_minute_it_falls_in():
    for late in (timedelta(0), timedelta(seconds=0.4), timedelta(seconds=42, milliseconds=7)):
        assert fire_time(HEARTBEAT, MINUTE + late) == MINUTE


def test_the_fire_time_is_in_utc_whatever_zone_the_tick_carries():
    elsewhere = (MINUTE + timedelta(seconds=5)).astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert fire_time(HEARTBEAT, elsewhere) == MINUTE
    assert fire_time(HEARTBEAT, elsewhere).tzinfo == UTC


def test_a_schedule_fires_only_at_the_minutes_its_cron_names():
    assert fire_time(CLEANUP, MINUTE.replace(minute=15, second=3)) == MINUTE.replace(minute=15)
    assert fire_time(CLEANUP, MINUTE.replace(minute=17)) is None


def test_the_idempotency_key_is_the_schedule_name_and_its_nominal_fire_time():
    assert (
        idempotency_key(HEARTBEAT, fire_time(HEARTBEAT, MINUTE + timedelta(seconds=9)))
        == "schedule:heartbeat:2026-01-18T10:12:00.000Z"
    )


def test_cron_matches_either_day_field_when_both_are_restricted():
    cron = Cron.parse("0 9 1 * mon")  # the 1st of the month, and every Monday
    assert cron.matches(datetime(2026, 1, 1, 9, 0, tzinfo=UTC))  # a Thursday, the 1st
    assert cron.matches(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))  # a Monday
    assert not cron.matches(datetime(2026, 1, 6, 9, 0, tzinfo=UTC))


def test_cron_sunday_is_0_or_7():
    sunday = datetime(2026, 1, 18, 0, 0, tzinfo=UTC)
    assert Cron.parse("0 0 * * 0").matches(sunday)
    assert Cron.parse("0 0 * * 7").matches(sunday)
    assert not Cron.parse("0 0 * * 1-6").matches(sunday)


def test_cron_next_run_crosses_hours_months_and_leap_days():
    assert Cron.parse("*/5 * * * *").next_after(MINUTE) == MINUTE.replace(minute=15)
    assert Cron.parse("0 0 1 * *").next_after(MINUTE) == datetime(2026, 2, 1, tzinfo=UTC)
    assert Cron.parse("0 0 29 2 *").next_after(MINUTE) == datetime(2028, 2, 29, tzinfo=UTC)
    assert Cron.parse("@hourly").next_after(MINUTE) == MINUTE.replace(minute=0, hour=11)


@pytest.mark.parametrize(
    "expression",
    [
        "* * * *",
        "60 * * * *",
        "* 24 * * *",
        "*/0 * * * *",
        "x * * * *",
        "0 0 31 2 *",
        "5-1 * * * *",
    ],
)
def test_cron_refuses_expressions_that_are_wrong_or_never_match(expression):
    with pytest.raises(ValueError):
        Cron.parse(expression)


def test_a_schedule_whose_job_could_never_be_submitted_refuses_to_start(own):
    with pytest.raises(ConfigurationError, match="nope"):
        ScheduleBook(own, [Schedule("nope", "* * * * *", "no-such-type")])
    with pytest.raises(ConfigurationError, match="failTimes"):
        ScheduleBook(own, [Schedule("bad", "* * * * *", "dummy", {"failTimes": -1})])


# --- ticks in Redis ---------------------------------------------------------------------


def test_duplicate_ticks_of_one_fire_time_yield_one_job(own):
    book = ScheduleBook(own, [HEARTBEAT])
    first = book.tick(MINUTE + timedelta(seconds=0.2))
    again = book.tick(MINUTE + timedelta(seconds=0.3))
    assert [f.accepted.duplicate for f in first + again] == [False, True]
    assert first[0].accepted.job_id == again[0].accepted.job_id
    assert _jobs_of(own, "dummy") == [first[0].accepted.job_id]


def test_a_restart_inside_the_minute_yields_the_same_job(own):
    before = ScheduleBook(own, [HEARTBEAT]).tick(MINUTE)[0]
    # A new scheduler process (a new book) starts 40 s into the same minute and ticks it.
    after = ScheduleBook(own, [HEARTBEAT]).tick(MINUTE + timedelta(seconds=40))[0]
    assert after.accepted.job_id == before.accepted.job_id and after.accepted.duplicate
    assert len(_jobs_of(own, "dummy")) == 1


def test_two_schedulers_ticking_at_once_yield_one_job_per_fire_time(runtimes, own):
    books = [ScheduleBook(rt, [HEARTBEAT]) for rt in runtimes]
    minutes = [MINUTE + timedelta(minutes=i) for i in range(3)]
    fired: list[tuple[datetime, str]] = []
    start = threading.Barrier(len(books) * 2)

    def scheduler(book: ScheduleBook) -> None:
        start.wait()
        for minute in minutes:
            for fired_job in book.tick(minute + timedelta(milliseconds=300)):
                fired.append((fired_job.fire_time, fired_job.accepted.job_id))

    threads = [threading.Thread(target=scheduler, args=(b,)) for b in books for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(fired) == len(minutes) * len(threads)
    job_per_minute = {minute: {job for at, job in fired if at == minute} for minute in minutes}
    assert all(len(jobs) == 1 for jobs in job_per_minute.values()), job_per_minute
    assert len(set().union(*job_per_minute.values())) == len(minutes)
    assert len(_jobs_of(own, "dummy")) == len(minutes)


def test_each_fire_time_of_each_schedule_gets_its_own_job(own):
    book = ScheduleBook(own, [HEARTBEAT, CLEANUP])
    at_ten = book.tick(MINUTE.replace(minute=10))
    at_eleven = book.tick(MINUTE.replace(minute=11))
    assert [f.schedule.name for f in at_ten] == ["heartbeat", "cleanup"]
    assert [f.schedule.name for f in at_eleven] == ["heartbeat"]
    ids = {f.accepted.job_id for f in at_ten + at_eleven}
    assert len(ids) == 3
    record = own.store.get(at_ten[0].accepted.job_id)
    assert record.type == "dummy" and record.payload == {"echo": "heartbeat"}


def test_schedule_keys_live_apart_from_client_keys(own):
    fired = ScheduleBook(own, [HEARTBEAT]).tick(MINUTE)[0]
    parser = SubmissionParser(own.job_types)
    body = {
        "type": "dummy",
        "payload": {"echo": "heartbeat"},
        "idempotencyKey": idempotency_key(HEARTBEAT, MINUTE),
    }
    client = own.jobs.submit(parser.parse(body, now_ms=now_ms()))
    assert not client.duplicate and client.job_id != fired.accepted.job_id


def test_the_last_run_keeps_the_newest_fire_time_even_after_a_late_tick(own):
    book = ScheduleBook(own, [HEARTBEAT])
    newer = book.tick(MINUTE + timedelta(minutes=1))[0]
    book.tick(MINUTE + timedelta(seconds=59))  # the previous minute's tick, arriving late
    last = book.last_runs()["heartbeat"]
    assert last is not None
    assert (last.job_id, last.state) == (newer.accepted.job_id, "waiting")
    assert last_run_view(last)["fireTime"] == "2026-01-18T10:13:00.000Z"


def test_the_description_shows_next_run_and_last_run(own):
    book = ScheduleBook(own, [HEARTBEAT, CLEANUP])
    fired = book.tick(MINUTE)[0]
    items = {i["name"]: i for i in book.describe(MINUTE + timedelta(seconds=30))}
    assert items["heartbeat"]["nextRunAt"] == "2026-01-18T10:13:00.000Z"
    assert items["heartbeat"]["lastRun"] == {
        "fireTime": "2026-01-18T10:12:00.000Z",
        "jobId": fired.accepted.job_id,
        "state": "waiting",
    }
    assert items["cleanup"]["nextRunAt"] == "2026-01-18T10:15:00.000Z"
    assert items["cleanup"]["lastRun"] is None
    assert items["cleanup"]["cron"] == "*/5 * * * *" and items["cleanup"]["jobType"] == "cleanup"


# --- retention ----------------------------------------------------------------------------


def _finished_job(runtime: Runtime, state: str) -> str:
    parser = SubmissionParser(runtime.job_types)
    job_id = runtime.jobs.submit(parser.parse({"type": "dummy"}, now_ms=now_ms())).job_id
    if state == "cancelled":
        runtime.jobs.cancel(job_id)
        return job_id
    start_job(runtime, job_id, WORKER_ID)
    runtime.client.hset(keys.job_effects(job_id), "send", '{"status": "done"}')
    if state == "completed":
        assert runtime.store.finish(
            job_id, 1, WORKER_ID, AttemptOutcome.COMPLETED, result={"ok": True}, attempt=1
        ).recorded
    else:
        assert runtime.store.finish(
            job_id,
            1,
            WORKER_ID,
            AttemptOutcome.FAILED,
            error="boom",
            failed_reason="asked to",
            attempt=1,
        ).recorded
    return job_id


def _pending_job(runtime: Runtime) -> str:
    parser = SubmissionParser(runtime.job_types)
    return runtime.jobs.submit(parser.parse({"type": "dummy"}, now_ms=now_ms())).job_id


def _assert_indexes_consistent(runtime: Runtime) -> None:
    """Every index entry names a record in that state and type; counts add up."""
    client = runtime.client
    every = {job.id for job in runtime.store.list(None, None, 10_000, None).items}
    by_state: set[str] = set()
    for state in ALL_STATES:
        members = set(client.zrange(keys.index_state_type(state, "dummy"), 0, -1))
        assert members == set(runtime.store.ids_in(state, None, 10_000))
        for job_id in members:
            assert client.hget(keys.job(job_id), "state") == state
        by_state |= members
    assert by_state == every
    assert runtime.jobs.stats()["total"] == len(every)


def test_pruning_deletes_expired_records_whole_and_keeps_indexes_consistent(own):
    gone = [_finished_job(own, state) for state in ("completed", "cancelled", "completed")]
    pruner = RetentionPruner(own.executor, replace(own.settings, retention=60, failed_retention=60))
    report = pruner.prune(now=now_ms() + 61_000)
    assert report.pruned == 3 and report.complete
    for job_id in gone:
        assert not own.client.exists(keys.job(job_id), keys.job_effects(job_id))
    _assert_indexes_consistent(own)
    assert own.jobs.stats()["total"] == 0


def test_failed_jobs_stay_until_the_failed_retention(own):
    failed, completed = _finished_job(own, "failed"), _finished_job(own, "completed")
    settings = replace(own.settings, retention=60, failed_retention=3600)
    pruner = RetentionPruner(own.executor, settings)
    assert pruner.prune(now=now_ms() + 61_000).pruned == 1
    assert own.store.get(failed).state == "failed"
    assert not own.client.exists(keys.job(completed))
    assert pruner.prune(now=now_ms() + 3601_000).pruned == 1
    assert not own.client.exists(keys.job(failed), keys.job_effects(failed))
    _assert_indexes_consistent(own)


def test_records_inside_their_retention_and_pending_jobs_are_kept(own):
    finished = _finished_job(own, "completed")
    pending = _pending_job(own)
    pruner = RetentionPruner(own.executor, replace(own.settings, retention=60, failed_retention=60))
    assert pruner.prune(now=now_ms() + 30_000).pruned == 0
    assert pruner.prune(now=now_ms() + 10 * 86_400_000).pruned == 1
    assert own.store.get(pending).state == "waiting"
    assert not own.client.exists(keys.job(finished))
    _assert_indexes_consistent(own)


def test_pruning_walks_past_old_jobs_that_finished_late_in_bounded_batches(own):
    late = [_finished_job(own, "completed") for _ in range(5)]  # accepted first: walked first
    expired = [_finished_job(own, "completed") for _ in range(7)]
    for job_id in late:  # as if each had run for ten minutes
        own.client.hset(keys.job(job_id), "finishedAt", now_ms() + 600_000)
    pruner = RetentionPruner(own.executor, replace(own.settings, retention=60), batch=3)
    report = pruner.prune(now=now_ms() + 61_000)
    assert report.pruned == len(expired) and report.complete and report.batches >= 4
    assert [own.store.get(j).state for j in late] == ["completed"] * 5
    assert not any(own.client.exists(keys.job(j)) for j in expired)
    _assert_indexes_consistent(own)


def test_pruning_stops_at_the_first_job_accepted_after_the_horizon(own):
    first, second = _finished_job(own, "completed"), _finished_job(own, "completed")
    # Would be due by its finish time, but it was accepted after a job that is not: the walk
    # stops before it (one batch per terminal index), so old records are all it ever reads.
    own.client.hset(keys.job(second), "finishedAt", 0)
    pruner = RetentionPruner(own.executor, replace(own.settings, retention=60), batch=100)
    report = pruner.prune(now=now_ms() + 30_000)
    assert (report.pruned, report.batches, report.complete) == (0, 3, True)
    assert own.client.exists(keys.job(first), keys.job(second)) == 2


def test_pruning_stops_at_its_deadline_and_the_next_run_goes_on(own):
    for _ in range(5):
        _finished_job(own, "completed")
    pruner = RetentionPruner(own.executor, replace(own.settings, retention=60), batch=2)
    first = pruner.prune(now=now_ms() + 61_000, deadline=0)
    assert (first.pruned, first.batches, first.complete) == (2, 1, False)
    rest = pruner.prune(now=now_ms() + 61_000)
    assert rest.pruned == 3 and rest.complete
    _assert_indexes_consistent(own)


# --- with a worker -----------------------------------------------------------------------


def test_a_heartbeat_tick_yields_a_job_that_completes_and_shows_in_get_schedules(
    api, runtime, worker
):
    fired = ScheduleBook(runtime).tick(datetime.now(UTC))
    heartbeat = next(f for f in fired if f.schedule.name == "heartbeat")
    wait_for_state(runtime, heartbeat.accepted.job_id, "completed")
    items = {i["name"]: i for i in api.simulate_get("/schedules").json["items"]}
    assert items["heartbeat"]["lastRun"]["jobId"] == heartbeat.accepted.job_id
    assert items["heartbeat"]["lastRun"]["state"] == "completed"
    assert items["heartbeat"]["nextRunAt"] > items["heartbeat"]["lastRun"]["fireTime"]


def test_the_cleanup_job_runs_on_a_worker(api, runtime, worker):
    job_id = submit(api, {"type": "cleanup", "payload": {"batchSize": 50}})["jobId"]
    record = wait_for_state(runtime, job_id, "completed")
    assert record.result["complete"] is True and record.result["pruned"] >= 0
