"""How fast a vendor payload becomes Bars: `PolygonProvider.parse_bars` over a year of 1m bars.

The payload is built in memory, deterministically, in Polygon's aggregates format (the
real XNYS sessions of 2024 onwards, 390 bars a full session), so the figure measures
parsing only: JSON decoding, the regular-session filter, timestamp conversion and Bar
construction. No network, no validation (that is ``validate_bars``, timed elsewhere).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import orjson

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.models import Interval
from mds.providers.polygon import PolygonProvider

_FIRST = datetime(2024, 1, 1, tzinfo=UTC)


def payload(epochs: list[int]) -> bytes:
    """A Polygon aggregates response with one bar per epoch second (deterministic values)."""
    results = []
    for i, t in enumerate(epochs):
        base = 100.0 + (i % 997) * 0.01
        results.append(
            {
                "v": 1000 + i % 5000,
                "vw": round(base + 0.004, 4),
                "o": base,
                "c": round(base + 0.01, 2),
                "h": round(base + 0.02, 2),
                "l": round(base - 0.01, 2),
                "t": t * 1000,
                "n": 10 + i % 90,
            }
        )
    n = len(results)
    body = {
        "ticker": "BENCH",
        "queryCount": n,
        "resultsCount": n,
        "adjusted": False,
        "results": results,
        "status": "OK",
        "request_id": "bench",
        "count": n,
    }
    return orjson.dumps(body)


def run(bars: int = 98_280, repeat: int = 5) -> dict[str, object]:
    """Parse ``bars`` 1m bars (252 sessions x 390 = 98,280 by default) and time it.

    Returns:
        ``{"benchmark": "parse", "bars", "seconds", "bars_per_s", ...}``. ``seconds`` is the
        best of ``repeat`` parses; ``cold_seconds`` is the first one, which also builds the
        session grid (a table shared by every symbol asked for the same range).
    """
    calendar = MarketCalendar()
    end = _FIRST + timedelta(days=370)
    epochs = calendar.expected_epochs(Interval.M1, _FIRST, end).tolist()
    while len(epochs) < bars:  # more than a year asked for: widen the range
        end += timedelta(days=370)
        epochs = calendar.expected_epochs(Interval.M1, _FIRST, end).tolist()
    epochs = epochs[:bars]
    body = payload(epochs)
    start = datetime.fromtimestamp(epochs[0], UTC)
    stop = datetime.fromtimestamp(epochs[-1] + 60, UTC)
    provider = PolygonProvider(settings=load_settings({"POLYGON_API_KEY": "bench"}), calendar=calendar)
    try:
        times = []
        count = 0
        for _ in range(max(1, repeat)):
            t0 = time.perf_counter()
            page = provider.parse_bars(body, symbol="BENCH", interval=Interval.M1, start=start, end=stop)
            times.append(time.perf_counter() - t0)
            count = len(page.items)
    finally:
        asyncio.run(provider.aclose())
    if count != bars:
        raise RuntimeError(f"parsed {count} bars, built {bars}")
    best = min(times)
    return {
        "benchmark": "parse",
        "bars": count,
        "seconds": round(best, 4),
        "bars_per_s": round(count / best),
        "cold_seconds": round(times[0], 4),
        "payload_mb": round(len(body) / 1e6, 2),
    }


if __name__ == "__main__":
    print(orjson.dumps(run()).decode())
