"""`mds sim-server --format polygon`: the sim market in Polygon's wire format.

Answers the paths ``PolygonProvider`` sends: aggregates (epoch-ms bar starts, daily bars
stamped at midnight America/New_York, pages linked by an absolute ``next_url``), the
all-tickers stock snapshot for quotes, and the option chain snapshot
(``/v3/snapshot/options/{underlying}``: ``O:`` tickers, nanosecond times, at most 250
contracts a page, pages linked by ``next_url``; the cursor pins the snapshot's time, so
every page of one walk prices the same moment), and the corporate-action references
(``/v3/reference/splits``, ``/v3/reference/dividends``: the sim's ``SIM_SPLITS`` and
``SIM_DIVIDENDS`` as announced by now, filtered by ``ticker`` and the date bounds, at most
:data:`ACTIONS_PAGE` a page so the adapter's paging is exercised, linked by ``next_url``),
and Ticker Details v3 (``/v3/reference/tickers/{ticker}``: the sim's profile, ``market_cap``
in dollars with the share count as both ``share_class_shares_outstanding`` and
``weighted_shares_outstanding``; an ETF's answer has neither cap nor share counts. Every
symbol gets an answer, as the sim's FMP and Finnhub profiles do).
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, time, timedelta

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mds.domain.actions import ActionType, CorporateAction
from mds.domain.models import Bar, Interval, OptionQuote, OptionRight
from mds.errors import ProviderError, RateLimited
from mds.providers.sim.options import sim_option_chain
from mds.providers.timeconv import NEW_YORK, local_date
from mds.simserver.context import SimContext

#: Bars per page at most, whatever `limit` asks (Polygon's default limit), so paging is exercised.
PAGE = 5000
#: Option snapshots per page at most (Polygon's documented maximum `limit`).
OPTIONS_PAGE = 250
#: Corporate actions per page at most (Polygon allows 1000): small, so a few actions page.
ACTIONS_PAGE = 2
#: reference path -> (action type, date filter field)
_ACTIONS = {
    "splits": (ActionType.SPLIT, "execution_date"),
    "dividends": (ActionType.DIVIDEND, "ex_dividend_date"),
}
_SPANS = {
    ("1", "minute"): Interval.M1,
    ("5", "minute"): Interval.M5,
    ("15", "minute"): Interval.M15,
    ("1", "hour"): Interval.H1,
    ("1", "day"): Interval.D1,
}


def _json(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, headers=headers, media_type="application/json")


def error_response(err: ProviderError) -> Response:
    """Polygon's error body: ``{"status": "ERROR", "request_id": ..., "error": ...}``."""
    status = int(err.code) if err.code.isdigit() else 500
    headers = {"Retry-After": str(int(err.retry_after))} if isinstance(err, RateLimited) else None
    body = {"status": "ERROR", "request_id": "sim", "error": err.message or err.kind}
    return _json(body, status, headers)


def _bound(text: str, *, upper: bool) -> datetime:
    """A path bound: epoch ms (inclusive) or a YYYY-MM-DD exchange-local date (whole day)."""
    if text.isdigit():
        return datetime.fromtimestamp((int(text) + (1 if upper else 0)) / 1000, NEW_YORK)
    day = date.fromisoformat(text) + timedelta(days=1 if upper else 0)
    return datetime.combine(day, time(0), NEW_YORK)


def _midnight_ms(bar: Bar) -> int:
    return int(datetime.combine(local_date(bar.ts), time(0), NEW_YORK).timestamp() * 1000)


