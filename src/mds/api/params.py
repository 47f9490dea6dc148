"""Query, path and body parameters: declared once, so OpenAPI says exactly what is accepted.

Each constraint is an enum or a pattern that FastAPI both publishes in ``/openapi.json``
and enforces, so a request valid by the schema is accepted and anything else is a 422
naming the field. The patterns are written in the subset of regex syntax that JSON Schema
(ECMA-262), Python and pydantic's Rust engine read alike (no look-around, ``[0-9]`` rather
than ``\\d``, which is Unicode-wide in Python). :func:`parse_ts` applies the same pattern,
so the fast path (:mod:`mds.api.fast_path`) accepts exactly what the routes accept.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import Path, Query

from mds.corporate.adjust import Adjust
from mds.domain.models import Interval
from mds.domain.reference import TICKER_PATTERN
from mds.errors import InvalidRequest
from mds.ingest.ingestor import AUTO_SOURCE
from mds.providers.registry import SIM_PREFIXES, VENDORS

# Dates are exact, leap days included, for the years 1970-2199: a pattern that let
# 2025-02-30 through would promise a time the server then refuses. Bounded because the
# exchange calendar covers 1900-2200 and reads a margin around what it is asked (and MDS
# holds nothing before 1970, where ``max`` starts).
_YEAR = "(?:19[7-9][0-9]|2[01][0-9]{2})"
_LEAP_YEAR = "(?:19(?:7[26]|8[048]|9[26])|2[01](?:0[48]|[2468][048]|[13579][26])|2000)"
_DATE = (
    f"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    f"|{_LEAP_YEAR}-02-29)"
)
# Seconds and fractions are optional; the zone is not (a time without one is ambiguous).
# A space stands for "+": an unencoded "+" in a query string arrives as a space.
_CLOCK = "T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.][0-9]{1,6})?)?"
_ZONE = "(?:Z|[-+ ](?:[01][0-9]|2[0-3]):[0-5][0-9])"

#: The largest id a stored row can have (SQLite INTEGER, PostgreSQL BIGINT): a larger one in
#: a request is refused as invalid (422), never passed to the store to overflow (500).
INT64_MAX = 2**63 - 1

TIME_PATTERN = f"^{_DATE}{_CLOCK}{_ZONE}$"
DATE_PATTERN = f"^{_DATE}$"
DATE_OR_TIME_PATTERN = f"^{_DATE}(?:{_CLOCK}{_ZONE})?$"
#: Must agree with MarketService.period_start and AnalysisService.prices: N of 1-9999
#: trading days, weeks or months, 1-999 years (more would start before year 1), ytd, max.
PERIOD_PATTERN = "^(?:[1-9][0-9]{0,3}(?:d|wk|mo)|[1-9][0-9]{0,2}y|ytd|max)$"
#: Like mds.domain.jobs.SYMBOL_PATTERN, any case: a path or query symbol is upper-cased.
SYMBOL_PATTERN = "^[A-Za-z0-9][A-Za-z0-9.^=-]{0,19}$"

_TIME_HELP = "an ISO-8601 time with a zone (Z or ±hh:mm), years 1970-2199, e.g. 2025-10-08T13:30:00Z"
#: How a pattern mismatch is explained in a 422 (pydantic would print the regex).
PATTERN_HELP = {
    TIME_PATTERN: _TIME_HELP,
    DATE_PATTERN: "a date (YYYY-MM-DD), years 1970-2199",
    DATE_OR_TIME_PATTERN: f"a date (YYYY-MM-DD) or {_TIME_HELP}",
    PERIOD_PATTERN: "Nd (trading days), Nwk, Nmo (N 1-9999), Ny (N 1-999), ytd or max, e.g. 5d, 1mo, 1y",
    SYMBOL_PATTERN: "a ticker: a letter or digit, then up to 19 of letters, digits and . ^ = -",
    TICKER_PATTERN: "a ticker: a letter, up to 6 more letters or digits, then up to two suffixes of"
    " 1-4 after . - or / (BRK.B, ABR.PR.D)",
}
_TIME_RE = re.compile(TIME_PATTERN)

#: Cursor sources: the cursor over every provider, or one provider's name.
SOURCES = (AUTO_SOURCE, *SIM_PREFIXES, *VENDORS)

if TYPE_CHECKING:
    SourceName = str
else:
    SourceName = Literal[SOURCES]  # built from the registry, so a new vendor is accepted at once

# Interval subsets per route; each value is an Interval's (tests/contract/test_openapi.py holds that).
IntradayInterval = Literal["1m", "5m", "15m", "1h"]
CoverageInterval = Literal["1m", "1d"]

SymbolPath = Annotated[
    str, Path(pattern=SYMBOL_PATTERN, description="Ticker, e.g. AAPL (any case; MDS upper-cases it)")
]
SymbolQuery = Annotated[str, Query(pattern=SYMBOL_PATTERN, description="Ticker, e.g. SPY (any case)")]
PeriodQuery = Annotated[
    str,
    Query(
        pattern=PERIOD_PATTERN,
        description="Nd (trading days), Nwk, Nmo (N 1-9999), Ny (N 1-999), ytd or max; ends now",
    ),
]

StartQuery = Annotated[
    str | None,
    Query(
        pattern=TIME_PATTERN,
        description="Inclusive start, ISO-8601 with a zone; default: the latest session's open",
    ),
]
EndQuery = Annotated[
    str | None,
    Query(
        pattern=TIME_PATTERN,
        description="Exclusive end, ISO-8601 with a zone; default: now. 1m to 1h bars: at most 31 days after start",
    ),
]


AdjustQuery = Annotated[
    Adjust,
    Query(
        description="raw: as stored (as traded); split: prices divided and volume multiplied by the"
        " cumulative split factors; all: dividends applied too (CRSP factor 1 - dividend / previous"
        " close). Actions known at as_of, up to the read's last session",
    ),
]
EventDateQuery = Annotated[
    str | None,
    Query(
        pattern=DATE_PATTERN,
        description="Event time: only bars whose session is on or before this date (YYYY-MM-DD),"
        " whenever MDS learned them; combine with as_of for what was known then",
    ),
]


def parse_day(field: str, value: str | None) -> date | None:
    """``value`` (matching :data:`DATE_PATTERN`) as a date; None for None."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(field, f"{value!r} is not {PATTERN_HELP[DATE_PATTERN]}") from None


def parse_ts(field: str, value: str | None) -> datetime | None:
    """``value`` (matching :data:`TIME_PATTERN`) as an aware UTC datetime; None for None."""
    if value is None:
        return None
    if not _TIME_RE.match(value):
        raise InvalidRequest(field, f"{value!r} is not {_TIME_HELP}")
    text = value.replace(" ", "+").replace("Z", "+00:00")
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:  # the pattern admits only real times; kept so a bad one is still a 422
        raise InvalidRequest(field, f"{value!r} is not {_TIME_HELP}") from None
    return ts.astimezone(UTC)


def parse_interval(field: str, value: str, *, allowed: tuple[Interval, ...] = tuple(Interval)) -> Interval:
    try:
        interval = Interval(value)
    except ValueError:
        interval = None
    if interval is None or interval not in allowed:
        names = ", ".join(i.value for i in allowed)
        raise InvalidRequest(field, f"unknown interval {value!r}; use one of {names}")
    return interval
