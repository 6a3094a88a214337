"""``jobcore-stack`` (``make run``): Redis, SMTP sink, API, worker and scheduler as one group.

Redis comes from ``REDIS_URL``; without it an embedded ``redis-server`` runs with its data
under ``var/redis`` and its URL written to ``var/redis.url`` for other commands, supervised
like the other services: if it dies it is restarted on the same port from the same data
(its AOF), and the API and workers reconnect by themselves. Without ``SMTP_URL`` an SMTP
sink on loopback logs each message it receives. On Ctrl-C the services stop in reverse
order — workers first, Redis last.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from jobcore.settings import ENV, REDIS_URL_FILE, Settings
from jobcore.startup import refuse_to_start_on_configuration_errors
from jobcore_devstack.redis_server import RedisServer, describe_redis_server, free_port
from jobcore_devstack.smtp_sink import ReceivedMail, SmtpSink
from jobcore_devstack.stack_lock import StackLock
from jobcore_devstack.supervisor import STOP_TIMEOUT, Service, Supervisor, say

#: Port of the SMTP sink when it is free (a free one is picked otherwise).
SMTP_SINK_PORT = 1025


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _log_mail(mail: ReceivedMail) -> None:
    say(
        "smtp-sink",
        f"received mail for {', '.join(mail.recipients)}: "
        f"{mail.message['Subject']!r} Message-ID {mail.message['Message-ID']} "
        f"job {mail.job_id}",
    )


class EmbeddedRedis(Service):
    """The embedded ``redis-server`` as a supervised service: started first, stopped last,
    and restarted from its data directory (same port, same AOF) when it dies."""

    def __init__(self, server: RedisServer, env: dict[str, str]) -> None:
        super().__init__("redis", [], env, stops_last=True)
        self.server = server

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.restart_at = None
        try:
            self.server.start()
        except RuntimeError as exc:
            # Counted as a death on the supervisor's next look (it gives up after five).
            say(self.name, f"could not start: {exc}", self.color)
        self.process = self.server.process
        if self.alive():
            assert self.process is not None
            say(self.name, f"started (pid {self.process.pid}) on {self.server.url}", self.color)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.alive():
            self.server.stop()
            say(self.name, "stopped", self.color)


def main() -> None:
    os.environ.setdefault("TZ", "UTC")
    with refuse_to_start_on_configuration_errors("stack"):
        settings = Settings.from_env({k: v for k, v in os.environ.items() if k != "REDIS_URL"})
        lock = StackLock(Path(settings.var_dir)).acquire()
    try:
        status = run_stack(settings)
    finally:
        lock.release()
    sys.exit(status)


def run_stack(settings: Settings) -> int:
    """Start every service, supervise them until Ctrl-C; the exit status."""
    var_dir = Path(settings.var_dir)
    url_file = var_dir / REDIS_URL_FILE
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    supervisor = Supervisor()
    redis_server = None
    if os.environ.get("REDIS_URL"):
        say("stack", f"using Redis at {os.environ['REDIS_URL']}")
    else:
        redis_server = RedisServer(var_dir / "redis")
        url_file.write_text(redis_server.url + "\n")
        env["REDIS_URL"] = redis_server.url
        say(
            "redis",
            f"embedded {describe_redis_server()} on {redis_server.url} "
            f"(AOF in {var_dir / 'redis'}); URL written to {url_file}",
        )
        supervisor.add(EmbeddedRedis(redis_server, env))

    sink = None
    if not os.environ.get("SMTP_URL"):
        try:
            sink = SmtpSink(SMTP_SINK_PORT, on_message=_log_mail).start()
        except OSError:
            sink = SmtpSink(free_port(), on_message=_log_mail).start()
        env[ENV["smtp_url"]] = sink.url
        say("smtp-sink", f"SMTP sink listening on {sink.url}")

    supervisor.add(Service("api", [_script("jobcore-api")], env))
    supervisor.add(Service("worker", [_script("jobcore-worker")], env))
    for extra in _optional_services(env):
        supervisor.add(extra)
    say("stack", f"API on http://{settings.api_host}:{settings.api_port} — Ctrl-C stops everything")
    try:
        return supervisor.run()
    finally:
        supervisor.stop_all()
        if sink:
            sink.stop()
        if redis_server:
            url_file.unlink(missing_ok=True)


def _optional_services(env: dict[str, str]) -> list[Service]:
    scheduler = Path(_script("jobcore-scheduler"))
    return [Service("scheduler", [str(scheduler)], env)] if scheduler.exists() else []


if __name__ == "__main__":
    main()
