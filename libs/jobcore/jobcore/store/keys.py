"""Every Redis key Jobcore writes, and what it means: Jobcore's own and Dramatiq's. No other
module spells a key.

Lua scripts get the keys their caller knows in ``KEYS``; keys a script derives from what it
reads (a record's state-and-type index, its owner's presence key, a listing's indexes) come
from ``lua_prelude``, generated from the templates below, so the layout lives here only.
"""

from __future__ import annotations

# --- Jobcore's keys ----------------------------------------------------------------------

#: Prefix of every Jobcore key.
PREFIX = "jobcore:"

#: Hash: one job record (fields read by ``model.records.JobRecord.from_hash``); its field
#: ``history`` holds the job's events, one JSON object per line, oldest first; ``idem`` names
#: the idempotency key that created it, until it completes.
JOB = PREFIX + "job:{id}"
#: Hash: the job's guarded side effects, field = effect name, value = JSON reservation.
JOB_EFFECTS = PREFIX + "job:{id}:effects"
#: Counter: a monotonic sequence number per accepted job; index scores, newest first.
SEQUENCE = PREFIX + "seq"
#: Sorted set of job ids in one state and of one type, scored by sequence number: the only
#: index a job is in. Listings by state alone, type alone or neither merge these
#: (``lua/list.lua``), retention walks the terminal ones oldest first (``lua/prune.lua``):
#: one index entry per job keeps a finished job's footprint small.
INDEX_STATE_TYPE = PREFIX + "idx:state:{state}:type:{type}"
#: Set of every job type ever accepted: the per-type indexes a merge reads.
TYPES = PREFIX + "types"
#: Sorted set: jobs waiting for a time (a delayed job's ``runAt``, a retry's backoff), scored
#: by when their message goes to their ready queue (epoch ms). The lease holder's promoter
#: (``execution/promoter.py``, ``lua/promote.lua``) writes each message when it is due.
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
#: String: the last claim one worker process made from one queue (JSON: its token and each
#: message it claimed), so the process can give those messages back when the claim's reply
#: never reached it (a timeout while Redis was slow); expires after a day, or goes with
#: the process (``lua/recover_lost.lua``).
LAST_CLAIM = PREFIX + "last-claim:{broker_id}:{queue}"
#: String: written (``INCR``) right before each ``WAIT`` for replicas, so the ``WAIT`` covers
#: everything the call before it read as well as wrote (a replayed job, a reservation found
#: taken): a write at the primary's current offset, on the waiting connection.
REPLICATION_MARK = PREFIX + "replicated"

# --- Dramatiq's keys (its Redis broker writes them; Jobcore writes ready queues too) -------

#: Dramatiq's namespace: the prefix of every key its Redis broker writes.
DRAMATIQ_NAMESPACE = "dramatiq"
#: List: ids of a queue's ready messages (``RPUSH`` to enqueue, ``LPOP`` to fetch). Jobcore's
#: scripts push a job's message here themselves (``lua/_records.lua``'s ``send_message``).
READY_QUEUE = DRAMATIQ_NAMESPACE + ":{queue}"
#: List of tokens Jobcore pushes (and trims to a few) whenever a script writes a message to
#: the queue; an idle consumer of the queue waits on it with ``BLPOP`` instead of polling.
#: Beside its queue, in the broker's namespace.
WAKE = DRAMATIQ_NAMESPACE + ":{queue}.wake"
#: Hash: a queue's message bodies by message id (the broker's ``redis_message_id``).
MESSAGES = DRAMATIQ_NAMESPACE + ":{queue}.msgs"
#: The delay queue of a queue (Dramatiq's ``<queue>.DQ``): its own ready list and ``.msgs``
#: hash would hold messages whose ``eta`` is in the future; Jobcore's delays and retries wait
#: in ``DUE`` instead, so a delayed message never sits in a worker's memory.
DELAY_QUEUE_NAME = "{queue}.DQ"
#: Sorted set and hash of a queue's dead-lettered messages (``<queue>.XQ``, ``.XQ.msgs``):
#: Jobcore never nacks, its dead letters are records; the claim script expires them as
#: Dramatiq's maintenance does.
DEAD_QUEUE = DRAMATIQ_NAMESPACE + ":{queue}.XQ"
DEAD_MESSAGES = DEAD_QUEUE + ".msgs"
#: Prefix of one broker process's sets of fetched-but-unacked message ids (its id is the
#: worker process's presence id, so Jobcore can release a dead process's messages).
ACKS_OF_BROKER = DRAMATIQ_NAMESPACE + ":__acks__.{broker_id}"
#: Set: message ids one broker process fetched from a queue and has not acked yet.
ACKS = ACKS_OF_BROKER + ".{queue}"
#: Sorted set: broker process ids by last heartbeat; unacked messages of a process silent
#: longer than the heartbeat timeout are requeued by Dramatiq's maintenance.
BROKER_HEARTBEATS = DRAMATIQ_NAMESPACE + ":__heartbeats__"


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


def ready_queue(queue: str, namespace: str = DRAMATIQ_NAMESPACE) -> str:
    """The list of a queue's ready message ids (what ``LLEN`` measures as its depth)."""
    return f"{namespace}:{queue}"


def messages(queue: str, namespace: str = DRAMATIQ_NAMESPACE) -> str:
    return ready_queue(queue, namespace) + ".msgs"


def dead_queue(queue: str) -> str:
    return DEAD_QUEUE.format(queue=queue)


def dead_messages(queue: str) -> str:
    return DEAD_MESSAGES.format(queue=queue)


def acks(broker_id: str, queue: str) -> str:
    return ACKS.format(broker_id=broker_id, queue=queue)


def last_claim(broker_id: str, queue: str) -> str:
    return LAST_CLAIM.format(broker_id=broker_id, queue=queue)


def wake(queue: str, namespace: str = DRAMATIQ_NAMESPACE) -> str:
    return ready_queue(queue, namespace) + ".wake"


def delay_queue_name(queue: str) -> str:
    return DELAY_QUEUE_NAME.format(queue=queue)


def lua_prelude() -> str:
    """Lua functions that build the keys a script derives from what it reads, and the
    constants of the fixed keys, from the templates above."""

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
        "k_ready(queue)": lua_template(READY_QUEUE, "queue"),
        "k_messages(queue)": lua_template(MESSAGES, "queue"),
        "k_wake(queue)": lua_template(WAKE, "queue"),
        "k_acks(broker_id, queue)": lua_template(ACKS, "broker_id", "queue"),
        "k_acks_of(broker_id)": lua_template(ACKS_OF_BROKER, "broker_id"),
        "k_last_claim(broker_id, queue)": lua_template(LAST_CLAIM, "broker_id", "queue"),
    }
    lines = [f"local function {sig} return {body} end" for sig, body in functions.items()]
    return "\n".join(lines) + "\n"


#: Every key prefix a Lua script may spell (through ``lua_prelude``); a test holds the
#: ``.lua`` files to it.
KNOWN_PREFIXES = (PREFIX, DRAMATIQ_NAMESPACE + ":")
