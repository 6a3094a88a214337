"""An outage is loud once, then quiet (``jobcore.outages``): one line when it starts, at most
one every 30 s with the count of failed tries, one when it ends with its duration; tries
back off to a bounded pause."""

from __future__ import annotations

import threading

import pytest
from structlog.testing import capture_logs

from jobcore.errors import StoreUnavailable
from jobcore.outages import LONGEST_PAUSE, Backoff, StoreOutage, store_up


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_is_one_line_at_its_start_one_per_30_s_and_one_at_its_end():
    clock = FakeClock()
    outage = StoreOutage("test loop", clock=clock)
    with capture_logs() as lines:
        for _ in range(40 * 4):  # 40 s of tries every 250 ms
            outage.failed(StoreUnavailable("Redis is unreachable"))
            clock.now += 0.25
        outage.succeeded()
        outage.succeeded()  # no outage: nothing to say
    events = [line["event"] for line in lines]
    assert events == ["store unavailable", "store still unavailable", "store available again"]
    assert lines[1]["failed_tries"] == 121 and lines[1]["seconds"] == 30.0
    assert lines[2]["failed_tries"] == 160 and lines[2]["seconds"] == 40.0
    assert all(line["loop"] == "test loop" for line in lines)


def test_threads_sharing_an_outage_log_it_once():
    outage = StoreOutage("shared")
    with capture_logs() as lines:
        threads = [
            threading.Thread(target=lambda: outage.failed(StoreUnavailable("down")))
            for _ in range(16)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outage.succeeded()
    assert [line["event"] for line in lines] == ["store unavailable", "store available again"]
    assert lines[1]["failed_tries"] == 16


def test_tries_back_off_doubling_to_a_bounded_pause():
    backoff = Backoff()
    pauses = [backoff.next() for _ in range(8)]
    assert pauses[:5] == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert max(pauses) == LONGEST_PAUSE == 2.0
    backoff.reset()
    assert backoff.next() == 0.1


def test_wait_out_retries_until_the_store_answers_and_reports_the_process_down_meanwhile():
    outage = StoreOutage("waiting")
    tries: list[bool] = []
    seen_down: list[bool] = []

    def action() -> str:
        tries.append(True)
        if len(tries) < 3:
            raise StoreUnavailable("down")
        seen_down.append(not store_up())
        return "done"

    assert outage.wait_out(action, backoff=Backoff(first=0.01, longest=0.02)) == "done"
    assert len(tries) == 3 and seen_down == [True] and store_up()


def test_wait_out_gives_up_when_asked_to_stop():
    stop = threading.Event()
    stop.set()
    outage = StoreOutage("stopping")

    def action() -> None:
        raise StoreUnavailable("down")

    with pytest.raises(StoreUnavailable):
        outage.wait_out(action, stop=stop)
    outage.succeeded()
