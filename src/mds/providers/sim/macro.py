"""Synthetic macro series with a release history, for the demo and for tests (``--demo``).

Every series is a pure function of ``(series, date, seed)``, so any range can be asked in
any order and two processes agree. What the sim knows:

- the default factors (``mds.config.DEFAULT_MACRO_FACTORS``) at plausible levels (VIX
  12-35, Treasury yields in percent, the broad dollar index near 120 ...) and a few other
  daily FRED series (``DGS1``, ``DGS5``, ``DGS30``, ``DTB3``, ``SOFR``, ``DEXUSEU``);
- ``T10Y2Y`` as ``DGS10 - DGS2`` of the same vintages, as FRED computes it;
- any key starting with ``SIM`` (``SIMX``, ``SIM_TEST``): a generic series near 100.

Any other key is unknown to the sim and raises ``NoData`` ("The series does not exist."),
so the 404 path can be tested end to end.

Observations are on weekdays from :data:`SIM_MACRO_EPOCH` on; Jan 1, Jul 4, Nov 11 and
Dec 25 falling on a weekday carry a missing value (FRED's ``"."``). Release history: each
value is first published one business day after its date (``realtime_start``); DTWEXBGS
values, and every tenth value of the others (by business-day index), are revised
:data:`REVISION_LAG` business days after that with a slightly different value, so a read
"as of" a day between the two returns the first print. Missing values are never revised.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from mds.domain.macro import MacroObservation
from mds.errors import NoData

__all__ = [
    "REVISION_LAG",
    "SIM_MACRO_EPOCH",
    "known_series",
    "sim_macro_observations",
    "sim_vintage_dates",
]

#: The first observation date of every sim series (a Monday).
SIM_MACRO_EPOCH = date(2010, 1, 4)
#: Business days between a value's first print and its revision.
REVISION_LAG = 3
#: Every n-th value (by business days since the epoch) is revised; DTWEXBGS always is.
REVISION_EVERY = 10
#: Keys with this prefix are generic sim series.
GENERIC_PREFIX = "SIM"
_HOLIDAYS = ((1, 1), (7, 4), (11, 11), (12, 25))
_MASK64 = (1 << 64) - 1

_Dates = npt.NDArray[np.datetime64]
_Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Spec:
    """A series' level: ``center`` plus two slow waves of total size ``amp``, plus noise."""

    center: float
    amp: float
    noise: float
    decimals: int
    lo: float
    hi: float
    always_revised: bool = False


_SPECS: dict[str, _Spec] = {
    "VIXCLS": _Spec(22.0, 8.0, 1.5, 2, 12.0, 35.0),
    "DGS10": _Spec(4.25, 0.55, 0.04, 2, 3.5, 5.0),
    "DGS2": _Spec(4.3, 0.6, 0.04, 2, 3.4, 5.2),
    "DGS3MO": _Spec(4.75, 0.55, 0.02, 2, 4.0, 5.5),
    "DFF": _Spec(4.6, 0.5, 0.01, 2, 3.9, 5.4),
    "DTWEXBGS": _Spec(120.0, 4.5, 0.4, 4, 110.0, 130.0, always_revised=True),
    "BAMLH0A0HYM2": _Spec(3.3, 0.7, 0.05, 2, 2.5, 5.0),
    "T10YIE": _Spec(2.3, 0.18, 0.02, 2, 1.9, 2.7),
    "DCOILWTICO": _Spec(75.0, 11.0, 1.2, 2, 60.0, 90.0),
    "DGS1": _Spec(4.6, 0.6, 0.03, 2, 3.6, 5.5),
    "DGS5": _Spec(4.1, 0.55, 0.04, 2, 3.4, 5.0),
    "DGS30": _Spec(4.45, 0.5, 0.04, 2, 3.7, 5.2),
    "DTB3": _Spec(4.7, 0.55, 0.02, 2, 3.9, 5.5),
    "SOFR": _Spec(4.6, 0.5, 0.01, 2, 3.9, 5.4),
    "DEXUSEU": _Spec(1.09, 0.05, 0.004, 4, 0.98, 1.2),
}
_GENERIC = _Spec(100.0, 6.0, 0.5, 2, 80.0, 120.0)
#: Series FRED derives from two others of the same day: value = first - second.
_DIFFERENCES = {"T10Y2Y": ("DGS10", "DGS2")}


def known_series(series: str) -> bool:
    """Whether the sim has ``series`` (a default factor, a listed extra, or ``SIM...``)."""
    return series in _SPECS or series in _DIFFERENCES or series.startswith(GENERIC_PREFIX)


@dataclass(frozen=True, slots=True)
class _Table:
    """Per business day in a range: date, first print, revision (when there is one)."""

    dates: _Dates
    first_at: _Dates
    first: _Floats  # NaN where the value is missing
    revised: npt.NDArray[np.bool_]
    second_at: _Dates
    second: _Floats


def _unit_noise(seed: int, key: int, n: npt.NDArray[np.int64]) -> _Floats:
    """Uniform noise in [-1, 1) from a splitmix64 hash of (seed, key, n): no RNG stream."""
    salt = np.uint64((seed * 0x9E3779B97F4A7C15 + key * 0xBF58476D1CE4E5B9) & _MASK64)
    # Array arithmetic on uint64 wraps silently, which is what the hash wants.
    x = n.astype(np.uint64) + salt
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 52) - 1.0


def _spec(series: str) -> _Spec:
    return _SPECS.get(series, _GENERIC)


