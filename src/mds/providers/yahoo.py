"""Yahoo Finance: chart bars (v8), level-1 quotes and option chains (v7). No key.

Wire formats (see tests/fixtures/vendors/yahoo/SOURCE.md): the chart answer carries
``chart.result[0].timestamp`` (epoch seconds, bar open) beside parallel
``indicators.quote[0]`` open/high/low/close/volume arrays. A minute without trades is a
row of nulls, which is skipped; a row with only some nulls is corrupt. Daily bars are
stamped at the 09:30 ET open. The quote arrays are raw prices (``adjclose`` is a
separate array this adapter ignores), so ``adjusted`` is False.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote as urlquote

import httpx
import orjson

from mds.domain.models import Bar, Capability, Interval, OptionQuote, OptionRight, Quote
from mds.errors import NoData
from mds.providers import timeconv
from mds.providers.http import HttpProvider, Page, RequestSpec

_INTERVALS = {
    Interval.M1: "1m",
    Interval.M5: "5m",
    Interval.M15: "15m",
    Interval.H1: "60m",
    Interval.D1: "1d",
}
#: Widest window per request. Yahoo refuses 1m ranges over 8 days ("Only 8 days worth of
#: 1m granularity data are allowed to be fetched per request"); 7 keeps a margin. Other
#: intraday sizes are served for the last 60 days only, so one 60-day window suffices.
_WINDOW = {Interval.M1: timedelta(days=7), Interval.M5: timedelta(days=60)}
_WINDOW[Interval.M15] = _WINDOW[Interval.H1] = _WINDOW[Interval.M5]
_QUOTE_BATCH = 50  # symbols per v7 quote call; the endpoint takes a comma list


class YahooProvider(HttpProvider):
    """Yahoo Finance's public JSON endpoints (the ones yfinance reads)."""

    name = "yahoo"
    capabilities = frozenset(
        {
            Capability.BARS_1M,
            Capability.BARS_5M,
            Capability.EOD,
            Capability.QUOTES_L1,
            Capability.OPTIONS_CHAIN,
        }
    )
    default_base_url = "https://query1.finance.yahoo.com"
    # Yahoo documents no limit; it answers 429 "Too Many Requests" when a client is too
    # busy. 60/minute is a conservative guess of ours, not a vendor figure.
    default_limits = ("60/minute",)
    key_settings = ()
    adjusted = False  # indicators.quote holds raw prices; adjclose is not used

    # -- bars ----------------------------------------------------------------------
    def bars_request(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> RequestSpec:
        if interval is Interval.D1:
            # Select whole exchange dates: a daily row stamped before the open (as Yahoo
            # does for some listings) must not fall outside period1.
            start = datetime.combine(timeconv.local_date(start), time(), UTC)
        return self._chart_spec(symbol, interval, start, self._window_end(interval, start, end))

    def parse_bars(
        self, body: bytes, *, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> Page[Bar]:
        with self.reading("chart"):
            result = self._chart_result(body, symbol)
            stamps = result.get("timestamp") or []
            quotes = (result.get("indicators") or {}).get("quote") or [{}]
            if not isinstance(stamps, list) or not isinstance(quotes, list) or not quotes:
                raise self.bad("chart.result[0] has no timestamp/indicators.quote arrays")
            columns = [
                quotes[0].get(k) or [None] * len(stamps) for k in ("open", "high", "low", "close", "volume")
            ]
            if any(not isinstance(col, list) or len(col) != len(stamps) for col in columns):
                raise self.bad("chart arrays differ in length")
            window_end = self._window_of(interval, start, stamps)
            bars: list[Bar] = []
            for t, o, h, low, c, v in zip(stamps, *columns, strict=True):
                if o is None and h is None and low is None and c is None:
                    continue  # Yahoo's way of saying "no trades in this interval"
                if None in (t, o, h, low, c):
                    raise self.bad(f"{symbol} row at {t}: null in {(o, h, low, c)}")
                ts = self._bar_time(t, interval)
                # A row past this window's end is left to the next window, which asks for it.
                if ts is not None and (window_end is None or ts < window_end):
                    bars.append(self.bar(symbol, interval, ts, o, h, low, c, v or 0))
            if window_end is None or window_end >= end:
                return Page(bars)
            nxt = self._chart_spec(symbol, interval, window_end, self._window_end(interval, window_end, end))
            return Page(bars, nxt)

    def _chart_spec(self, symbol: str, interval: Interval, lo: datetime, hi: datetime) -> RequestSpec:
        if interval not in _INTERVALS:
            raise NoData(self.name, f"{interval.value} bars are not offered", code="unsupported")
        return RequestSpec(
            f"/v8/finance/chart/{urlquote(symbol, safe='')}",
            {
                "period1": str(int(lo.timestamp())),
                "period2": str(math.ceil(hi.timestamp())),
                "interval": _INTERVALS[interval],
                "includePrePost": "false",
                "events": "div,splits",
            },
        )

    @staticmethod
    def _window_end(interval: Interval, lo: datetime, end: datetime) -> datetime:
        width = _WINDOW.get(interval)
        return end if width is None else min(end, lo + width)

    @staticmethod
    def _window_of(interval: Interval, start: datetime, stamps: list[Any]) -> datetime | None:
        """End of the window this body answers (None: no windows, or an empty one).

        Windows are ``[start + k*width, start + (k+1)*width)``. The body does not echo its
        window, so its first row tells. A window without a single row ends the walk:
        Yahoo keeps 1m bars for 30 days only, so an empty window means the range ran
        into "now" (7-day windows always hold a session otherwise).
        """
        width = _WINDOW.get(interval)
        valid = [t for t in stamps if isinstance(t, int | float)]
        if width is None or not valid:
            return None
        # The first row's bar *end* (less a second) places it: a bar that straddles the
        # window's start (an unaligned start) still counts for this window, not the last.
        first_end = timeconv.from_epoch(min(valid) + interval.seconds - 1)
        k = max(0, int((first_end - start) / width))
        return start + (k + 1) * width

    def _bar_time(self, t: float, interval: Interval) -> datetime | None:
        ts = timeconv.from_epoch(t)
        if interval is not Interval.D1:
            return ts
        # Daily rows are stamped at the 09:30 ET open (a live row at the last trade time):
        # both name the exchange-local date. A date without a session is skipped.
        return timeconv.session_open(timeconv.local_date(ts), self.calendar)

    def _chart_result(self, body: bytes, symbol: str) -> dict[str, Any]:
        chart = _load(self, body).get("chart")
        if not isinstance(chart, dict):
            raise self.bad("no 'chart' object")
        error = chart.get("error")
        if error:
            raise NoData(self.name, f"{symbol}: {_describe(error)}", code="no_data")
        results = chart.get("result")
        if not isinstance(results, list) or not results or not isinstance(results[0], dict):
            raise self.bad("chart.result is empty")
        return results[0]

    # -- quotes --------------------------------------------------------------------
    def quotes_request(self, symbols: Sequence[str]) -> list[RequestSpec]:
        return [
            RequestSpec("/v7/finance/quote", {"symbols": ",".join(symbols[i : i + _QUOTE_BATCH])})
            for i in range(0, len(symbols), _QUOTE_BATCH)
        ]

    def parse_quotes(self, body: bytes, symbols: Sequence[str]) -> list[Quote]:
        with self.reading("quotes"):
            response = _load(self, body).get("quoteResponse")
            if not isinstance(response, dict) or not isinstance(response.get("result"), list):
                raise self.bad("no quoteResponse.result array")
            out: list[Quote] = []
            for row in response["result"]:
                price, at = row.get("regularMarketPrice"), row.get("regularMarketTime")
                if price is None or at is None:
                    continue  # Yahoo lists unknown symbols with no price; nothing to quote
                out.append(
                    Quote(
                        symbol=row.get("symbol", ""),
                        ts=_epoch_field(self, at),
                        bid=_positive(row.get("bid")),
                        ask=_positive(row.get("ask")),
                        last=float(price),
                        bid_size=_num(row.get("bidSize")),
                        ask_size=_num(row.get("askSize")),
                        provider=self.name,
                    )
                )
            return out

    # -- options -------------------------------------------------------------------
    def options_request(self, symbol: str, expiration: date | None) -> RequestSpec:
        params: dict[str, str] = {}
        if expiration is not None:
            # Yahoo names an expiration by the epoch second of its 00:00 UTC.
            params["date"] = str(int(datetime.combine(expiration, time(), UTC).timestamp()))
        return RequestSpec(f"/v7/finance/options/{urlquote(symbol, safe='')}", params)

    def parse_options(self, body: bytes, *, symbol: str) -> Page[OptionQuote]:
        with self.reading("option chain"):
            chain = _load(self, body).get("optionChain")
            if not isinstance(chain, dict):
                raise self.bad("no 'optionChain' object")
            if chain.get("error"):
                raise NoData(self.name, f"{symbol}: {_describe(chain['error'])}")
            results = chain.get("result") or []
            if not results or not results[0].get("options"):
                return Page([])
            out: list[OptionQuote] = []
            for right, key in ((OptionRight.CALL, "calls"), (OptionRight.PUT, "puts")):
                for row in results[0]["options"][0].get(key) or []:
                    out.append(self._option(symbol, right, row))
            return Page(out)

    def _option(self, symbol: str, right: OptionRight, row: dict[str, Any]) -> OptionQuote:
        try:
            expiration = timeconv.from_epoch(row["expiration"]).date()  # 00:00 UTC of the date
            contract, strike = str(row["contractSymbol"]), float(row["strike"])
        except (KeyError, TypeError, ValueError) as exc:
            raise self.bad(f"option row without {exc}") from None
        traded = row.get("lastTradeDate")
        return OptionQuote(
            underlying=symbol,
            contract=contract,
            expiration=expiration,
            strike=strike,
            right=right,
            bid=_num(row.get("bid")),
            ask=_num(row.get("ask")),
            last=_num(row.get("lastPrice")),
            volume=_num(row.get("volume")),
            open_interest=_num(row.get("openInterest")),
            implied_volatility=_num(row.get("impliedVolatility")),
            ts=_epoch_field(self, traded) if traded is not None else None,
            provider=self.name,
        )

    def check_response(self, response: httpx.Response, capability: Capability) -> None:
        # 404/422 carry {"chart": {"error": {...}}}: an unknown symbol, or 1m asked for
        # beyond the 30 days Yahoo keeps. Both are "no data", said in Yahoo's words.
        if response.status_code in (400, 404, 422):
            try:
                doc = orjson.loads(response.content)
                error = next((v.get("error") for v in doc.values() if isinstance(v, dict)), None)
            except (orjson.JSONDecodeError, AttributeError):
                error = None
            if error:
                raise NoData(self.name, _describe(error), code=str(response.status_code))
        super().check_response(response, capability)


def _load(provider: HttpProvider, body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise provider.bad(f"not JSON: {body[:80]!r}") from None
    if not isinstance(doc, dict):
        raise provider.bad("top level is not an object")
    return doc


def _describe(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('code', '')}: {error.get('description', '')}".strip(": ")
    return str(error)


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _positive(value: Any) -> float | None:
    # Yahoo sends bid/ask 0 outside hours or with no book; that is "no quote", not a price.
    number = _num(value)
    return number if number else None


def _epoch_field(provider: HttpProvider, value: Any) -> datetime:
    try:
        return timeconv.from_epoch(float(value))
    except (TypeError, ValueError):
        raise provider.bad(f"bad epoch time {value!r}") from None
