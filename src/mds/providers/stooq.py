"""Stooq: daily bars as CSV. No key.

Wire format (see tests/fixtures/vendors/stooq/SOURCE.md, after pandas-datareader's
``StooqDailyReader``): ``GET /q/d/l/?s=aapl.us&i=d&d1=YYYYMMDD&d2=YYYYMMDD`` answers
``Date,Open,High,Low,Close,Volume`` rows with exchange-local dates, or the text
``No data``. Stooq always answers 200: throttling ("Exceeded the daily hits limit") and
its key / bot-check pages come as 200 bodies, so ``check_response`` reads the body.
Stooq's history is split- and dividend-adjusted and the download offers no raw choice,
so ``adjusted`` is True.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta

import httpx

from mds.domain.models import Bar, Capability, Interval
from mds.errors import AuthError, NoData, RateLimited
from mds.providers import timeconv
from mds.providers.http import HttpProvider, Page, RequestSpec

_HEADER = ["date", "open", "high", "low", "close", "volume"]
#: Stooq's daily hits limit resets once a day; an hour is a polite first back-off.
_THROTTLE_RETRY_SEC = 3600.0


class StooqProvider(HttpProvider):
    """Stooq's CSV download (daily bars of US listings, ``<symbol>.us``)."""

    name = "stooq"
    capabilities = frozenset({Capability.EOD})
    default_base_url = "https://stooq.com"
    # Stooq documents no limit, only a "daily hits limit" it enforces per client; one
    # call per symbol per session is all MDS needs, so 20/minute is a conservative guess.
    default_limits = ("20/minute",)
    key_settings = ()
    adjusted = True

    def bars_request(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> RequestSpec:
        if interval is not Interval.D1:
            raise NoData(self.name, f"{interval.value} bars are not offered", code="unsupported")
        # d1/d2 are inclusive exchange-local dates; `end` is exclusive, so step back 1 µs.
        first = timeconv.local_date(start)
        last = timeconv.local_date(end - timedelta(microseconds=1))
        return RequestSpec(
            "/q/d/l/",
            {"s": stooq_symbol(symbol), "i": "d", "d1": _ymd(first), "d2": _ymd(max(first, last))},
        )

    def parse_bars(
        self, body: bytes, *, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> Page[Bar]:
        with self.reading("CSV"):
            try:
                text = body.decode("utf-8-sig").strip()
            except UnicodeDecodeError:
                raise self.bad("body is not UTF-8 text") from None
            if text.lower().startswith("no data"):
                raise NoData(self.name, f"{symbol}: No data", code="no_data")
            rows = list(csv.reader(io.StringIO(text)))
            if not rows or [c.strip().lower() for c in rows[0]] != _HEADER:
                raise self.bad(f"unexpected CSV header {text[:60]!r}")
            bars: list[Bar] = []
            for row in rows[1:]:
                if not row:
                    continue
                if len(row) != len(_HEADER):
                    raise self.bad(f"{symbol}: row {row!r} has {len(row)} fields")
                try:
                    day = date.fromisoformat(row[0])
                    o, h, low, c, v = (float(x) for x in row[1:])
                except ValueError:
                    raise self.bad(f"{symbol}: unparsable row {row!r}") from None
                ts = timeconv.session_open(day, self.calendar)
                if ts is not None:  # a row on a date with no session is skipped
                    bars.append(self.bar(symbol, interval, ts, o, h, low, c, v))
            return Page(bars)

    def check_response(self, response: httpx.Response, capability: Capability) -> None:
        if response.status_code == 200:
            head = response.content[:2000].decode("utf-8", "replace").strip().lower()
            if head.startswith("exceeded the daily hits limit"):
                raise RateLimited(
                    self.name, "Exceeded the daily hits limit", retry_after=_THROTTLE_RETRY_SEC, code="429"
                )
            if head.startswith(("<!doctype", "<html")) and "apikey" in head.replace(" ", ""):
                # Since 2026 Stooq may answer the CSV URL with an HTML page asking for an
                # API key (pandas-datareader issue #1012): a credential problem, not data.
                raise AuthError(self.name, "Stooq asks for an API key (HTML page instead of CSV)")
        super().check_response(response, capability)


def stooq_symbol(symbol: str) -> str:
    """``BRK.B`` → ``brk-b.us``: Stooq spells share classes with a dash, US listings ``.us``."""
    return f"{symbol.strip().lower().replace('.', '-')}.us"


def _ymd(day: date) -> str:
    return day.strftime("%Y%m%d")
