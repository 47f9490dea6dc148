"""`mds sim-server --format alpaca`: the sim market in Alpaca Market Data v2's wire format.

Answers the paths ``AlpacaProvider`` sends: single-symbol bars (RFC-3339 bar starts,
daily bars stamped at midnight America/New_York, ``end`` inclusive, pages linked by an
opaque ``next_page_token``), multi-symbol snapshots for quotes, and option chain snapshots
(``/v1beta1/options/snapshots/{underlying}``: keyed by OCC symbol, RFC-3339 times with
nanoseconds, no open interest, at most 1000 a page; the page token pins the snapshot's
time, so every page of one walk prices the same moment).
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, time, timedelta

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mds.domain.models import Bar, Interval, OptionQuote
from mds.errors import ProviderError, RateLimited
from mds.providers.sim.options import sim_option_chain
from mds.providers.timeconv import NEW_YORK, local_date
from mds.simserver.context import SimContext

#: Bars per page at most, whatever `limit` asks, so paging is exercised.
PAGE = 5000
#: Option snapshots per page at most (Alpaca's documented maximum `limit`).
OPTIONS_PAGE = 1000
_TIMEFRAMES = {
    "1Min": Interval.M1,
    "5Min": Interval.M5,
    "15Min": Interval.M15,
    "1Hour": Interval.H1,
    "1Day": Interval.D1,
}


def _json(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, headers=headers, media_type="application/json")


def error_response(err: ProviderError) -> Response:
    """Alpaca's error body: ``{"message": ...}``."""
    status = int(err.code) if err.code.isdigit() else 500
    headers = {"Retry-After": str(int(err.retry_after))} if isinstance(err, RateLimited) else None
    return _json({"message": err.message or err.kind}, status, headers)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), NEW_YORK)


def _stamp(bar: Bar) -> str:
    return _iso(_midnight(local_date(bar.ts))) if bar.interval is Interval.D1 else _iso(bar.ts)


def routes(ctx: SimContext) -> list[Route]:
    async def bars(request: Request) -> Response:
        now = await ctx.admit()
        symbol = request.path_params["symbol"]
        q = request.query_params
        interval = _TIMEFRAMES.get(q.get("timeframe", ""))
        if interval is None:
            return _json({"message": "invalid timeframe"}, 422)
        try:
            start = datetime.fromisoformat(q["start"])
            end = datetime.fromisoformat(q["end"]) if "end" in q else now
            if "page_token" in q:
                start = datetime.fromisoformat(base64.b64decode(q["page_token"]).decode().split("|")[1])
        except (KeyError, ValueError):
            return _json({"message": "invalid start or end"}, 422)
        if interval is Interval.D1:
            # A daily bar's stamp (midnight ET) must lie in [start, end].
            first = local_date(start)
            if _midnight(first) < start:
                first += timedelta(days=1)
            lo, hi = _midnight(first), _midnight(local_date(end) + timedelta(days=1))
        else:
            lo, hi = start, end + timedelta(microseconds=1)  # `end` is inclusive
        found = ctx.bars(symbol, interval, lo, hi, now)
        limit = min(int(q.get("limit", "1000") or 1000), 10_000, PAGE)
        page, rest = found[:limit], found[limit:]
        token = None
        if rest:
            token = base64.b64encode(f"{symbol}|{_stamp(rest[0])}".encode()).decode()
        rows = [
            {
                "t": _stamp(b),
                "o": b.open,
                "h": b.high,
                "l": b.low,
                "c": b.close,
                "v": b.volume,
                "n": max(1, int(b.volume // 100)) if b.volume == b.volume else 1,
                "vw": round((b.high + b.low + b.close) / 3, 4),
            }
            for b in page
        ]
        return _json({"bars": rows or None, "symbol": symbol, "next_page_token": token})

    async def snapshots(request: Request) -> Response:
        now = await ctx.admit()
        symbols = [s for s in request.query_params.get("symbols", "").split(",") if s]
        out = {}
        for symbol in symbols:
            quote = ctx.quote(symbol, now)
            out[symbol] = {
                "latestTrade": {
                    "t": _iso(now),
                    "x": "V",
                    "p": quote.last,
                    "s": 100,
                    "c": ["@"],
                    "i": 1,
                    "z": "C",
                },
                "latestQuote": {
                    "t": _iso(now),
                    "ax": "V",
                    "ap": quote.ask,
                    "as": quote.ask_size,
                    "bx": "V",
                    "bp": quote.bid,
                    "bs": quote.bid_size,
                    "c": ["R"],
                    "z": "C",
                },
            }
        return _json(out)

    async def option_chain(request: Request) -> Response:
        now = await ctx.admit()
        underlying = request.path_params["underlying"]
        q = request.query_params
        offset = 0
        try:
            if "page_token" in q:  # "<snapshot time>|<offset>": the walk keeps its moment
                at, _, start = base64.b64decode(q["page_token"]).decode().partition("|")
                now, offset = datetime.fromisoformat(at), int(start)
            expiration = date.fromisoformat(q["expiration_date"]) if "expiration_date" in q else None
            until = date.fromisoformat(q["expiration_date_lte"]) if "expiration_date_lte" in q else None
            limit = min(int(q.get("limit", "100")), OPTIONS_PAGE)
        except ValueError:
            return _json({"message": "invalid query parameter"}, 422)
        chain = sim_option_chain(ctx.market, underlying, now, expiration=expiration, provider=ctx.provider)
        if until is not None:
            chain = [c for c in chain if c.expiration <= until]
        token = None
        if offset + limit < len(chain):
            token = base64.b64encode(f"{now.isoformat()}|{offset + limit}".encode()).decode()
        snapshots = {c.contract: _option_snapshot(c) for c in chain[offset : offset + limit]}
        return _json({"snapshots": snapshots, "next_page_token": token})

    return [
        Route("/v2/stocks/snapshots", snapshots, methods=["GET"]),
        Route("/v2/stocks/{symbol}/bars", bars, methods=["GET"]),
        Route("/v1beta1/options/snapshots/{underlying}", option_chain, methods=["GET"]),
    ]


def _option_snapshot(c: OptionQuote) -> dict[str, object]:
    """One contract as alpaca-py's ``get_option_chain`` test shows it (no open interest)."""
    # RFC-3339 with nanoseconds, as Alpaca stamps option quotes and trades.
    stamp = c.ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z") if c.ts is not None else None
    snap: dict[str, object] = {
        "latestQuote": {
            "ap": c.ask,
            "as": 10,
            "ax": "C",
            "bp": c.bid,
            "bs": 10,
            "bx": "C",
            "c": " ",
            "t": stamp,
        },
        "impliedVolatility": c.implied_volatility,
    }
    if c.last is not None:
        snap["latestTrade"] = {"c": "I", "p": c.last, "s": 1, "t": stamp, "x": "C"}
        snap["dailyBar"] = {
            "t": stamp,
            "o": c.last,
            "h": c.last,
            "l": c.last,
            "c": c.last,
            "v": c.volume,
            "n": 1,
            "vw": c.last,
        }
    return snap
