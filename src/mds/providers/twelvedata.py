"""Twelve Data: ``/time_series`` and ``/quote`` JSON; errors are ``{"code", "message", "status": "error"}``.

Wire facts this adapter relies on (sources in tests/fixtures/vendors/twelvedata/SOURCE.md):

* ``/time_series?symbol&interval&start_date&end_date&timezone&order&outputsize&adjust`` returns
  ``{"meta": {…, "exchange_timezone"}, "values": [{"datetime", "open", …}], "status": "ok"}``;
  numbers are strings. With ``timezone=America/New_York`` datetimes are New York wall
  times labelling each bar's start (``"2025-03-10 09:30:00"``); daily rows carry a date.
* At most 5000 rows per call; with both dates set the vendor answers the latest rows up
  to ``end_date``, so a full page is followed by asking again up to just before its
  earliest row. A date-only ``end_date`` is exclusive (its support article's example).
* ``adjust`` defaults to ``splits``; this adapter asks ``none`` for raw prices.
* Errors usually arrive with HTTP 200: 429 out of credits, 401 bad key, 403 not on the plan,
  400/404 bad symbol, and 400 "No data is available on the specified dates" for an empty range.
* Auth: ``Authorization: apikey <key>`` (keeps the key out of URLs and logs).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import httpx
import orjson

from mds.domain.models import Bar, Capability, Interval, Quote
from mds.errors import AuthError, NoData, NotEntitled, RateLimited, Unavailable
from mds.providers import timeconv
from mds.providers.http import HttpProvider, Page, RequestSpec, retry_after

_INTERVALS = {
    Interval.M1: "1min",
    Interval.M5: "5min",
    Interval.M15: "15min",
    Interval.H1: "1h",
    Interval.D1: "1day",
}
_FIELDS = ("open", "high", "low", "close", "volume")
_WALL = "%Y-%m-%d %H:%M:%S"
_SMALL_BODY = 4096


class TwelveDataProvider(HttpProvider):
    """Twelve Data adapter: raw 1m/5m/15m/1h and daily bars, batched level-1 quotes."""

    name = "twelvedata"
    capabilities = frozenset({Capability.BARS_1M, Capability.BARS_5M, Capability.EOD, Capability.QUOTES_L1})
    default_base_url = "https://api.twelvedata.com"
    # twelvedata.com/pricing: the free Basic plan has 8 API credits per minute, 800 per day.
    default_limits = ("8/minute", "800/day")
    key_settings = ("TWELVE_DATA_API_KEY",)
    # adjust=none: raw as-traded prices (the vendor's default is split-adjusted).
    adjusted = False
    #: Rows per call (the vendor's cap); tests lower it to exercise paging.
    page_size: ClassVar[int] = 5000

    # -- requests ------------------------------------------------------------------
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"apikey {self.key('TWELVE_DATA_API_KEY')}"}

    def bars_request(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> RequestSpec:
        if interval not in _INTERVALS:
            raise NoData(self.name, f"{interval.value} bars are not offered", code="unsupported")
        if interval is Interval.D1:
            first = timeconv.local_date(start).isoformat()
            last = (timeconv.local_date(end - timedelta(microseconds=1)) + timedelta(days=1)).isoformat()
        else:
            # One second before `end` is never a bar time, so it works whether the vendor
            # treats a datetime end_date as inclusive or exclusive.
            first = start.astimezone(timeconv.NEW_YORK).strftime(_WALL)
            last = (end - timedelta(seconds=1)).astimezone(timeconv.NEW_YORK).strftime(_WALL)
        params = {
            "symbol": symbol,
            "interval": _INTERVALS[interval],
            "start_date": first,
            "end_date": last,
            "timezone": "America/New_York",
            "order": "ASC",
            "outputsize": str(self.page_size),
            "adjust": "none",
        }
        return RequestSpec("/time_series", params, self._auth())

    def quotes_request(self, symbols: Sequence[str]) -> list[RequestSpec]:
        # One call for the batch (it still costs one credit per symbol).
        return [RequestSpec("/quote", {"symbol": ",".join(symbols)}, self._auth())] if symbols else []

    # -- parsing -------------------------------------------------------------------

    def parse_bars(
        self, body: bytes, *, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> Page[Bar]:
        with self.reading("time series"):
            doc = self.json_object(body)
            if doc.get("status") == "error":
                self._raise(doc)
                return Page([])  # "No data is available on the specified dates"
            values = doc.get("values")
            if not isinstance(values, list):
                raise self.bad("no 'values' list in the body")
            bars, stamps = [], []
            for row in values:
                try:
                    stamp = str(row["datetime"])
                    ts = self._ts(stamp, interval)
                    ohlcv = [float(row[f]) for f in _FIELDS]
                except (KeyError, TypeError, ValueError):
                    raise self.bad(f"row lacks a valid datetime or numeric OHLCV: {str(row)[:120]}") from None
                stamps.append(stamp)
                if ts is not None:
                    bars.append(self.bar(symbol, interval, ts, *ohlcv))
            if len(values) < self.page_size or not stamps:
                return Page(bars)
            # A full page holds the latest rows up to end_date: ask again for what precedes it.
            earliest = min(stamps)
            if interval is Interval.D1:
                before = datetime.combine(
                    date.fromisoformat(earliest[:10]), datetime.min.time(), timeconv.NEW_YORK
                )
                before = before.astimezone(UTC)
            else:
                before = timeconv.from_local(earliest)
            nxt = self.bars_request(symbol, interval, start, before) if before > start else None
            return Page(bars, next=nxt)

    def _ts(self, stamp: str, interval: Interval) -> datetime | None:
        """The bar's UTC open; None for rows outside every session; refuse off-grid bars."""
        if interval is Interval.D1:
            return timeconv.session_open(date.fromisoformat(stamp[:10]), self.calendar)
        ts = timeconv.from_local(stamp)
        session = self.calendar.session_for(ts)
        if session is None:
            return None
        if (ts - session.open).total_seconds() % interval.seconds:
            raise self.bad(f"{stamp} is not on the {interval.value} grid from the session open")
        return ts

    def parse_quotes(self, body: bytes, symbols: Sequence[str]) -> list[Quote]:
        with self.reading("quote"):
            doc = self.json_object(body)
            if doc.get("status") == "error":
                self._raise(doc)
                return []
            # One symbol answers a quote object; several answer {symbol: quote-or-error}.
            items = [doc] if "symbol" in doc else [v for v in doc.values() if isinstance(v, dict)]
            out = []
            for item in items:
                if item.get("status") == "error":  # one unknown symbol in a batch
                    continue
                try:
                    stamp = item.get("last_quote_at") or item["timestamp"]
                    quote = Quote(
                        symbol=str(item["symbol"]),
                        ts=timeconv.from_epoch(float(stamp)),
                        bid=None,
                        ask=None,
                        last=float(item["close"]),
                        provider=self.name,
                    )
                except (KeyError, TypeError, ValueError):
                    raise self.bad("quote lacks symbol, close or timestamp") from None
                out.append(quote)
            return out

    # -- errors --------------------------------------------------------------------
    def _raise(self, doc: dict[str, Any], response: httpx.Response | None = None) -> None:
        """Raise the typed error for an error body; return for "no data in this range"."""
        code, message = doc.get("code"), str(doc.get("message", ""))[:200]
        detail = f"code {code}: {message}"
        if code == 429:
            wait = retry_after(response) if response is not None else 60.0
            raise RateLimited(self.name, detail, retry_after=wait, code="429")
        if code == 401:
            raise AuthError(self.name, detail, code="401")
        if code == 403:
            raise NotEntitled(self.name, detail, code="403")
        if code in (400, 404) and "no data is available" in message.lower():
            return
        if code in (400, 404, 422):
            raise NoData(self.name, detail, code=str(code))
        raise Unavailable(self.name, detail, code=str(code))

    def check_response(self, response: httpx.Response, capability: Capability) -> None:
        body = response.content
        if len(body) <= _SMALL_BODY and body.lstrip().startswith(b"{"):
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError:
                doc = None
            if isinstance(doc, dict) and doc.get("status") == "error":
                self._raise(doc, response)
                return  # an empty range: parse_bars turns it into no bars
        super().check_response(response, capability)


__all__ = ["TwelveDataProvider"]
