"""asyncio helpers MDS's polling loops share."""

from __future__ import annotations

import asyncio


def honour_cancel() -> None:
    """Raise CancelledError when the running task has a cancel pending that something swallowed.

    A cancel can be lost inside an await on Python 3.11: redis-py's asyncio client, or
    ``asyncio.timeout`` when the cancel and the deadline land together, may turn it into a
    plain return or a TimeoutError. A loop that polls would then run on forever under a
    task that is "cancelling" (seen: a worker process's backfill dispatcher that never let
    its runtime close). Such loops call this once per turn, so a cancel stops them within one.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
