"""``GET /workers``: the live worker processes, from their heartbeats, over real HTTP."""

from __future__ import annotations

import re
from pathlib import Path

import requests
from conftest import WorkerProcess, wait_until

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _workers(base: str) -> list[dict[str, object]]:
    reply = requests.get(base + "/workers", timeout=5)
    assert reply.status_code == 200
    return list(reply.json()["items"])


def test_workers_lists_each_live_worker_process_with_its_heartbeat(http_api, worker):
    items = wait_until(
        lambda: [w for w in _workers(http_api) if w["kind"] == "worker"] or None,
        message="a live worker",
    )
    for item in items:
        assert set(item) == {"id", "kind", "host", "pid", "queues", "inFlight", "lastHeartbeat"}
        assert isinstance(item["pid"], int) and item["pid"] > 0
        assert item["host"] and isinstance(item["queues"], list) and "default" in item["queues"]
        assert isinstance(item["inFlight"], int) and item["inFlight"] >= 0
        assert RFC3339_MS.match(str(item["lastHeartbeat"]))
    assert len({i["id"] for i in items}) == len(items)


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def test_a_started_worker_joins_the_list_and_leaves_it_when_stopped(
    http_api, worker, env, tmp_path
):
    extra = WorkerProcess(env, tmp_path / "extra.log", "--processes", "1", "--threads", "1")
    extra.start()
    assert extra.process is not None
    try:
        joined = wait_until(
            lambda: [
                w
                for w in _workers(http_api)
                if _descends_from(int(str(w["pid"])), extra.process.pid)
            ],
            message="the new worker",
        )
        assert len(joined) == 1 and joined[0]["kind"] == "worker"
    finally:
        extra.stop()
    wait_until(
        lambda: joined[0]["id"] not in {w["id"] for w in _workers(http_api)},
        message="the worker to leave",
    )
