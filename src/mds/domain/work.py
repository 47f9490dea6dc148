"""Which kind of work the running task does: live collection or backfill.

Live work (sweeps, quotes, API reads) has capacity that backfills cannot take: a share of
every provider's rate limit, database connections, the first place in the SQLite
writer's queue. The shared parts (rate limiters, stores) sit far below the worker that
knows what it is doing, so the worker marks its task with ``as_backfill()`` and those
parts read ``current()``; a context variable is copied into every task the work spawns,
so nothing has to pass it down by hand. Anything unmarked is live: an unmarked caller
must never be starved by a backlog.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum


class WorkClass(StrEnum):
    LIVE = "live"
    BACKFILL = "backfill"


_current: ContextVar[WorkClass] = ContextVar("mds_work_class", default=WorkClass.LIVE)


def current() -> WorkClass:
    """The work class of the running task (LIVE unless marked)."""
    return _current.get()


def is_backfill() -> bool:
    return _current.get() is WorkClass.BACKFILL


@contextmanager
def as_backfill() -> Iterator[None]:
    """Mark the work done inside the block (and tasks it starts) as backfill."""
    token = _current.set(WorkClass.BACKFILL)
    try:
        yield
    finally:
        _current.reset(token)
