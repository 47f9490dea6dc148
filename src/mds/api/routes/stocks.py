"""Market data for users: latest price, history, intraday bars, batch prices."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Query, Response

from mds.api.deps import MarketDep, RuntimeDep
from mds.api.models import BarsOut, BatchIn, BatchOut, PriceOut
from mds.api.params import parse_interval, parse_ts
from mds.domain.models import Interval
from mds.serialize import bars_document

router = APIRouter(prefix="/stocks", tags=["stocks"])


def _json(body: bytes) -> Response:
    # Bars are serialised by the service (services may keep the bytes); response_model
    # on the routes still documents the shape.
    return Response(body, media_type="application/json")


@router.get("/{symbol}/price", response_model=PriceOut)
async def price(symbol: str, market: MarketDep) -> PriceOut:
    return PriceOut(**await market.price(symbol))


@router.get("/{symbol}/history", response_model=BarsOut)
async def history(
    symbol: str,
    market: MarketDep,
    period: str = Query("1mo", description="Nd (trading days), Nwk, Nmo, Ny, ytd, max"),
    interval: str = Query("1d", description="1d, or an intraday interval for periods up to 31 days"),
) -> Response:
    r = await market.history(symbol, period, parse_interval("interval", interval))
    return _json(bars_document(r.symbol, r.interval.value, r.start, r.end, None, r.bars))


@router.get("/{symbol}/intraday", response_model=BarsOut)
async def intraday(
    symbol: str,
    market: MarketDep,
    runtime: RuntimeDep,
    interval: str = Query("1m", description="1m, 5m, 15m or 1h"),
    start: str | None = Query(
        None, description="Inclusive start (ISO-8601 with zone); default: the latest session's open"
    ),
    end: str | None = Query(None, description="Exclusive end (ISO-8601 with zone); default: now"),
    as_of: str | None = Query(None, description="Read what MDS knew at this time (point in time)"),
) -> Response:
    iv = parse_interval("interval", interval, allowed=(Interval.M1, Interval.M5, Interval.M15, Interval.H1))
    now = runtime.clock.now()
    start_ts = parse_ts("start", start)
    end_ts = parse_ts("end", end) or now + timedelta(seconds=1)
    as_of_ts = parse_ts("as_of", as_of)
    if start_ts is None:
        sessions = [s for s in runtime.calendar.sessions(now - timedelta(days=10), now) if s.open <= now]
        start_ts = sessions[-1].open if sessions else now - timedelta(days=1)
    return _json(await market.bars_json(symbol, iv, start_ts, end_ts, as_of=as_of_ts))


@router.post("/batch", response_model=BatchOut)
async def batch(body: BatchIn, market: MarketDep) -> BatchOut:
    return BatchOut(**await market.batch(body.symbols))
