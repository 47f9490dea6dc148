"""`mds sim-server --format yahoo`: the sim market in Yahoo Finance's chart and quote shapes.

Answers the paths ``mds.providers.yahoo`` sends: ``/v8/finance/chart/{symbol}`` (epoch
bar-open timestamps, daily rows at the 09:30 ET open, parallel OHLCV arrays with null
for a missing value; with ``events=div,splits`` the sim's announced splits and dividends
in the range, stamped at the ex-date's open, dividends divided by every later announced
split as Yahoo does) and ``/v7/finance/quote``. Like Yahoo it refuses 1m windows wider
than 8 days with a 422 chart error, so the adapter's windowing is exercised.

Option chains (``/v7/finance/options/{symbol}[?date=epoch]``) need Yahoo's session, as
the real host does: ``GET /`` answers 404 and sets an ``A3`` cookie (``fc.yahoo.com``'s
part), ``GET /v1/test/getcrumb`` with that cookie answers the crumb as text, and an
options request without a valid cookie and the current crumb answers 401 "Invalid Crumb".
``POST /__sim__/yahoo/expire-crumb`` (sim only) replaces the crumb, so a test can prove
the adapter renews it.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mds.domain.actions import ActionType
from mds.domain.models import Interval, OptionQuote, OptionRight
from mds.errors import ProviderError, RateLimited
from mds.providers import timeconv
from mds.providers.sim.options import listed_expirations, sim_option_chain
from mds.simserver.context import SimContext

_INTERVALS = {
    "1m": Interval.M1,
    "5m": Interval.M5,
    "15m": Interval.M15,
    "60m": Interval.H1,
    "1d": Interval.D1,
}
_MAX_1M = timedelta(days=8)
_INVALID_CRUMB = {
    "finance": {"result": None, "error": {"code": "Unauthorized", "description": "Invalid Crumb"}}
}
_INVALID_COOKIE = {
    "finance": {"result": None, "error": {"code": "Unauthorized", "description": "Invalid Cookie"}}
}


@dataclass
class CrumbSession:
    """The cookies this server has handed out and the one crumb it accepts now."""

    cookies: set[str] = field(default_factory=set)
    crumb: str = field(default_factory=lambda: secrets.token_urlsafe(8))
    issued: int = 0  # crumbs handed out by /v1/test/getcrumb

    def new_cookie(self) -> str:
        # URL-safe characters only, so the cookie travels unquoted.
        cookie = secrets.token_urlsafe(24)
        self.cookies.add(cookie)
        return cookie

    def expire(self) -> None:
        self.crumb = secrets.token_urlsafe(8)

    def valid(self, request: Request) -> bool:
        return request.cookies.get("A3") in self.cookies and request.query_params.get("crumb") == self.crumb


def _chart_error(code: str, description: str, status: int) -> JSONResponse:
    return JSONResponse(
        {"chart": {"result": None, "error": {"code": code, "description": description}}}, status_code=status
    )


def _num(value: float) -> float | None:
    return None if math.isnan(value) else value


def routes(ctx: SimContext) -> list[Route]:
    async def chart(request: Request) -> Response:
        now = await ctx.admit()
        symbol = request.path_params["symbol"].upper()
        q = request.query_params
        interval = _INTERVALS.get(q.get("interval", "1d"))
        if interval is None:
            return _chart_error("Unprocessable Entity", f"Invalid input - interval={q.get('interval')}", 422)
        try:
            start = timeconv.from_epoch(int(q["period1"]))
            end = timeconv.from_epoch(int(q["period2"]))
        except (KeyError, ValueError):
            return _chart_error("Bad Request", "period1 and period2 are required", 400)
        if interval is Interval.M1 and end - start > _MAX_1M:
            return _chart_error(
                "Unprocessable Entity",
                "Only 8 days worth of 1m granularity data are allowed to be fetched per request.",
                422,
            )
        bars = ctx.bars(symbol, interval, start, end, now)
        meta = {
            "currency": "USD",
            "symbol": symbol,
            "exchangeName": "NMS",
            "instrumentType": "EQUITY",
            "gmtoffset": int(now.astimezone(timeconv.NEW_YORK).utcoffset().total_seconds()),  # type: ignore[union-attr]
            "timezone": now.astimezone(timeconv.NEW_YORK).tzname(),
            "exchangeTimezoneName": "America/New_York",
            "dataGranularity": q.get("interval", "1d"),
            "range": "",
        }
        result: dict[str, object] = {"meta": meta}
        if bars:
            # Daily bars carry ts = session open, which is also Yahoo's 09:30 ET daily stamp.
            result["timestamp"] = [int(b.ts.timestamp()) for b in bars]
            result["indicators"] = {
                "quote": [
                    {
                        "open": [_num(b.open) for b in bars],
                        "high": [_num(b.high) for b in bars],
                        "low": [_num(b.low) for b in bars],
                        "close": [_num(b.close) for b in bars],
                        "volume": [int(b.volume) for b in bars],
                    }
                ],
                **(
                    {"adjclose": [{"adjclose": [_num(b.close) for b in bars]}]}
                    if interval is Interval.D1
                    else {}
                ),
            }
        else:
            result["indicators"] = {"quote": [{}]}
        asked = q.get("events", "")
        if "div" in asked or "split" in asked:
            lo, hi = timeconv.local_date(start), timeconv.local_date(end)
            events = _events(ctx, symbol, lo, hi, now, div="div" in asked, splits="split" in asked)
            if events:
                result["events"] = events
        return JSONResponse({"chart": {"result": [result], "error": None}})

    async def quote(request: Request) -> Response:
        now = await ctx.admit()
        symbols = [s for s in request.query_params.get("symbols", "").split(",") if s]
        rows = []
        for symbol in symbols:
            qt = ctx.quote(symbol.upper(), now)
            rows.append(
                {
                    "language": "en-US",
                    "region": "US",
                    "quoteType": "EQUITY",
                    "currency": "USD",
                    "symbol": qt.symbol,
                    "regularMarketPrice": qt.last,
                    "regularMarketTime": int(qt.ts.timestamp()),
                    "bid": qt.bid,
                    "ask": qt.ask,
                    "bidSize": qt.bid_size,
                    "askSize": qt.ask_size,
                    "exchange": "NMS",
                    "exchangeTimezoneName": "America/New_York",
                }
            )
        return JSONResponse({"quoteResponse": {"result": rows, "error": None}})

    session = CrumbSession()

    async def cookie(request: Request) -> Response:
        # fc.yahoo.com answers 404 and still sets the session cookie.
        response = PlainTextResponse("Not Found", status_code=404)
        response.set_cookie("A3", session.new_cookie(), max_age=365 * 86_400, path="/", httponly=True)
        return response

    async def getcrumb(request: Request) -> Response:
        if request.cookies.get("A3") not in session.cookies:
            return JSONResponse(_INVALID_COOKIE, status_code=401)
        session.issued += 1
        return PlainTextResponse(session.crumb)

    async def expire_crumb(request: Request) -> Response:
        session.expire()
        return JSONResponse({"issued": session.issued})

    async def options(request: Request) -> Response:
        if not session.valid(request):
            return JSONResponse(_INVALID_CRUMB, status_code=401)
        now = await ctx.admit()
        symbol = request.path_params["symbol"].upper()
        listed = listed_expirations(now, ctx.market.calendar)
        asked = request.query_params.get("date")
        try:
            # Without `date`, Yahoo answers the nearest expiration and lists the others.
            expiration = timeconv.from_epoch(int(asked)).date() if asked else (listed[0] if listed else None)
        except ValueError:
            return JSONResponse({"optionChain": {"result": None, "error": "bad date"}}, status_code=400)
        chain = (
            []
            if expiration is None
            else sim_option_chain(ctx.market, symbol, now, expiration=expiration, provider=ctx.provider)
        )
        spot = ctx.quote(symbol, now).last
        result: dict[str, object] = {
            "underlyingSymbol": symbol,
            "expirationDates": [_midnight_utc(d) for d in listed],
            "strikes": sorted({c.strike for c in chain}),
            "hasMiniOptions": False,
            "quote": {
                "symbol": symbol,
                "regularMarketPrice": spot,
                "regularMarketTime": int(now.timestamp()),
            },
            "options": [],
        }
        if expiration is not None:
            result["options"] = [
                {
                    "expirationDate": _midnight_utc(expiration),
                    "hasMiniOptions": False,
                    "calls": [_option_row(c, spot) for c in chain if c.right is OptionRight.CALL],
                    "puts": [_option_row(c, spot) for c in chain if c.right is OptionRight.PUT],
                }
            ]
        return JSONResponse({"optionChain": {"result": [result], "error": None}})

    return [
        Route("/v8/finance/chart/{symbol}", chart, methods=["GET"]),
        Route("/v7/finance/quote", quote, methods=["GET"]),
        Route("/v7/finance/options/{symbol}", options, methods=["GET"]),
        Route("/", cookie, methods=["GET"]),
        Route("/v1/test/getcrumb", getcrumb, methods=["GET"]),
        Route("/__sim__/yahoo/expire-crumb", expire_crumb, methods=["POST"]),
    ]


def _events(
    ctx: SimContext, symbol: str, lo: date, hi: date, now: datetime, *, div: bool, splits: bool
) -> dict[str, object]:
    """``events`` of a chart answer: Yahoo keys each event by its stamp (the ex-date's open)
    and divides each dividend by the splits announced after it, as its own answers do."""
    known = ctx.actions(symbol, date.min, date.max, now)
    out: dict[str, dict[str, object]] = {}
    for a in known:
        if not lo <= a.ex_date <= hi:
            continue
        stamp = _open_epoch(ctx, a.ex_date)
        if a.type is ActionType.SPLIT and splits:
            ratio = Fraction(a.value).limit_denominator(10_000)
            out.setdefault("splits", {})[str(stamp)] = {
                "date": stamp,
                "numerator": float(ratio.numerator),
                "denominator": float(ratio.denominator),
                "splitRatio": f"{ratio.numerator}:{ratio.denominator}",
            }
        elif a.type is ActionType.DIVIDEND and div:
            later = math.prod(s.value for s in known if s.type is ActionType.SPLIT and s.ex_date > a.ex_date)
            out.setdefault("dividends", {})[str(stamp)] = {"amount": a.value / later, "date": stamp}
    return dict(out)


def _open_epoch(ctx: SimContext, day: date) -> int:
    """The first session open on or after ``day`` (09:30 ET on a trading day)."""
    midnight = datetime.combine(day, time(), timeconv.NEW_YORK)
    return int(ctx.market.calendar.next_open(midnight).timestamp())


def _midnight_utc(day: date) -> int:
    """Yahoo names an expiration by the epoch second of its 00:00 UTC."""
    return int(datetime.combine(day, time(), UTC).timestamp())


def _option_row(c: OptionQuote, spot: float) -> dict[str, object]:
    """One contract as yfinance reads it from ``options[0].calls/puts``."""
    row: dict[str, object] = {
        "contractSymbol": c.contract,
        "strike": c.strike,
        "currency": "USD",
        "volume": c.volume,
        "openInterest": c.open_interest,
        "bid": c.bid,
        "ask": c.ask,
        "contractSize": "REGULAR",
        "expiration": _midnight_utc(c.expiration),
        "impliedVolatility": c.implied_volatility,
        "inTheMoney": spot > c.strike if c.right is OptionRight.CALL else spot < c.strike,
    }
    if c.last is not None:
        row["lastPrice"] = c.last
    if c.ts is not None:
        row["lastTradeDate"] = int(c.ts.timestamp())
    return row


def error_response(err: ProviderError) -> Response:
    """Yahoo throttles with a bare-text 429 (no Retry-After); other faults are statuses."""
    if isinstance(err, RateLimited):
        return PlainTextResponse("Too Many Requests\r\n", status_code=429)
    status = int(err.code) if err.code.isdigit() else 500
    return PlainTextResponse(err.message or err.kind, status_code=status)
