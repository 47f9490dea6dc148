"""Records the store keeps besides bars: universe entries, cursors, backfill jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from mds.domain.models import Interval, Tier


@dataclass(frozen=True, slots=True)
class UniverseEntry:
    symbol: str
    tier: Tier
    active: bool = True
    name: str = ""
    exchange: str = "XNYS"
    etf: bool = False


@dataclass(frozen=True, slots=True)
class Cursor:
    """The newest bar stored for (symbol, interval) from ``source`` ("auto" = any provider)."""

    symbol: str
    interval: Interval
    source: str
    last_ts: datetime
    updated_at: datetime


class BackfillStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # in the DLQ


@dataclass(frozen=True, slots=True)
class BackfillRecord:
    id: int
    symbol: str
    interval: Interval
    start: datetime
    end: datetime
    priority: Tier
    status: BackfillStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one write_bars call did: new bars, new revisions of known bars, no-ops."""

    inserted: int = 0
    revised: int = 0
    unchanged: int = 0
    #: (symbol, interval, ts) of the new and revised bars at or after the ``changed_since``
    #: the caller passed, in key order; empty when it passed none.
    changed: tuple[tuple[str, str, datetime], ...] = ()

    @property
    def written(self) -> int:
        return self.inserted + self.revised


@dataclass(frozen=True, slots=True)
class UniverseChange:
    """What one universe load did: symbols added (new or reactivated), removed (made
    inactive, never deleted), unchanged, and how many changed tier."""

    added: int
    removed: int
    unchanged: int
    tier_changes: int
    version_tag: str


@dataclass(frozen=True, slots=True)
class UniverseVersion:
    version_tag: str
    source: str
    file_time: datetime | None
    added: int
    removed: int
    unchanged: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TierChange:
    symbol: str
    old_tier: Tier | None  # None: the symbol was new
    new_tier: Tier
    measure: float | None  # the ranking measure (median daily dollar volume) when known
    reason: str
    changed_at: datetime
