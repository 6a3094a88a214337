"""The ``recovery`` part: an idle system and crashed workers, with the shipped settings.

- idle: submit→start of one job every ``idle_interval`` seconds, then the Redis commands
  per second of the same workers doing nothing (``bench.idle_latency``,
  ``bench.idle_commands``), Jobcore beside bare Dramatiq;
- crashes: how long a SIGKILLed worker process under its supervisor, then a whole lost
  worker host, leaves its job before it runs again (``bench.crash_recovery``); bare
  Dramatiq beside the lost host (it has no supervisor to restart a process).

Every measurement starts on an empty Redis, with its own workers, and records an error
instead of ending the run when something in it fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench import crash_recovery
from bench.config import BenchConfig
from bench.crash_recovery import BareSleeper, JobcoreSleeper, Sleeper
from bench.idle_commands import idle_commands
from bench.idle_latency import idle_latency, record_timings
from bench.processes import ProcessGroup, bare_workers, jobcore_workers
from bench.producers import BareProducer, JobcoreProducer
from bench.queue_phases import QueueBench, bare_timings
from jobcore.runtime import build_runtime
from jobcore.settings import Settings, declarations, default_of
from jobcore_devstack.redis_server import free_port

#: The settings recovery depends on, set explicitly to their shipped defaults (those that
#: exist in the Jobcore measured).
RECOVERY_SETTINGS = (
    "owner_ttl",
    "heartbeat_interval",
    "sweep_interval",
    "broker_heartbeat_timeout",
    "broker_maintenance_chance",
)
#: Seconds between the last timed job and the idle command count.
QUIET_SECONDS = 2.0
SYSTEMS = ("bare", "jobcore")


def shipped_defaults() -> dict[str, str]:
    """``RECOVERY_SETTINGS`` as environment variables holding their defaults."""
    found = declarations()
    return {
        found[name].env: found[name].show(default_of(name))
        for name in RECOVERY_SETTINGS
        if name in found
    }


def guarded(what: str, say: Callable[[str], None], measure: Callable[[], Any]) -> Any:
    """``measure()``, or ``{"error": ...}`` when it fails (a worker exited, a step timed out)."""
    try:
        return measure()
    except (RuntimeError, OSError, redis.RedisError) as error:
        say(f"{what}: failed: {error}")
        return {"error": str(error)}


class RecoveryBench:
    """The part's measurements on one ``redis-server``, with the run's environment."""

    def __init__(
        self, config: BenchConfig, env: dict[str, str], tmp: Path, run_id: str, say: Any
    ) -> None:
        self.config = config
        self.env = env | shipped_defaults()
        self.tmp = tmp / "recovery"
        self.tmp.mkdir(exist_ok=True)
        self.run_id = run_id
        self.say = say
        self.url = self.env["REDIS_URL"]
        self.client = redis.Redis.from_url(self.url, decode_responses=True)
        self.settings = Settings.from_env(self.env)

    def host_env(self, name: str) -> dict[str, str]:
        """A worker host of its own: its var directory and metrics port."""
        return self.env | {
            "JOBCORE_VAR_DIR": str(self.tmp / name / "var"),
            "JOBCORE_WORKER_METRICS_PORT": str(free_port()),
        }

    def host_starter(self, system: str, step: str) -> Callable[[str], ProcessGroup]:
        """Starts one worker host (one process) of ``system`` for ``step``."""

        def start(host: str) -> ProcessGroup:
            log = self.tmp / f"{step}-{system}-{host}.log"
            env = self.host_env(f"{step}-{system}-{host}")
            threads = self.config.threads
            if system == "bare":
                return bare_workers(env, 1, threads, log).start()
            # A killed process's job may go to its sibling under the same supervisor.
            processes = self.config.processes if step == "worker_killed" else 1
            return jobcore_workers(env, processes, threads, log).start()

        return start

    def sleeper(self, system: str) -> Sleeper:
        if system == "bare":
            return BareSleeper(self.url, self.client)
        return JobcoreSleeper(build_runtime(self.settings))

    # --- measurements ------------------------------------------------------------------

    def idle(self, system: str) -> dict[str, Any]:
        """Idle submit→start, then idle commands, on one set of warm workers."""
        self.client.flushall()
        config = self.config
        log = self.tmp / f"idle-{system}-workers.log"
        env = self.host_env(f"idle-{system}")
        producer: Any
        if system == "bare":
            producer = BareProducer(self.url)
            workers = bare_workers(env, config.processes, config.threads, log)
            timings = bare_timings(self.client)
        else:
            producer = JobcoreProducer(self.settings, f"{self.run_id}-idle")
            workers = jobcore_workers(env, config.processes, config.threads, log)
            timings = record_timings(producer.runtime.store)
        bench = QueueBench(
            producer, workers, self.client, self.tmp, config.processes, run_id=self.run_id
        )
        self.say(f"recovery: {producer.name}: submit→start, 1 job every {config.idle_interval:g} s")
        workers.start()
        try:
            latency = guarded(
                f"{system} idle latency",
                self.say,
                lambda: idle_latency(bench, config.idle_jobs, config.idle_interval, timings),
            )
            self.say(f"recovery: {producer.name}: idle commands for {config.idle_seconds:g} s")
            time.sleep(QUIET_SECONDS)
            commands = guarded(
                f"{system} idle commands",
                self.say,
                lambda: idle_commands(self.client, workers, config.idle_seconds),
            )
        finally:
            workers.stop()
        return {"latency": latency, "commands": commands}

    def crash(self, system: str, step: str) -> dict[str, Any]:
        """``step`` is ``worker_killed`` or ``host_lost`` (``bench.crash_recovery``)."""
        self.client.flushall()
        measure = (
            crash_recovery.worker_process_killed
            if step == "worker_killed"
            else crash_recovery.worker_host_lost
        )
        sleeper = self.sleeper(system)
        self.say(f"recovery: {sleeper.name}: {step.replace('_', ' ')}")
        result: dict[str, Any] = guarded(
            f"{system} {step}",
            self.say,
            lambda: measure(
                sleeper,
                self.host_starter(system, step),
                self.client,
                self.config.recovery_sleep,
                self.config.recovery_timeout,
            ),
        )
        if "recovered" in result:
            self.say(
                f"recovery: {sleeper.name}: {step.replace('_', ' ')}: "
                + (
                    f"running again after {result['seconds']:.1f} s"
                    if result["recovered"]
                    else f"not recovered in {result['timeout_s']:g} s"
                )
            )
        return result

    def run(self) -> dict[str, Any]:
        results: dict[str, Any] = {
            "settings": shipped_defaults(),
            "idle_latency": {},
            "idle_commands": {},
            "worker_killed": {},
            "host_lost": {},
        }
        for system in SYSTEMS:
            idle = self.idle(system)
            results["idle_latency"][system] = idle["latency"]
            results["idle_commands"][system] = idle["commands"]
        # Bare Dramatiq has no supervisor: a killed process is not restarted.
        results["worker_killed"]["jobcore"] = self.crash("jobcore", "worker_killed")
        for system in SYSTEMS:
            results["host_lost"][system] = self.crash(system, "host_lost")
        return results


def recovery_bench(
    config: BenchConfig, env: dict[str, str], tmp: Path, run_id: str, say: Any
) -> dict[str, Any]:
    """The part's results for one run (see the module docstring)."""
    return RecoveryBench(config, env, tmp, run_id, say).run()
