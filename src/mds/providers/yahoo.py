"""Yahoo Finance: chart bars (v8), level-1 quotes and option chains (v7). No key.

Wire formats (see tests/fixtures/vendors/yahoo/SOURCE.md): the chart answer carries
``chart.result[0].timestamp`` (epoch seconds, bar open) beside parallel
``indicators.quote[0]`` open/high/low/close/volume arrays. A minute without trades is a
row of nulls, which is skipped; a row with only some nulls is corrupt. Daily bars are
stamped at the 09:30 ET open. The quote arrays are raw prices (``adjclose`` is a
separate array this adapter ignores), so ``adjusted`` is False.

Corporate actions come from the same chart endpoint with ``events=div,splits``:
``chart.result[0].events.splits{ts: {date, numerator, denominator, splitRatio}}`` and
``events.dividends{ts: {amount, date}}``, ``date`` in epoch seconds on the ex-date (09:30
ET; its America/New_York date is the ex-date). Yahoo's dividend amounts are adjusted for
every LATER split (yfinance and OpenBB say so: "All data is split-adjusted"), while MDS
keeps each amount in its own ex-date's share basis, so each is multiplied back by the
ratios of the splits after it. To see those splits the request runs from ``start`` to now
(not to ``end``), and the answer is trimmed to ``start..end`` afterwards. Limitation: a
split Yahoo applied that its own events omit (seen for a few delisted or foreign
listings) leaves the earlier amounts in the later basis; nothing in the answer tells.

Option chains (``/v7/finance/options/{symbol}``) need a session: a cookie (``A3``, set by
``https://fc.yahoo.com``), then a crumb (``/v1/test/getcrumb``, a text body) sent as
``crumb=`` beside that cookie. Without them Yahoo answers 401 ``{"finance": {"error":
{"code": "Unauthorized", "description": "Invalid Crumb"}}}``. The adapter keeps one pair
per instance and renews it once when Yahoo refuses it; a second refusal is an AuthError.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote as urlquote

import httpx
import orjson

from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.domain.actions import ActionType, CorporateAction
from mds.domain.models import Bar, Capability, Interval, OptionQuote, OptionRight, Quote
from mds.errors import AuthError, BadPayload, NoData, Unavailable
from mds.providers import timeconv
from mds.providers.http import HttpProvider, Page, RequestSpec
from mds.providers.ratelimit import RateLimiter
from mds.routing.timing import transport

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
#: Yahoo's cookie host: it answers 404 and sets the session cookie.
COOKIE_URL = "https://fc.yahoo.com"
#: The strike of an option row that has none: no listed contract has it, so the pricing
#: layer drops and counts such contracts instead of pricing them.
MISSING_STRIKE = 0.0


class InvalidCrumb(AuthError):
    """Yahoo's 401 "Invalid Crumb" on a crumbed request: the session is stale; renew once.

    Raised and caught inside the adapter only; callers see a plain AuthError.
    """


@dataclass(frozen=True)
class YahooChain:
    """One options answer: its contracts, the expirations it answered, and all Yahoo lists."""

    quotes: list[OptionQuote]
    answered: list[date]
    expirations: list[date]


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
            Capability.CORPORATE_ACTIONS,
        }
    )
    default_base_url = "https://query1.finance.yahoo.com"
    # Yahoo documents no limit; it answers 429 "Too Many Requests" when a client is too
    # busy. 60/minute is a conservative guess of ours, not a vendor figure.
    default_limits = ("60/minute",)
    key_settings = ()
    adjusted = False  # indicators.quote holds raw prices; adjclose is not used

    def __init__(
        self,
        *,
        settings: Settings,
        calendar: MarketCalendar,
        limiter: RateLimiter | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(settings=settings, calendar=calendar, limiter=limiter, client=client)
        #: The (cookie, crumb) pair option requests carry; made on first use.
        self._session: tuple[str, str] | None = None
        self._session_lock = asyncio.Lock()

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
        chart = self.json_object(body).get("chart")
        if not isinstance(chart, dict):
            raise self.bad("no 'chart' object")
        error = chart.get("error")
        if error:
            raise NoData(self.name, f"{symbol}: {_describe(error)}", code="no_data")
        results = chart.get("result")
        if not isinstance(results, list) or not results or not isinstance(results[0], dict):
            raise self.bad("chart.result is empty")
        return results[0]

    # -- corporate actions -----------------------------------------------------------
    def actions_requests(self, symbol: str, start: date, end: date) -> list[RequestSpec]:
        # Up to now, not to `end`: the splits after `end` are needed to undo Yahoo's
        # adjustment of the dividends inside the range (module docstring).
        lo = datetime.combine(start, time(), UTC)
        hi = max(datetime.combine(end + timedelta(days=1), time(), UTC), datetime.now(UTC))
        return [self._chart_spec(symbol, Interval.D1, lo, hi)]

    def parse_actions(self, body: bytes, *, symbol: str, spec: RequestSpec) -> Page[CorporateAction]:
        """Splits and dividends of one chart answer, dividends put back in their own basis."""
        with self.reading("chart events"):
            result = self._chart_result(body, symbol)
            events = result.get("events") or {}
            if not isinstance(events, dict):
                raise self.bad("chart.result[0].events is not an object")
            currency = (result.get("meta") or {}).get("currency") or None
            splits = [
                CorporateAction(
                    symbol,
                    ActionType.SPLIT,
                    _event_date(self, e["date"]),
                    ratio=float(e["numerator"]) / float(e["denominator"]),
                    source=self.name,
                )
                for e in (events.get("splits") or {}).values()
            ]
            out = list(splits)
            for e in (events.get("dividends") or {}).values():
                ex_date, amount = _event_date(self, e["date"]), float(e["amount"])
                if amount == 0:
                    continue  # nothing paid: no price moves
                later = math.prod(s.value for s in splits if s.ex_date > ex_date)
                out.append(
                    CorporateAction(
                        symbol,
                        ActionType.DIVIDEND,
                        ex_date,
                        amount=amount * later,
                        currency=currency,
                        source=self.name,
                    )
                )
            return Page(out)

    # -- quotes --------------------------------------------------------------------
    def quotes_request(self, symbols: Sequence[str]) -> list[RequestSpec]:
        return [
            RequestSpec("/v7/finance/quote", {"symbols": ",".join(symbols[i : i + _QUOTE_BATCH])})
            for i in range(0, len(symbols), _QUOTE_BATCH)
        ]

    def parse_quotes(self, body: bytes, symbols: Sequence[str]) -> list[Quote]:
        with self.reading("quotes"):
            response = self.json_object(body).get("quoteResponse")
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
    def options_request(self, symbol: str, expiration: date | None, until: date | None = None) -> RequestSpec:
        # One expiration per call: ``fetch_options_chain`` applies ``until`` to the dates it asks.
        params: dict[str, str] = {}
        if expiration is not None:
            # Yahoo names an expiration by the epoch second of its 00:00 UTC.
            params["date"] = str(int(datetime.combine(expiration, time(), UTC).timestamp()))
        return RequestSpec(f"/v7/finance/options/{urlquote(symbol, safe='')}", params)

    def parse_options(self, body: bytes, *, symbol: str) -> Page[OptionQuote]:
        return Page(self.parse_chain(body, symbol=symbol).quotes)

    def parse_chain(self, body: bytes, *, symbol: str) -> YahooChain:
        """One v7 options answer: its contracts and the expirations Yahoo lists beside them.

        A row without a strike is kept with strike 0.0, which no listed contract has: the
        pricing layer drops such contracts and counts them (``Chain.dropped``), so a
        vendor's bad row is never stored and never silently lost. A row without its own
        expiration takes the one its block names.
        """
        with self.reading("option chain"):
            chain = self.json_object(body).get("optionChain")
            if not isinstance(chain, dict):
                raise self.bad("no 'optionChain' object")
            if chain.get("error"):
                raise NoData(self.name, f"{symbol}: {_describe(chain['error'])}")
            results = chain.get("result") or []
            if not results:
                return YahooChain([], [], [])
            result = results[0]
            listed = sorted({_epoch_date(self, e) for e in result.get("expirationDates") or []})
            spot = _num((result.get("quote") or {}).get("regularMarketPrice"))
            out: list[OptionQuote] = []
            answered: list[date] = []
            for block in result.get("options") or []:
                block_expiration = block.get("expirationDate")
                if block_expiration is not None:
                    answered.append(_epoch_date(self, block_expiration))
                for right, key in ((OptionRight.CALL, "calls"), (OptionRight.PUT, "puts")):
                    for row in block.get(key) or []:
                        out.append(self._option(symbol, right, row, block_expiration, spot))
            return YahooChain(out, answered, listed)

    def _option(
        self, symbol: str, right: OptionRight, row: dict[str, Any], block_expiration: Any, spot: float | None
    ) -> OptionQuote:
        contract = row.get("contractSymbol")
        stamp = row.get("expiration", block_expiration)
        if not contract or stamp is None:
            raise self.bad(f"option row without a contract symbol or expiration: {str(row)[:120]}")
        strike = row.get("strike")
        traded = row.get("lastTradeDate")
        return OptionQuote(
            underlying=symbol,
            contract=str(contract),
            expiration=_epoch_date(self, stamp),
            strike=MISSING_STRIKE if strike is None else float(strike),
            right=right,
            bid=_num(row.get("bid")),
            ask=_num(row.get("ask")),
            last=_num(row.get("lastPrice")),
            volume=_num(row.get("volume")),
            open_interest=_num(row.get("openInterest")),
            implied_volatility=_num(row.get("impliedVolatility")),
            ts=_epoch_field(self, traded) if traded is not None else None,
            provider=self.name,
            underlying_price=spot,
        )

    async def fetch_options_chain(
        self, symbol: str, expiration: date | None = None, *, until: date | None = None
    ) -> list[OptionQuote]:
        """``symbol``'s contracts for ``expiration``, or for every listed expiration.

        Without ``expiration`` Yahoo answers the nearest expiration and lists the others
        in ``expirationDates``; each further one is a request of its own (at most
        ``max_pages`` requests in all). ``until`` keeps expirations on or before it, so
        "all up to a horizon" asks only for those.
        """
        first = self.parse_chain(await self._crumbed(self.options_request(symbol, expiration)), symbol=symbol)
        if expiration is not None:
            return first.quotes
        answered = {*first.answered, *(q.expiration for q in first.quotes)}
        rest = [d for d in first.expirations if d not in answered and (until is None or d <= until)]
        if 1 + len(rest) > self.max_pages:
            raise BadPayload(self.name, f"{len(rest) + 1} expirations; more than {self.max_pages} requests")
        out = list(first.quotes)
        for day in rest:
            body = await self._crumbed(self.options_request(symbol, day))
            out.extend(self.parse_chain(body, symbol=symbol).quotes)
        return out if until is None else [q for q in out if q.expiration <= until]

    # -- the crumb handshake ---------------------------------------------------------
    def cookie_url(self) -> str:
        """Where the session cookie comes from.

        Yahoo's own hosts (``*.yahoo.com``): ``https://fc.yahoo.com``, which answers 404
        and sets the ``A3`` cookie (the way yfinance's "basic" strategy gets it). Any other
        base URL (a test server, the sim-server, a proxy): that server's root, ``{base}/``,
        so one setting (YAHOO_BASE_URL) moves the whole handshake.
        """
        host = httpx.URL(self.base_url).host
        return COOKIE_URL if host == "yahoo.com" or host.endswith(".yahoo.com") else f"{self.base_url}/"

    async def _crumbed(self, spec: RequestSpec) -> bytes:
        """GET ``spec`` with the session's cookie and crumb; an "Invalid Crumb" renews them once."""
        session = await self._yahoo_session(stale=None)
        try:
            return await self._get_in(session, spec)
        except InvalidCrumb:
            session = await self._yahoo_session(stale=session)
        try:
            return await self._get_in(session, spec)
        except InvalidCrumb:
            raise AuthError(self.name, "Invalid Crumb after renewing the crumb", code="401") from None

    async def _get_in(self, session: tuple[str, str], spec: RequestSpec) -> bytes:
        cookie, crumb = session
        crumbed = RequestSpec(spec.path, {**spec.params, "crumb": crumb}, {**spec.headers, "Cookie": cookie})
        try:
            return await self.get(crumbed, Capability.OPTIONS_CHAIN)
        except AuthError as exc:
            # 401 {"finance":{"result":null,"error":{"code":"Unauthorized","description":"Invalid Crumb"}}}
            if "Invalid Crumb" in exc.message:
                raise InvalidCrumb(self.name, exc.message, code=exc.code) from None
            raise

    async def _yahoo_session(self, stale: tuple[str, str] | None) -> tuple[str, str]:
        """The (cookie, crumb) pair in use, made anew when there is none or it is ``stale``.

        The lock makes concurrent calls that all saw the same crumb refused renew it once:
        the first renews, the others find a pair that is no longer the stale one.
        """
        async with self._session_lock:
            if self._session is None or self._session == stale:
                self._session = await self._handshake()
            return self._session

    async def _handshake(self) -> tuple[str, str]:
        url = self.cookie_url()
        response = await self._limited_get(url)
        cookie = "; ".join(f"{c.name}={c.value}" for c in response.cookies.jar)
        if not cookie:
            raise AuthError(self.name, f"no session cookie from {url}", code="cookie")
        body = await self.get(
            RequestSpec("/v1/test/getcrumb", headers={"Cookie": cookie}), Capability.OPTIONS_CHAIN
        )
        crumb = body.decode("utf-8", "replace").strip()
        # A crumb is a short token; an HTML page or a JSON error in its place is no crumb.
        if not crumb or len(crumb) > 64 or any(c in crumb for c in " <{"):
            raise AuthError(self.name, f"no crumb from /v1/test/getcrumb: {crumb[:60]!r}", code="crumb")
        return cookie, crumb

    async def _limited_get(self, url: str) -> httpx.Response:
        """A rate-limited, timed GET that accepts the cookie host's 404 (it still sets the cookie)."""
        await self.limiter.acquire(self.name, self.limits)
        try:
            async with transport(self.name):
                response = await self._client.get(url)
        except httpx.TimeoutException:
            raise Unavailable(self.name, f"timeout on {url}", code="timeout") from None
        except httpx.HTTPError as exc:
            raise Unavailable(self.name, f"{type(exc).__name__} on {url}", code="connect") from None
        if response.status_code == 429 or response.status_code >= 500:
            super().check_response(response, Capability.OPTIONS_CHAIN)
        return response

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


def _event_date(provider: HttpProvider, value: Any) -> date:
    """An event stamp (epoch seconds on the ex-date, 09:30 ET) → its New York date."""
    return timeconv.local_date(_epoch_field(provider, value))


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


def _epoch_date(provider: HttpProvider, value: Any) -> date:
    """An expiration stamp (epoch seconds at 00:00 UTC of the date) → that date."""
    return _epoch_field(provider, value).date()


def _epoch_field(provider: HttpProvider, value: Any) -> datetime:
    try:
        return timeconv.from_epoch(float(value))
    except (TypeError, ValueError):
        raise provider.bad(f"bad epoch time {value!r}") from None
