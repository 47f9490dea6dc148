"""The StreamLog protocol: a per-symbol replay log, so a WebSocket client resumes exactly.

Every message appended for a symbol gets the next ``offset`` (1, 2, 3 … per symbol) and
the log's ``epoch``, a string naming this history of the symbol. When the history is lost
(a new process for the in-process log; the symbol's keys gone from Redis after a flush,
an eviction or idle expiry) the epoch changes and offsets start again from 1, so a cursor
``(offset, epoch)`` from before the loss can never be mistaken for one after it.

A client that held cursor ``(offset, epoch)`` asks ``since``: either it gets exactly the
entries after ``offset`` (possibly none) and the current head, or ``reset=True`` when the
gap cannot be filled: the epoch differs, ``offset`` is older than the oldest entry kept
(minus one), or ``offset`` is ahead of the head. A reset means "re-read history over REST".

A symbol's history gets its epoch the first time anyone touches it (``head`` included), so
a client that saw an empty log holds a cursor ``(0, epoch)`` that stays valid until the
history is lost. Messages are stored as JSON: they come back as JSON gives them (tuples
as lists), in every implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Entry:
    """One appended message: its place in the symbol's history and when it was appended."""

    symbol: str
    offset: int
    epoch: str
    message: dict[str, Any]
    ts: datetime


@dataclass(frozen=True, slots=True)
class Replay:
    """The answer to ``since``: the missed entries (or a reset) and the current head.

    ``offset``/``epoch`` are the head after the answer was taken: a client that applies
    ``entries`` is at ``(offset, epoch)``, and after a reset it must start over from there.
    """

    offset: int
    epoch: str
    entries: list[Entry] = field(default_factory=list)
    reset: bool = False


class StreamLog(Protocol):
    async def append(self, symbol: str, message: dict[str, Any]) -> Entry:
        """Store ``message`` as the symbol's next offset (atomically, across processes)."""
        ...

    async def since(self, symbol: str, offset: int, epoch: str) -> Replay:
        """The entries after ``offset`` in ``epoch``, in order, or a reset."""
        ...

    async def since_time(self, symbol: str, ts: datetime) -> list[Entry]:
        """Entries kept for the symbol that were appended at or after ``ts`` (aware), in order."""
        ...

    async def head(self, symbol: str) -> tuple[int, str]:
        """``(offset, epoch)`` of the newest entry; offset 0 when the history is empty."""
        ...

    async def close(self) -> None: ...


def to_micros(ts: datetime) -> int:
    """Microseconds since the Unix epoch for an aware datetime (exact, unlike ``timestamp()``)."""
    if ts.tzinfo is None:
        raise ValueError(f"stream log times must be timezone-aware, got {ts!r}")
    return (ts - _UNIX_EPOCH) // _MICROSECOND


def from_micros(us: int) -> datetime:
    return _UNIX_EPOCH + timedelta(microseconds=us)
