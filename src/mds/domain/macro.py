"""Macro series with their release history (FRED/ALFRED), point in time.

FRED says when each value was known: an observation is valid from ``realtime_start``
until ``realtime_end``; a revised value is a new observation with a later
``realtime_start``. MDS keeps every one, so a read "as of D" returns the values as they
were known on D.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MacroObservation:
    """One value of one series as a vendor reported it.

    ``value`` is None where the vendor says the value is missing (FRED's ``"."``), never 0.
    ``realtime_end`` is None for a value still current (FRED's ``9999-12-31``).
    """

    series: str
    date: dt.date
    value: float | None
    realtime_start: dt.date
    realtime_end: dt.date | None
    provider: str


@dataclass(frozen=True, slots=True)
class MacroRow:
    """One row of ``macro_factors``: ``factor_key``'s value for ``date`` known from
    ``realtime_start`` (the vendor's knowledge time), learned by MDS at ``as_of``."""

    factor_key: str
    date: dt.date
    value: float | None
    realtime_start: dt.date
    as_of: dt.datetime
    source: str
