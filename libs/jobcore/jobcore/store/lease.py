"""A named Redis lease: held by one process at a time, renewed by its holder, expiring when
the holder stops renewing (``lua/renew_lease.lua``)."""

from __future__ import annotations

from jobcore.store import keys, scripts
from jobcore.store.calls import Operation


def renew(name: str, holder: str, ttl_ms: int) -> Operation[bool]:
    """Take the lease, or keep it; whether ``holder`` has it now."""
    held = yield scripts.RENEW_LEASE.call(
        keys={"lease": keys.lease(name)}, args={"holder": holder, "ttl_ms": ttl_ms}
    )
    return bool(held)