def _values(
    series: str, t: npt.NDArray[np.int64], idx: npt.NDArray[np.int64], seed: int
) -> tuple[_Floats, _Floats]:
    """First print and revised value of a level series at days ``t`` (since the epoch)."""
    spec = _spec(series)
    key = zlib.crc32(series.encode())
    phase1, phase2 = (key % 628) / 100.0, (key // 628 % 628) / 100.0 + seed
    days = t.astype(np.float64)
    wave = 0.6 * np.sin(2 * math.pi * days / 620.0 + phase1) + 0.4 * np.sin(
        2 * math.pi * days / 97.0 + phase2
    )
    level = spec.center + spec.amp * wave + spec.noise * _unit_noise(seed, key, t)
    first = np.round(np.clip(level, spec.lo, spec.hi), spec.decimals)
    step = max(round(spec.amp * 0.02, spec.decimals), 10.0**-spec.decimals)
    sign = np.where(_unit_noise(seed, key + 1, idx) >= 0, 1.0, -1.0)
    second = np.round(np.clip(first + sign * step, spec.lo, spec.hi), spec.decimals)
    return first.astype(np.float64), second.astype(np.float64)


def _table(series: str, start: date, end: date, seed: int) -> _Table:
    epoch = np.datetime64(SIM_MACRO_EPOCH, "D")
    lo = np.datetime64(max(start, SIM_MACRO_EPOCH), "D")
    all_days = np.arange(lo, np.datetime64(end, "D") + 1, dtype="datetime64[D]")
    dates = all_days[np.is_busday(all_days)]
    idx = np.busday_count(epoch, dates).astype(np.int64)
    t = (dates - epoch).astype(np.int64)
    first_at = np.busday_offset(dates, 1, roll="forward")
    second_at = np.busday_offset(first_at, REVISION_LAG, roll="forward")
    if series in _DIFFERENCES:
        a, b = _DIFFERENCES[series]
        a1, a2 = _values(a, t, idx, seed)
        b1, b2 = _values(b, t, idx, seed)
        first, second = np.round(a1 - b1, 2), np.round(a2 - b2, 2)
        every = False
    else:
        first, second = _values(series, t, idx, seed)
        every = _spec(series).always_revised
    missing = _holidays(dates)
    first = np.where(missing, np.nan, first)
    revised = (every | (idx % REVISION_EVERY == 0)) & ~missing & (second != first)
    return _Table(dates, first_at, first, revised, second_at, second)


def _holidays(dates: _Dates) -> npt.NDArray[np.bool_]:
    months = dates.astype("datetime64[M]")
    day_of_month = (dates - months.astype("datetime64[D]")).astype(np.int64) + 1
    month = months.astype(np.int64) % 12 + 1
    out = np.zeros(dates.shape, dtype=np.bool_)
    for m, d in _HOLIDAYS:
        out |= (month == m) & (day_of_month == d)
    return out


def _check(series: str, provider: str) -> None:
    if not known_series(series):
        raise NoData(provider, f"{series}: The series does not exist.", code="unknown_series")


def _value(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def sim_macro_observations(
    series: str,
    *,
    start: date,
    end: date,
    today: date,
    seed: int = 0,
    vintages: bool = False,
    provider: str = "sim",
) -> list[MacroObservation]:
    """``series``' observations dated ``start..end`` (inclusive) as published by ``today``.

    Without ``vintages``: per date the vintage current on ``today`` (``realtime_end``
    None). With ``vintages``: every vintage published by ``today``, each with its
    realtime period (a superseded first print ends the day before its revision). Rows
    are ordered by date, then ``realtime_start``.

    Raises:
        NoData: ``series`` is unknown to the sim (see the module docstring).
    """
    _check(series, provider)
    last = min(end, today - timedelta(days=1))  # a value is published after its day
    if last < max(start, SIM_MACRO_EPOCH):
        return []
    tab = _table(series, start, last, seed)
    today64 = np.datetime64(today, "D")
    published = tab.first_at <= today64
    revised_by_today = tab.revised & (tab.second_at <= today64)
    n = int(np.count_nonzero(published))  # first prints come out in date order
    # Plain lists: indexing numpy arrays element by element costs more than the rest.
    dates: list[date] = tab.dates[:n].tolist()
    first_at: list[date] = tab.first_at[:n].tolist()
    second_at: list[date] = tab.second_at[:n].tolist()
    firsts: list[float] = tab.first[:n].tolist()
    seconds: list[float] = tab.second[:n].tolist()
    revised: list[bool] = revised_by_today[:n].tolist()
    out: list[MacroObservation] = []
    for i in range(n):
        d, first = dates[i], _value(firsts[i])
        if not revised[i]:
            out.append(MacroObservation(series, d, first, first_at[i], None, provider))
        elif not vintages:
            out.append(MacroObservation(series, d, seconds[i], second_at[i], None, provider))
        else:
            ended = second_at[i] - timedelta(days=1)
            out.append(MacroObservation(series, d, first, first_at[i], ended, provider))
            out.append(MacroObservation(series, d, seconds[i], second_at[i], None, provider))
    return out


def sim_vintage_dates(series: str, *, today: date, seed: int = 0, provider: str = "sim") -> list[date]:
    """Every date on which ``series`` published a new value or a revision, up to ``today``,
    oldest first (FRED's ``fred/series/vintagedates``).

    Raises:
        NoData: ``series`` is unknown to the sim.
    """
    _check(series, provider)
    last = today - timedelta(days=1)
    if last < SIM_MACRO_EPOCH:
        return []
    tab = _table(series, SIM_MACRO_EPOCH, last, seed)
    today64 = np.datetime64(today, "D")
    firsts = tab.first_at[tab.first_at <= today64]
    seconds = tab.second_at[tab.revised & (tab.second_at <= today64)]
    return list(np.unique(np.concatenate([firsts, seconds])).astype(date))