def routes(ctx: SimContext) -> list[Route]:
    async def aggs(request: Request) -> Response:
        now = await ctx.admit()
        p = request.path_params
        interval = _SPANS.get((p["multiplier"], p["timespan"]))
        if interval is None:
            return _json({"status": "ERROR", "error": "unsupported multiplier/timespan"}, 400)
        try:
            start, end = _bound(p["from"], upper=False), _bound(p["to"], upper=True)
        except ValueError:
            return _json({"status": "ERROR", "error": "Could not parse the time parameter"}, 400)
        if interval is Interval.D1:  # daily ranges are whole exchange-local days
            start = _bound(local_date(start).isoformat(), upper=False)
            end = _bound((local_date(end - timedelta(microseconds=1))).isoformat(), upper=True)
        ticker = p["ticker"]
        bars = ctx.bars(ticker, interval, start, end, now)
        limit = min(int(request.query_params.get("limit", "5000") or 5000), 50_000, PAGE)
        page, rest = bars[:limit], bars[limit:]
        stamp = _midnight_ms if interval is Interval.D1 else (lambda b: int(b.ts.timestamp() * 1000))
        results = [
            {
                "v": b.volume,
                "vw": round((b.high + b.low + b.close) / 3, 4),
                "o": b.open,
                "c": b.close,
                "h": b.high,
                "l": b.low,
                "t": stamp(b),
                "n": max(1, int(b.volume // 100)) if b.volume == b.volume else 1,
            }
            for b in page
        ]
        body: dict[str, object] = {
            "ticker": ticker,
            "queryCount": len(results),
            "resultsCount": len(results),
            "adjusted": request.query_params.get("adjusted", "true") != "false",
            "status": "OK",
            "request_id": "sim",
            "count": len(results),
        }
        if results:  # Polygon omits `results` when there is nothing
            body["results"] = results
        if rest:
            cursor = base64.urlsafe_b64encode(f"limit={limit}&sort=asc".encode()).decode()
            base = str(request.base_url).rstrip("/")
            body["next_url"] = (
                f"{base}/v2/aggs/ticker/{ticker}/range/{p['multiplier']}/{p['timespan']}"
                f"/{stamp(rest[0])}/{p['to']}?cursor={cursor}"
            )
        return _json(body)

    async def snapshot(request: Request) -> Response:
        now = await ctx.admit()
        tickers = [t for t in request.query_params.get("tickers", "").split(",") if t]
        ns = int(now.timestamp() * 1_000_000_000)
        out = []
        for ticker in tickers:
            q = ctx.quote(ticker, now)
            out.append(
                {
                    "ticker": ticker,
                    "todaysChange": 0.0,
                    "todaysChangePerc": 0.0,
                    "updated": ns,
                    "day": {"c": q.last},
                    "lastQuote": {"P": q.ask, "S": q.ask_size, "p": q.bid, "s": q.bid_size, "t": ns},
                    "lastTrade": {"c": None, "i": "1", "p": q.last, "s": 100, "t": ns, "x": 4},
                }
            )
        return _json({"status": "OK", "count": len(out), "tickers": out})

    async def options_chain(request: Request) -> Response:
        now = await ctx.admit()
        underlying = request.path_params["underlying"]
        q = dict(request.query_params)
        if "cursor" in q:
            try:  # the cursor carries the first request's query and the snapshot's time
                q = orjson.loads(base64.urlsafe_b64decode(q["cursor"]))
                now = datetime.fromisoformat(q["at"])
            except (ValueError, KeyError, TypeError):
                return _json({"status": "ERROR", "request_id": "sim", "error": "invalid cursor"}, 400)
        try:
            expiration = date.fromisoformat(q["expiration_date"]) if "expiration_date" in q else None
            until = date.fromisoformat(q["expiration_date.lte"]) if "expiration_date.lte" in q else None
            limit = min(int(q.get("limit", "10")), OPTIONS_PAGE)
            offset = int(q.get("offset", "0"))
        except ValueError:
            return _json({"status": "ERROR", "request_id": "sim", "error": "invalid query parameter"}, 400)
        chain = sim_option_chain(ctx.market, underlying, now, expiration=expiration, provider=ctx.provider)
        if until is not None:
            chain = [c for c in chain if c.expiration <= until]
        page = chain[offset : offset + limit]
        body: dict[str, object] = {
            "status": "OK",
            "request_id": "sim",
            "results": [_option_snapshot(c) for c in page],
        }
        if offset + limit < len(chain):
            state = {**q, "offset": str(offset + limit), "limit": str(limit), "at": now.isoformat()}
            state.pop("cursor", None)
            cursor = base64.urlsafe_b64encode(orjson.dumps(state)).decode()
            body["next_url"] = (
                f"{str(request.base_url).rstrip('/')}/v3/snapshot/options/{underlying}?cursor={cursor}"
            )
        return _json(body)

    async def reference_actions(request: Request) -> Response:
        now = await ctx.admit()
        name = request.url.path.rsplit("/", 1)[-1]
        kind, field = _ACTIONS[name]
        q = dict(request.query_params)
        if "cursor" in q:
            try:  # the cursor carries the first request's query and the answer's time
                q = orjson.loads(base64.urlsafe_b64decode(q["cursor"]))
                now = datetime.fromisoformat(q["at"])
            except (ValueError, KeyError, TypeError):
                return _json({"status": "ERROR", "request_id": "sim", "error": "invalid cursor"}, 400)
        try:
            lo = date.fromisoformat(q.get(f"{field}.gte", "1900-01-01"))
            hi = date.fromisoformat(q.get(f"{field}.lte", "2999-12-31"))
            limit = min(int(q.get("limit", "10")), ACTIONS_PAGE)
            offset = int(q.get("offset", "0"))
        except ValueError:
            return _json({"status": "ERROR", "request_id": "sim", "error": "invalid query parameter"}, 400)
        ticker = q.get("ticker", "")
        found = [a for a in ctx.actions(ticker, lo, hi, now) if a.type is kind]
        found.sort(key=lambda a: a.ex_date, reverse=True)  # Polygon's default order: newest first
        body: dict[str, object] = {
            "status": "OK",
            "request_id": "sim",
            "results": [_action_row(a) for a in found[offset : offset + limit]],
        }
        if offset + limit < len(found):
            state = {**q, "offset": str(offset + limit), "limit": str(limit), "at": now.isoformat()}
            state.pop("cursor", None)
            cursor = base64.urlsafe_b64encode(orjson.dumps(state)).decode()
            base = str(request.base_url).rstrip("/")
            body["next_url"] = f"{base}/v3/reference/{name}?cursor={cursor}"
        return _json(body)

    async def ticker_details(request: Request) -> Response:
        now = await ctx.admit()
        p = ctx.profile(request.path_params["ticker"], now)
        etf = p.market_cap is None
        results: dict[str, object] = {
            "ticker": p.symbol,
            "name": p.name,
            "market": "stocks",
            "locale": "us",
            "primary_exchange": p.exchange,
            "type": "ETF" if etf else "CS",
            "active": True,
            "currency_name": p.currency.lower(),
            "ticker_root": p.symbol,
            "round_lot": 100,
        }
        if not etf:  # Polygon omits what it does not have (a fund's cap and share counts)
            results.update(
                market_cap=p.market_cap,
                sic_description=p.industry.upper(),
                share_class_shares_outstanding=p.shares_outstanding,
                weighted_shares_outstanding=p.shares_outstanding,
            )
        return _json({"request_id": "sim", "results": results, "status": "OK"})

    return [
        Route("/v3/reference/tickers/{ticker}", ticker_details, methods=["GET"]),
        Route("/v3/reference/splits", reference_actions, methods=["GET"]),
        Route("/v3/reference/dividends", reference_actions, methods=["GET"]),
        Route("/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}", aggs, methods=["GET"]),
        Route("/v2/snapshot/locale/us/markets/stocks/tickers", snapshot, methods=["GET"]),
        Route("/v3/snapshot/options/{underlying}", options_chain, methods=["GET"]),
    ]


def _action_row(a: CorporateAction) -> dict[str, object]:
    """One split or dividend in the reference endpoints' shape (client-python's mocks)."""
    row_id = f"E{a.symbol}{a.ex_date:%Y%m%d}{a.type.value[0]}"
    if a.type is ActionType.SPLIT:
        ratio = a.value
        # Polygon states a split as whole share counts: 1 -> 4, or 2 -> 1 for 1-for-2.
        split_from, split_to = (1.0, ratio) if ratio >= 1 else (1.0 / ratio, 1.0)
        return {
            "execution_date": a.ex_date.isoformat(),
            "id": row_id,
            "split_from": split_from,
            "split_to": split_to,
            "ticker": a.symbol,
        }
    return {
        "cash_amount": a.value,
        "currency": a.currency or "USD",
        "declaration_date": a.declared_date.isoformat() if a.declared_date else None,
        "dividend_type": "CD",
        "ex_dividend_date": a.ex_date.isoformat(),
        "frequency": 4,
        "id": row_id,
        "ticker": a.symbol,
    }


def _ns(ts: datetime) -> int:
    """A UTC time as Polygon's epoch nanoseconds (exact: no float on the way)."""
    delta = ts.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _option_snapshot(c: OptionQuote) -> dict[str, object]:
    """One contract in the option chain snapshot's shape (client-python's AAPL mock)."""
    stamp = _ns(c.ts) if c.ts is not None else None
    row: dict[str, object] = {
        "break_even_price": c.strike + (c.ask or 0.0) * (1 if c.right is OptionRight.CALL else -1),
        "day": {
            "volume": c.volume,
            **({"close": c.last, "last_updated": stamp} if c.last is not None else {}),
        },
        "details": {
            "contract_type": c.right.value,
            "exercise_style": "american",
            "expiration_date": c.expiration.isoformat(),
            "shares_per_contract": 100,
            "strike_price": c.strike,
            "ticker": f"O:{c.contract}",
        },
        "greeks": {},
        "implied_volatility": c.implied_volatility,
        "last_quote": {
            "ask": c.ask,
            "ask_size": 10,
            "bid": c.bid,
            "bid_size": 10,
            "last_updated": stamp,
            "midpoint": round(((c.bid or 0.0) + (c.ask or 0.0)) / 2, 4),
            "timeframe": "REAL-TIME",
        },
        "open_interest": c.open_interest,
        "underlying_asset": {
            "price": c.underlying_price,
            "ticker": c.underlying,
            "last_updated": stamp,
            "timeframe": "REAL-TIME",
        },
    }
    if c.last is not None:
        row["last_trade"] = {
            "conditions": [209],
            "exchange": 312,
            "price": c.last,
            "sip_timestamp": stamp,
            "size": 1,
            "timeframe": "REAL-TIME",
        }
    return row
