"""A tally writes what the metrics would have counted, once per interval."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Histogram

from jobcore.telemetry.metric_tally import Tally

BUCKETS = (0.001, 0.01, 0.1, 1.0)
#: Below, on and above each bound, and beyond the last one.
VALUES = [0.0, 0.0005, 0.001, 0.002, 0.01, 0.05, 0.1, 0.5, 1.0, 3.0, 0.001, 7.5]


def _metrics() -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry()
    counter = Counter("requests", "", ["route"], registry=registry)
    histogram = Histogram("latency", "", ["route"], buckets=BUCKETS, registry=registry)
    return registry, counter, histogram


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_a_flush_writes_what_direct_calls_would_have_written():
    direct, counter, histogram = _metrics()
    tallied, tally_counter, tally_histogram = _metrics()
    tally = Tally(interval=60)

    async def count() -> float:
        for value in VALUES:
            counter.labels("/jobs").inc()
            histogram.labels("/jobs").observe(value)
            tally.count(tally_counter.labels("/jobs"))
            tally.observe(tally_histogram.labels("/jobs"), value)
        tally.count(tally_counter.labels("/jobs"), 2.5)
        counter.labels("/jobs").inc(2.5)
        return _samples(tallied)[("requests_total", "")]

    assert asyncio.run(count()) == 0, "nothing written before the flush"
    tally.flush()
    assert _samples(tallied) == _samples(direct)
    tally.flush()  # nothing pending: nothing more
    assert _samples(tallied) == _samples(direct)


def test_on_an_event_loop_counts_are_written_within_the_interval():
    registry, counter, histogram = _metrics()
    tally = Tally(interval=0.05)

    async def count_then_wait() -> tuple[float, float]:
        tally.count(counter.labels("/jobs"))
        tally.observe(histogram.labels("/jobs"), 0.02)
        before = _samples(registry)[("requests_total", "")]
        await asyncio.sleep(0.2)
        return before, _samples(registry)[("requests_total", "")]

    assert asyncio.run(count_then_wait()) == (0, 1)
    assert _samples(registry)[("latency_bucket", "0.1")] == 1


def test_without_an_event_loop_a_count_is_written_at_once():
    registry, counter, _ = _metrics()
    Tally().count(counter.labels("/jobs"))
    assert _samples(registry)[("requests_total", "")] == 1
