"""Financial Modeling Prep: the current ``/stable`` API (JSON arrays, newest first).

FMP's ``/api/v3`` endpoints are "Legacy" since 31 Aug 2025 and answer keys issued after
that date with 403 "Legacy Endpoint"; this adapter speaks the documented ``/stable`` API
(sources in tests/fixtures/vendors/fmp/SOURCE.md):

* daily: ``/stable/historical-price-eod/non-split-adjusted?symbol&from&to`` — raw
  as-traded prices (its fields are confusingly named ``adjOpen`` … ``adjClose``);
  ``historical-price-eod/full`` would be split-adjusted.
* intraday: ``/stable/historical-chart/{1min|5min|15min|1hour}?symbol&from&to&nonadjusted=true``
  with ``date`` as an exchange-local (America/New_York) wall time labelling the bar's start
  (the 1min session runs 09:30 … 15:59). Each call serves a limited window, so ranges are
  cut into a few days per call.
* quotes: ``/stable/quote?symbol=`` (one symbol; ``timestamp`` in epoch seconds).
* splits: ``/stable/splits?symbol=`` → ``[{symbol, date, numerator, denominator}]``
  (``date`` the ex-date; ratio = numerator / denominator, 4/1 for AAPL's 2020 split).
* dividends: ``/stable/dividends?symbol=`` → ``[{symbol, date, recordDate, paymentDate,
  declarationDate, adjDividend, dividend, yield, frequency}]``: ``date`` is the ex-date,
  ``dividend`` the amount as declared (raw, MDS's basis) and ``adjDividend`` the same
  divided by later splits (not used). Unknown dates are ``""``. Neither endpoint filters
  by date: the whole history comes back and the base trims it.
* profile: ``/stable/profile?symbol=`` → ``[{symbol, price, marketCap, companyName, currency,
  exchange, sector, industry, isEtf, isFund, …}]``: ``marketCap`` in whole ``currency``
  units (0 or null for most ETFs and funds: unknown); no share count (none is derived).
  An unknown symbol answers ``[]``.
* plan limits come as 402 "Restricted Endpoint"/"Premium Query Parameter" or 403
  "Legacy/Exclusive/Special Endpoint"; a bad key as 401 ``{"Error Message": "Invalid API KEY…"}``;
  the daily cap as 429 "Limit Reach".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import httpx
import orjson

from mds.domain.actions import ActionType, CorporateAction
from mds.domain.models import Bar, Capability, Interval, Quote, ensure_utc
from mds.domain.profile import CompanyProfile
from mds.errors import AuthError, NoData, NotEntitled, RateLimited
from mds.providers import timeconv
from mds.providers.http import HttpProvider, Page, RequestSpec, optional_date, profile_text, retry_after

_INTERVALS = {Interval.M1: "1min", Interval.M5: "5min", Interval.M15: "15min", Interval.H1: "1hour"}
#: Calendar days per intraday call, kept under FMP's per-call row cap (1min: ~3 days).
_CHUNK_DAYS = {Interval.M1: 3, Interval.M5: 10, Interval.M15: 30, Interval.H1: 90, Interval.D1: 1800}
#: How FMP says "not on your plan" (402/403 bodies), for every FMP endpoint MDS calls.
PLAN_LIMIT = re.compile(r"legacy|exclusive|special endpoint|restricted|premium|subscription", re.I)
_SMALL_BODY = 4096


class FmpProvider(HttpProvider):
    """FMP adapter: raw 1m/5m/15m/1h and daily bars, level-1 quotes (last price only),
    splits and dividends, company profiles (market cap)."""

    name = "fmp"
    capabilities = frozenset(
        {
            Capability.BARS_1M,
            Capability.BARS_5M,
            Capability.EOD,
            Capability.QUOTES_L1,
            Capability.CORPORATE_ACTIONS,
            Capability.PROFILE,
        }
    )
    default_base_url = "https://financialmodelingprep.com"
    # site.financialmodelingprep.com/pricing-plans: the free Basic plan allows 250 calls/day.
    default_limits = ("250/day",)
    key_settings = ("FMP_API_KEY",)
    # Raw prices: the non-split-adjusted daily endpoint and nonadjusted=true intraday.
    adjusted = False
    chunk_days: ClassVar[dict[Interval, int]] = _CHUNK_DAYS

    # -- requests ------------------------------------------------------------------
    def bars_request(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> RequestSpec:
        # from/to are inclusive exchange-local dates; the base keeps only start <= ts < end.
        params = {
            "symbol": symbol,
            "from": timeconv.local_date(start).isoformat(),
            "to": timeconv.local_date(end - timedelta(microseconds=1)).isoformat(),
            "apikey": self.key("FMP_API_KEY"),
        }
        if interval is Interval.D1:
            return RequestSpec("/stable/historical-price-eod/non-split-adjusted", params)
        if interval not in _INTERVALS:
            raise NoData(self.name, f"{interval.value} bars are not offered", code="unsupported")
        return RequestSpec(
            f"/stable/historical-chart/{_INTERVALS[interval]}", {**params, "nonadjusted": "true"}
        )

    async def fetch_bars(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> list[Bar]:
        """One call per chunk of exchange-local days: each call serves a capped window."""
        interval, start, end = Interval(interval), ensure_utc(start), ensure_utc(end)
        out: list[Bar] = []
        for lo, hi in _day_chunks(start, end, self.chunk_days.get(interval, 1)):
            out.extend(await super().fetch_bars(symbol, interval, lo, hi))
        return out

    def quotes_request(self, symbols: Sequence[str]) -> list[RequestSpec]:
        # batch-quote is not on every plan; one quote call per symbol is.
        return [
            RequestSpec("/stable/quote", {"symbol": s, "apikey": self.key("FMP_API_KEY")}) for s in symbols
        ]

    def actions_requests(self, symbol: str, start: date, end: date) -> list[RequestSpec]:
        params = {"symbol": symbol, "apikey": self.key("FMP_API_KEY")}
        return [RequestSpec(SPLITS, params), RequestSpec(DIVIDENDS, params)]

    def profile_request(self, symbol: str) -> RequestSpec:
        return RequestSpec(PROFILE, {"symbol": symbol, "apikey": self.key("FMP_API_KEY")})

    # -- parsing -------------------------------------------------------------------
    def parse_profile(self, body: bytes, *, symbol: str) -> CompanyProfile:
        rows = self._rows(body)
        if not rows:
            raise NoData(self.name, f"no profile for {symbol}", code="empty")
        if len(rows) != 1:
            raise self.bad(f"{len(rows)} profiles for {symbol}, expected one")
        (row,) = rows
        return CompanyProfile(
            symbol=str(row["symbol"]),
            provider=self.name,
            # 0 (or null) is FMP's "no market cap" (ETFs, funds).
            market_cap=self.profile_figure(row, "marketCap"),
            shares_outstanding=None,  # the profile has no share count; none is derived
            currency=profile_text(row.get("currency")),
            name=profile_text(row.get("companyName")),
            sector=profile_text(row.get("sector")),
            industry=profile_text(row.get("industry")),
            exchange=profile_text(row.get("exchange")),
        )

    def parse_actions(self, body: bytes, *, symbol: str, spec: RequestSpec) -> Page[CorporateAction]:
        split = spec.path == SPLITS
        out: list[CorporateAction] = []
        with self.reading("splits" if split else "dividends"):
            for row in self._rows(body):
                if row.get("symbol", symbol) != symbol:
                    raise self.bad(f"action for {row.get('symbol')!r}, asked {symbol}")
                ex_date = date.fromisoformat(str(row["date"])[:10])
                if split:
                    ratio = float(row["numerator"]) / float(row["denominator"])
                    out.append(
                        CorporateAction(symbol, ActionType.SPLIT, ex_date, ratio=ratio, source=self.name)
                    )
                    continue
                amount = float(row["dividend"])  # as declared; adjDividend is split-adjusted
                if amount == 0:
                    continue  # FMP lists some zero rows: nothing paid, no price moves
                out.append(
                    CorporateAction(
                        symbol,
                        ActionType.DIVIDEND,
                        ex_date,
                        amount=amount,
                        declared_date=optional_date(row.get("declarationDate")),
                        record_date=optional_date(row.get("recordDate")),
                        pay_date=optional_date(row.get("paymentDate")),
                        source=self.name,
                    )
                )
        return Page(out)

    def _rows(self, body: bytes) -> list[dict[str, Any]]:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise self.bad("body is not JSON") from None
        if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
            raise self.bad(f"expected a JSON array of objects, got {type(doc).__name__}")
        return doc

    def parse_bars(
        self, body: bytes, *, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> Page[Bar]:
        with self.reading("bars"):
            daily = interval is Interval.D1
            fields = ("adjOpen", "adjHigh", "adjLow", "adjClose", "volume") if daily else _PLAIN
            bars = []
            for row in self._rows(body):
                try:
                    stamp = str(row["date"])
                    ts = timeconv.session_open(date.fromisoformat(stamp), self.calendar) if daily else None
                    if not daily:
                        ts = self._intraday_ts(stamp, interval)
                    values = [float(row[f]) for f in fields]
                except (KeyError, TypeError, ValueError):
                    raise self.bad(f"row lacks a valid date or numeric OHLCV: {str(row)[:120]}") from None
                if ts is None:  # outside every session (closed date, extended hours): not ours
                    continue
                bars.append(self.bar(symbol, interval, ts, *values))
            return Page(bars)

    def _intraday_ts(self, stamp: str, interval: Interval) -> datetime | None:
        """Exchange-local start label → UTC open; None outside sessions; refuse off-grid bars."""
        ts = timeconv.from_local(stamp)
        session = self.calendar.session_for(ts)
        if session is None:
            return None
        if (ts - session.open).total_seconds() % interval.seconds:
            # e.g. clock-aligned hourly bars (10:00, 11:00) where MDS aligns to the 09:30 open
            raise self.bad(f"{stamp} is not on the {interval.value} grid from the session open")
        return ts

    def parse_quotes(self, body: bytes, symbols: Sequence[str]) -> list[Quote]:
        with self.reading("quote"):
            out = []
            for row in self._rows(body):
                try:
                    symbol, last, ts = (
                        str(row["symbol"]),
                        float(row["price"]),
                        timeconv.from_epoch(row["timestamp"]),
                    )
                except (KeyError, TypeError, ValueError):
                    raise self.bad("quote lacks symbol, price or timestamp") from None
                out.append(Quote(symbol=symbol, ts=ts, bid=None, ask=None, last=last, provider=self.name))
            return out

    # -- errors --------------------------------------------------------------------
    def check_response(self, response: httpx.Response, capability: Capability) -> None:
        status, text = response.status_code, error_text(response)
        detail = f"HTTP {status}: {text[:200]}"
        if "invalid api key" in text.lower():
            raise AuthError(self.name, detail, code=str(status))
        if status == 429 or "limit reach" in text.lower():
            raise RateLimited(self.name, detail, retry_after=retry_after(response), code="429")
        if status in (402, 403) and PLAN_LIMIT.search(text):
            raise NotEntitled(self.name, detail, code=str(status))
        super().check_response(response, capability)
        if text and status < 400:  # an {"Error Message": …} object where an array belongs
            raise NoData(self.name, detail, code="error_message")


_PLAIN = ("open", "high", "low", "close", "volume")
SPLITS = "/stable/splits"
PROFILE = "/stable/profile"
DIVIDENDS = "/stable/dividends"


def error_text(response: httpx.Response) -> str:
    """The ``Error Message`` of a small JSON object body, else "" (FMP's data bodies are
    arrays); an error status's text when the body is not such an object."""
    body = response.content
    if len(body) > _SMALL_BODY or not body.lstrip().startswith(b"{"):
        return "" if response.status_code < 400 else response.text[:300]
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return response.text[:300]
    return error_message(doc) if isinstance(doc, dict) else ""


def error_message(doc: dict[str, Any]) -> str:
    """FMP's error object's text (``Error Message``, or ``message``/``error`` on some answers)."""
    return str(doc.get("Error Message") or doc.get("message") or doc.get("error") or "")


def _day_chunks(start: datetime, end: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut at exchange-local midnights every ``days`` days."""
    out: list[tuple[datetime, datetime]] = []
    lo = start
    while lo < end:
        first = timeconv.local_date(lo) + timedelta(days=days)
        boundary = datetime.combine(first, datetime.min.time(), timeconv.NEW_YORK).astimezone(UTC)
        hi = min(end, boundary)
        out.append((lo, hi))
        lo = hi
    return out


__all__ = ["FmpProvider"]
