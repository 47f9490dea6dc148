"""What a reconciliation records: per provider × symbol scores and the disagreements.

Plain frozen dataclasses, shared by the service, the stores and the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mds.domain.models import Interval


class DiffKind(StrEnum):
    """How the stored series and the other vendor's differ at one bar time."""

    #: Both hold the bar; a price is off by more than the tick tolerance or the volume by
    #: more than the percentage tolerance.
    VALUE = "value"
    #: The store lacks a bar the other vendor has.
    MISSING = "missing"
    #: The store holds a bar the other vendor lacks.
    EXTRA = "extra"


@dataclass(frozen=True, slots=True)
class QualityScore:
    """One provider's showing in one reconciliation of one symbol's range.

    ``score = (compared - faults) / compared`` (1.0 when nothing was compared): the share of
    the bar times this provider took part in that no majority found it wrong on.
    """

    provider: str
    symbol: str
    interval: Interval
    checked_at: datetime
    #: The range compared, ``start <= ts < end``.
    start: datetime
    end: datetime
    #: Bar times this provider was one of the two compared sides of.
    compared: int
    #: Of those, the ones a majority blamed on this provider.
    faults: int
    #: Disagreements no third provider could settle (counted against nobody).
    unresolved: int
    #: The provider(s) it was compared with, comma-separated.
    against: str

    @property
    def score(self) -> float:
        return 1.0 if self.compared <= 0 else (self.compared - self.faults) / self.compared


@dataclass(frozen=True, slots=True)
class Disagreement:
    """One field of one bar on which the stored series and another vendor disagree.

    Never acted on: a stored bar is not changed because another vendor says otherwise; the
    row is there for an operator.
    """

    checked_at: datetime
    #: The stored bar's provider (for a bar the store lacks: the series' main provider).
    provider: str
    other_provider: str
    symbol: str
    interval: Interval
    ts: datetime
    kind: DiffKind
    #: ``open``/``high``/``low``/``close``/``volume``, or ``bar`` for a missing or extra bar.
    field: str
    stored_value: float | None
    other_value: float | None
    #: Ticks (0.01) for a price, percent for volume, None for a missing or extra bar.
    diff: float | None
    #: The provider a third one sided against, or None when nobody could tell.
    blamed: str | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class EmptyMinute:
    """A bar time recorded as confirmed empty ("no trades"), due for a re-check."""

    symbol: str
    interval: Interval
    ts: datetime
    #: The providers whose answers lacked it.
    providers: tuple[str, ...]
