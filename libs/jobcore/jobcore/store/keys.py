"""Every Redis key Jobcore owns, and what it means. No other module spells a key.

Lua scripts receive these names from Python (see ``lua_key_helpers``), so the layout
lives here only. Dramatiq's own keys (``dramatiq:<queue>`` etc.) belong to the broker.
"""

from __future__ import annotations

#: Prefix of every Jobcore key.
PREFIX = "jobcore:"

#: Hash: one job record (fields read by ``records.JobRecord.from_hash``); its field
#: ``history`` holds the job's events, one JSON object per line, oldest first.
JOB = PREFIX + "job:{id}"
#: Hash: the job's guarded side effects, field = effect name, value = JSON reservation.
JOB_EFFECTS = PREFIX + "job:{id}:effects"
#: Counter: a monotonic sequence number per accepted job; index scores, newest first.
SEQUENCE = PREFIX + "seq"
#: Sorted set of job ids in one state and of one type, scored by sequence number: the only
#: index a job is in. Listings by state alone, type alone or neither merge these
#: (``store_scripts.LIST``), retention walks the terminal ones oldest first
#: (``retention.py``): one index entry per job keeps a finished job's footprint small.
INDEX_STATE_TYPE = PREFIX + "idx:state:{state}:type:{type}"
#: Set of every job type ever accepted: the per-type indexes a merge reads.
TYPES = PREFIX + "types"
#: Sorted set: jobs whose message must reach a ready queue by the score (epoch ms).
#: Entries leave when the message is confirmed ready or the job starts; the sweeper
#: re-enqueues entries overdue by the sweep margin.
DUE = PREFIX + "due"
#: String ``<jobId> <fingerprint>`` for one idempotency key (hashed), expiring with the window.
IDEMPOTENCY = PREFIX + "idem:{namespace}:{digest}"
#: Hash: one live worker or scheduler process (id, kind, host, pid, queues, inFlight,
#: heartbeat); expires after the owner TTL.
WORKER = PREFIX + "worker:{id}"
#: Sorted set of live process ids scored by last heartbeat (epoch ms).
WORKERS = PREFIX + "workers"
#: String: a named lease (sweepers), value = holder id, expiring.
LEASE = PREFIX + "lease:{name}"
#: Hash: a schedule's latest fire time (``fireTime``, epoch ms) and the job it made (``jobId``).
SCHEDULE_LAST_RUN = PREFIX + "schedule:{name}:last"


def job(job_id: str) -> str:
    return JOB.format(id=job_id)


def job_effects(job_id: str) -> str:
    return JOB_EFFECTS.format(id=job_id)


def index_state_type(state: str, job_type: str) -> str:
    return INDEX_STATE_TYPE.format(state=state, type=job_type)


def idempotency(namespace: str, digest: str) -> str:
    return IDEMPOTENCY.format(namespace=namespace, digest=digest)


def worker(worker_id: str) -> str:
    return WORKER.format(id=worker_id)


def lease(name: str) -> str:
    return LEASE.format(name=name)


def schedule_last_run(name: str) -> str:
    return SCHEDULE_LAST_RUN.format(name=name)


def lua_key_helpers() -> str:
    """Lua functions that build the per-job and index key names from the templates above."""

    def lua_template(template: str, *params: str) -> str:
        parts = template
        for param in params:
            parts = parts.replace("{" + param + "}", '" .. ' + param + ' .. "')
        return '"' + parts + '"'

    functions = {
        "k_job(id)": lua_template(JOB, "id"),
        "k_effects(id)": lua_template(JOB_EFFECTS, "id"),
        "k_state_type(state, type)": lua_template(INDEX_STATE_TYPE, "state", "type"),
        "k_worker(id)": lua_template(WORKER, "id"),
    }
    lines = [f"local function {sig} return {body} end" for sig, body in functions.items()]
    lines += [
        f'local K_SEQ = "{SEQUENCE}"',
        f'local K_TYPES = "{TYPES}"',
        f'local K_DUE = "{DUE}"',
    ]
    return "\n".join(lines) + "\n"
