"""Alpha Vantage: ``/query?function=…`` JSON, US/Eastern wall-clock keys, errors inside HTTP 200.

Wire facts this adapter relies on (sources in tests/fixtures/vendors/alphavantage/SOURCE.md):

* ``TIME_SERIES_INTRADAY`` with ``month=YYYY-MM&outputsize=full`` returns one calendar month;
  keys are ``"YYYY-MM-DD HH:MM:SS"`` in US/Eastern (``"6. Time Zone"``), newest first.
* Intraday keys label the bar's START: with extended hours (04:00-20:00 ET) the last 5min bar
  of a day is ``19:55:00`` and the last 60min bar ``19:00:00``; with regular hours only, 5min
  bars run ``09:30`` … ``15:55`` (78 bars). So a key converts straight to the UTC open time.
* ``TIME_SERIES_DAILY`` is raw (as-traded); ``outputsize=full`` is premium on free keys, so
  the adapter asks for ``compact`` (latest 100 sessions) first and escalates to ``full``
  only when the range reaches further back.
* Corporate actions: ``function=SPLITS`` → ``{symbol, data: [{effective_date,
  split_factor}]}`` (split_factor new/old shares as a string, ``"4.0000"``) and
  ``function=DIVIDENDS`` → ``{symbol, data: [{ex_dividend_date, declaration_date,
  record_date, payment_date, amount}]}`` (amount as declared, a string; an unknown date
  is the string ``"None"``). Both list the whole history, newest first; an unknown symbol
  answers ``{}``.
* Throttling, bad keys, unknown symbols and premium-only features all come as HTTP 200
  with a one-key JSON body: ``{"Note": …}``, ``{"Information": …}``, ``{"Error Message": …}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import httpx
import orjson

from mds.domain.actions import ActionType, CorporateAction
from mds.domain.models import Bar, Capability, Interval, Quote, ensure_utc
from mds.errors import AuthError, NoData, NotEntitled, RateLimited
from mds.providers import timeconv
from mds.providers.http import HttpProvider, Page, RequestSpec, optional_date

_INTERVALS = {Interval.M1: "1min", Interval.M5: "5min", Interval.M15: "15min"}
_OHLCV = ("1. open", "2. high", "3. low", "4. close", "5. volume")
_THROTTLE = re.compile(r"rate limit|call frequency|requests per|per second|per minute|sparingly", re.I)
_BAD_KEY = re.compile(r"apikey is invalid|api key is invalid|invalid api key|apikey.*missing", re.I)
#: Alpha Vantage sends no Retry-After; its free windows are per minute and per day.
_RETRY_AFTER = 60.0
#: Error bodies are one short sentence; data bodies are far larger and are not inspected here.
_SMALL_BODY = 4096


class AlphaVantageProvider(HttpProvider):
    """Alpha Vantage adapter: 1m/5m/15m bars (one month per call), raw daily bars, quotes.

    60min bars are not offered: Alpha Vantage's hourly buckets are clock-aligned
    (…, 18:00, 19:00), not aligned to the 09:30 session open as MDS's 1h bars are.
    """

    name = "alphavantage"
    capabilities = frozenset(
        {
            Capability.BARS_1M,
            Capability.BARS_5M,
            Capability.EOD,
            Capability.QUOTES_L1,
            Capability.CORPORATE_ACTIONS,
        }
    )
    default_base_url = "https://www.alphavantage.co"
    # alphavantage.co/support/#api-key: the free key allows 25 requests per day; the
    # 5 per minute figure is the long-standing burst limit of the free tier.
    default_limits = ("5/minute", "25/day")
    key_settings = ("ALPHA_VANTAGE_API_KEY",)
    # Intraday asks adjusted=false; TIME_SERIES_DAILY is documented as raw (as-traded).
    adjusted = False

    # -- requests ------------------------------------------------------------------
    def _query(self, **params: str) -> RequestSpec:
        return RequestSpec("/query", {**params, "apikey": self.key("ALPHA_VANTAGE_API_KEY")})

    def bars_request(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> RequestSpec:
        if interval is Interval.D1:
            return self._query(function="TIME_SERIES_DAILY", symbol=symbol, outputsize="compact")
        if interval not in _INTERVALS:
            raise NoData(self.name, f"{interval.value} bars are not offered", code="unsupported")
        return self._query(
            function="TIME_SERIES_INTRADAY",
            symbol=symbol,
            interval=_INTERVALS[interval],
            month=timeconv.local_date(start).strftime("%Y-%m"),
            outputsize="full",
            adjusted="false",
            extended_hours="false",
        )

    async def fetch_bars(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> list[Bar]:
        """One request per exchange-local month: the vendor serves intraday history by month."""
        interval, start, end = Interval(interval), ensure_utc(start), ensure_utc(end)
        if interval is Interval.D1:
            return await super().fetch_bars(symbol, interval, start, end)
        out: list[Bar] = []
        for lo, hi in _months(start, end):
            out.extend(await super().fetch_bars(symbol, interval, lo, hi))
        return out

    def quotes_request(self, symbols: Sequence[str]) -> list[RequestSpec]:
        # GLOBAL_QUOTE takes one symbol; the bulk endpoint is premium-only.
        return [self._query(function="GLOBAL_QUOTE", symbol=s) for s in symbols]

    def actions_requests(self, symbol: str, start: date, end: date) -> list[RequestSpec]:
        return [
            self._query(function="SPLITS", symbol=symbol),
            self._query(function="DIVIDENDS", symbol=symbol),
        ]

    # -- parsing -------------------------------------------------------------------
    def parse_actions(self, body: bytes, *, symbol: str, spec: RequestSpec) -> Page[CorporateAction]:
        split = spec.params.get("function") == "SPLITS"
        with self.reading("splits" if split else "dividends"):
            doc = self.json_object(body)
            if not doc:  # {}: the vendor does not know the symbol
                raise NoData(self.name, f"no corporate actions for {symbol}", code="unknown_symbol")
            rows = doc["data"]
            if not isinstance(rows, list):
                raise self.bad("'data' is not a list")
            out: list[CorporateAction] = []
            for row in rows:
                if split:
                    day = date.fromisoformat(row["effective_date"])
                    ratio = float(row["split_factor"])
                    out.append(CorporateAction(symbol, ActionType.SPLIT, day, ratio=ratio, source=self.name))
                    continue
                amount = float(row["amount"])
                if amount == 0:
                    continue  # nothing paid: no price moves
                out.append(
                    CorporateAction(
                        symbol,
                        ActionType.DIVIDEND,
                        date.fromisoformat(row["ex_dividend_date"]),
                        amount=amount,
                        declared_date=optional_date(row.get("declaration_date")),
                        record_date=optional_date(row.get("record_date")),
                        pay_date=optional_date(row.get("payment_date")),
                        source=self.name,
                    )
                )
            return Page(out)

    def parse_bars(
        self, body: bytes, *, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> Page[Bar]:
        with self.reading("time series"):
            doc = self.json_object(body)
            key = (
                "Time Series (Daily)" if interval is Interval.D1 else f"Time Series ({_INTERVALS[interval]})"
            )
            series = doc.get(key)
            if not isinstance(series, dict):
                raise self.bad(f"no {key!r} in the body (keys: {sorted(doc)[:5]})")
            if interval is Interval.D1:
                return self._daily(doc, series, symbol=symbol, start=start)
            bars = []
            for stamp, row in series.items():
                ts = self._stamp(stamp, timeconv.from_local)
                session = self.calendar.session_for(ts)
                if session is None:  # extended-hours bar despite extended_hours=false: not ours
                    continue
                if (ts - session.open).total_seconds() % interval.seconds:
                    raise self.bad(f"{stamp} is not on the {interval.value} grid from the session open")
                bars.append(self.bar(symbol, interval, ts, *self._values(stamp, row)))
            return Page(bars)

    def _daily(
        self, doc: dict[str, Any], series: dict[str, Any], *, symbol: str, start: datetime
    ) -> Page[Bar]:
        bars, days = [], []
        for stamp, row in series.items():
            day = self._stamp(stamp, date.fromisoformat)
            days.append(day)
            ts = timeconv.session_open(day, self.calendar)
            if ts is None:  # a date the exchange calendar says was closed: not a session bar
                continue
            bars.append(self.bar(symbol, Interval.D1, ts, *self._values(stamp, row)))
        meta = doc.get("Meta Data")
        size = str(meta.get("4. Output Size", "") if isinstance(meta, dict) else "").lower()
        # compact holds the latest 100 sessions; fewer means that is the whole history.
        if size.startswith("compact") and len(days) >= 100 and min(days) > timeconv.local_date(start):
            return Page([], next=self._query(function="TIME_SERIES_DAILY", symbol=symbol, outputsize="full"))
        return Page(bars)

    def _stamp(self, text: str, convert: Any) -> Any:
        try:
            return convert(text)
        except (TypeError, ValueError):
            raise self.bad(f"unparsable timestamp {text!r}") from None

    def _values(self, stamp: str, row: Any) -> list[float]:
        try:
            return [float(row[k]) for k in _OHLCV]
        except (KeyError, TypeError, ValueError):
            raise self.bad(f"bar {stamp!r} lacks a numeric OHLCV field") from None

    def parse_quotes(self, body: bytes, symbols: Sequence[str]) -> list[Quote]:
        with self.reading("quote"):
            quote = self.json_object(body).get("Global Quote")
            if not isinstance(quote, dict):
                raise self.bad("no 'Global Quote' in the body")
            if not quote:  # {"Global Quote": {}}: the symbol is unknown to the vendor
                return []
            try:
                symbol, last = str(quote["01. symbol"]), float(quote["05. price"])
                day = date.fromisoformat(quote["07. latest trading day"])
            except (KeyError, TypeError, ValueError):
                raise self.bad("quote lacks symbol, price or latest trading day") from None
            # The vendor stamps a quote with its trading day only; the latest instant the
            # price can be from is that session's close (or now, while it is still open).
            session = self.calendar.session_on(day)
            close = session.close if session else datetime.combine(day, datetime.min.time(), UTC)
            ts = min(close, datetime.now(UTC))
            return [Quote(symbol=symbol, ts=ts, bid=None, ask=None, last=last, provider=self.name)]

    # -- errors --------------------------------------------------------------------
    def check_response(self, response: httpx.Response, capability: Capability) -> None:
        super().check_response(response, capability)
        if len(response.content) > _SMALL_BODY:
            return
        try:
            doc = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return  # parse_bars reports it as a bad payload
        if not isinstance(doc, dict):
            return
        error, note = doc.get("Error Message"), doc.get("Note") or doc.get("Information")
        text = str(error or note or "")
        if not text:
            return
        detail = text[:200]
        if _BAD_KEY.search(text):
            raise AuthError(self.name, detail, code="invalid_key")
        if error:  # "Invalid API call …": the vendor has no such symbol
            raise NoData(self.name, detail, code="unknown_symbol")
        if _THROTTLE.search(text):
            raise RateLimited(self.name, detail, retry_after=_RETRY_AFTER, code="throttled")
        if "premium" in text.lower():
            raise NotEntitled(self.name, detail, code="premium")


def _months(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut at exchange-local month starts."""
    out: list[tuple[datetime, datetime]] = []
    lo = start
    while lo < end:
        day = timeconv.local_date(lo)
        first = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        boundary = datetime.combine(first, datetime.min.time(), timeconv.NEW_YORK).astimezone(UTC)
        hi = min(end, boundary)
        out.append((lo, hi))
        lo = hi
    return out


__all__ = ["AlphaVantageProvider"]
