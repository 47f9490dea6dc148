"""How domain objects look as JSON, in one place (API, bus events, CLI output)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from mds.domain.models import Bar, Quote


def iso(ts: datetime) -> str:
    """UTC ISO-8601 with a Z, as every MDS output writes times."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ohlcv_json(bar: Bar) -> dict[str, object]:
    """The vendor-neutral core of a bar (what `mds sim bars` prints)."""
    return {
        "ts": iso(bar.ts),
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": bar.volume,
    }


def bar_json(bar: Bar) -> dict[str, object]:
    """A bar with its provenance, as the API and the bus show it."""
    return {
        "symbol": bar.symbol,
        "interval": bar.interval.value,
        **ohlcv_json(bar),
        "provider": bar.provider,
        "status": bar.status.value,
        "as_of": iso(bar.as_of) if bar.as_of else None,
        "adjusted": bar.adjusted,
    }


def quote_json(q: Quote) -> dict[str, object]:
    return {
        "symbol": q.symbol,
        "ts": iso(q.ts),
        "bid": q.bid,
        "ask": q.ask,
        "last": q.last,
        "bid_size": q.bid_size,
        "ask_size": q.ask_size,
        "provider": q.provider,
        "as_of": iso(q.as_of) if q.as_of else None,
    }


def bars_document(
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
    as_of: datetime | None,
    bars: list[Bar],
    adjustment: dict[str, Any] | None = None,
) -> bytes:
    """The BarsOut document as JSON bytes.

    Built as plain dicts and written by orjson, which formats UTC datetimes as RFC 3339
    with "Z" (what :func:`iso` writes) in C: a pydantic model per bar, or ``isoformat``
    per timestamp, cost more than the read.
    """
    body = {
        "symbol": symbol,
        "interval": interval,
        "start": iso(start),
        "end": iso(end),
        "as_of": iso(as_of) if as_of is not None else None,
        "adjustment": adjustment if adjustment is not None else RAW_ADJUSTMENT,
        "bars": bar_rows(bars),
    }
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


#: What a read as stored says about its adjustment.
RAW_ADJUSTMENT: dict[str, Any] = {"mode": "raw", "actions": [], "skipped": []}


def bar_rows(bars: list[Bar]) -> list[dict[str, object]]:
    """Bars as the API's rows, datetimes left for orjson (``OPT_UTC_Z``) to write."""
    return [
        {
            "ts": b.ts,
            "open": b.open,
            "high": b.high,
            "low": b.low,
            "close": b.close,
            "volume": b.volume,
            "provider": b.provider,
            "status": b.status.value,
            "as_of": b.as_of,
            "adjusted": b.adjusted,
        }
        for b in bars
    ]
